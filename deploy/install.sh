#!/usr/bin/env bash
# Install mm-engine on a box and set up one instance under systemd:
#   - the service user `mm` (a system user without a login shell or home);
#   - a dedicated virtualenv (default /opt/mm/venv) with this checkout pip-installed into it;
#   - the units (mm-engine@.target, mm-{sender,quoter,feed}@.service, mm-alert@.service);
#   - the instance's files: /etc/mm/<instance>.toml and .env (mode 0600, owned by mm), and the
#     credentials directory /etc/mm/credentials/<instance>/ (mode 0700, root's: systemd hands
#     its files to the sender alone through LoadCredential=, so neither the feed nor the quoter
#     can read them);
#   - no frozen layout: each process computes its core and idle strategy when it starts
#     (MM_LAYOUT=auto in the units), from the box and the instance's .env as they are then;
#     the layout it would get now is printed, and layout.conf drop-ins of older installs are
#     removed (an operator's own drop-in with MM_CORE= still overrides);
#   - `systemctl enable mm-engine@<instance>.target` (started at boot; not started now).
# Existing instance files are kept (only their owner and mode are fixed); units are rewritten.
#
#   deploy/install.sh --instance blue [--config blue.toml] [--dry-run]
#
# --dry-run prints every change it would make and changes nothing (no root needed).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: deploy/install.sh --instance NAME [options]
  --instance NAME    engine instance (shared-memory prefix, unit instance): [A-Za-z0-9_-]
  --config FILE      TOML config to install as /etc/mm/NAME.toml when that does not exist yet
  --dry-run          print every change, change nothing
  --prefix DIR       install root of the virtualenv (default /opt/mm; venv in DIR/venv)
  --python PY        interpreter that creates the virtualenv (default python3)
  --etc-dir DIR      instance files (default /etc/mm)
  --unit-dir DIR     unit files (default /etc/systemd/system)
  --udev-dir DIR     udev rules (default /etc/udev/rules.d): the CPU wake-up bound's device
  --sys-root DIR     compute the layout for the /sys tree below DIR (default /)
  --no-enable        do not enable mm-engine@NAME.target at boot
EOF
}

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
INSTANCE=""
CONFIG=""
DRY=0
PREFIX=/opt/mm
PYTHON=python3
ETC=/etc/mm
UNIT_DIR=/etc/systemd/system
UDEV_DIR=/etc/udev/rules.d
SYS_ROOT=/
ENABLE=1
USER_NAME=mm
UNITS=(mm-engine@.target mm-sender@.service mm-quoter@.service mm-feed@.service mm-journal@.service mm-alert@.service)

while [ $# -gt 0 ]; do
  case "$1" in
    --instance) INSTANCE=${2:?--instance needs a name}; shift 2 ;;
    --config) CONFIG=${2:?--config needs a file}; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --prefix) PREFIX=${2:?}; shift 2 ;;
    --python) PYTHON=${2:?}; shift 2 ;;
    --etc-dir) ETC=${2:?}; shift 2 ;;
    --unit-dir) UNIT_DIR=${2:?}; shift 2 ;;
    --udev-dir) UDEV_DIR=${2:?}; shift 2 ;;
    --sys-root) SYS_ROOT=${2:?}; shift 2 ;;
    --no-enable) ENABLE=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

die() { echo "install.sh: $*" >&2; exit 2; }
[ -n "$INSTANCE" ] || die "--instance is required"
[[ "$INSTANCE" =~ ^[A-Za-z0-9_-]{1,40}$ ]] || die "--instance: expected 1-40 of [A-Za-z0-9_-], got '$INSTANCE'"
[ -z "$CONFIG" ] || [ -f "$CONFIG" ] || die "--config: $CONFIG not found"
[ "$DRY" = 1 ] || [ "$(id -u)" = 0 ] || die "run as root (or with --dry-run to see the changes)"
VENV=$PREFIX/venv
TOML=$ETC/$INSTANCE.toml
ENVFILE=$ETC/$INSTANCE.env
CREDS=$ETC/credentials/$INSTANCE

# Every change goes through run/write/keep, so --dry-run shows exactly what a real run does.
run() {
  if [ "$DRY" = 1 ]; then
    printf 'would run:'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

write() {  # write PATH MODE OWNER:GROUP, content on stdin; atomic replace
  local path=$1 mode=$2 owner=$3 content
  content=$(cat)
  if [ "$DRY" = 1 ]; then
    printf 'would write %s (mode %s, owner %s):\n' "$path" "$mode" "$owner"
    printf '%s\n' "$content" | sed 's/^/    | /'
    return
  fi
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$content" > "$path.tmp"
  chmod "$mode" "$path.tmp"
  chown "$owner" "$path.tmp"
  mv -f "$path.tmp" "$path"
}

keep() {  # keep PATH MODE OWNER:GROUP: an existing file the user owns the content of
  echo "keeping $1 (exists): fixing its owner and mode only"
  run chown "$2" "$1"
  run chmod "$3" "$1"
}

echo "== mm-engine install: instance $INSTANCE from $SRC$([ "$DRY" = 1 ] && echo ' (dry run: nothing is changed)')"

echo "-- service user"
if getent passwd "$USER_NAME" >/dev/null; then
  echo "user $USER_NAME exists"
else
  run useradd --system --user-group --home-dir /var/lib/mm --no-create-home \
    --shell /usr/sbin/nologin --comment "mm-engine" "$USER_NAME"
fi

echo "-- virtualenv $VENV"
[ -x "$VENV/bin/python" ] || run "$PYTHON" -m venv "$VENV"
run "$VENV/bin/pip" install --quiet --upgrade "$SRC"

echo "-- units in $UNIT_DIR"
for unit in "${UNITS[@]}"; do
  run install -D -m 0644 -o root -g root "$SRC/deploy/$unit" "$UNIT_DIR/$unit"
done

echo "-- the CPU wake-up bound (cpu_wake_latency_us): /dev/cpu_dma_latency writable by $USER_NAME"
# feed, quoter and sender hold a PM QoS request while they run (engine/box/wake_latency.py);
# the device is root's alone by default. The units bind it into their private /dev.
write "$UDEV_DIR/90-mm-cpu-latency.rules" 0644 root:root <<EOF
# mm-engine: the hot processes (user $USER_NAME) hold the CPU wake-up bound (PM QoS)
KERNEL=="cpu_dma_latency", GROUP="$USER_NAME", MODE="0660"
EOF
if [ -e /dev/cpu_dma_latency ]; then   # now, without waiting for udev's next event
  run chgrp "$USER_NAME" /dev/cpu_dma_latency
  run chmod 0660 /dev/cpu_dma_latency
fi

echo "-- instance files in $ETC"
run install -d -m 0750 -o root -g "$USER_NAME" "$ETC"
run install -d -m 0700 -o root -g root "$ETC/credentials" "$CREDS"
if [ -e "$TOML" ]; then
  keep "$TOML" "$USER_NAME:$USER_NAME" 0600
elif [ -n "$CONFIG" ]; then
  write "$TOML" 0600 "$USER_NAME:$USER_NAME" < "$CONFIG"
else
  write "$TOML" 0600 "$USER_NAME:$USER_NAME" <<EOF
# mm-engine instance $INSTANCE (fields: README "Running it"; check with mm doctor --config $TOML).
instance = "$INSTANCE"
[feed]
venue = "binance"            # binance | binance-sbe | bybit | okx
[sender]
auth = "auto"                # by the files in $CREDS/: ed25519_key -> Ed25519, api_secret -> HMAC
EOF
fi
if [ -e "$ENVFILE" ]; then
  keep "$ENVFILE" "$USER_NAME:$USER_NAME" 0600
else
  write "$ENVFILE" 0600 "$USER_NAME:$USER_NAME" <<EOF
# Non-secret settings of instance $INSTANCE for all three processes (EnvironmentFile=).
# Secrets do not go here: put api_key, api_secret and/or ed25519_key (PEM) in $CREDS/.
#MM_MD_URL=wss://stream.binance.com:9443
#MM_ORDER_URL=wss://ws-api.binance.com:443/ws-api/v3
#MM_SYMBOL=BTCUSDT
EOF
fi
for f in "$CREDS"/*; do
  if [ -f "$f" ]; then keep "$f" root:root 0600; fi
done

echo "-- layout (computed by each process at start: MM_LAYOUT=auto in the units)"
if [ -x "$VENV/bin/mm" ]; then
  MM=("$VENV/bin/mm")
else  # dry run before the venv exists: the checkout itself, run by --python
  MM=(env "PYTHONPATH=$SRC" "$PYTHON" -m engine.cli)
fi
LAYOUT_CONFIG=$TOML
[ -e "$TOML" ] || LAYOUT_CONFIG=$CONFIG
LAYOUT_ARGS=(layout --instance "$INSTANCE" --sys-root "$SYS_ROOT")
[ -z "$LAYOUT_CONFIG" ] || LAYOUT_ARGS+=(--config "$LAYOUT_CONFIG")
[ ! -r "$ENVFILE" ] || LAYOUT_ARGS+=(--env-file "$ENVFILE")
status=0
if [ ! -x "$VENV/bin/mm" ] && ! "$PYTHON" -c 'import msgspec, numpy' >/dev/null 2>&1; then
  status=127    # before the install, $PYTHON lacks the engine's dependencies: nothing to run
  echo "would compute the layout with $VENV/bin/mm once installed ($PYTHON cannot run mm yet)"
else
  echo "what the processes would choose on this box now (they recompute it at every start):"
  env -u MM_INSTANCE -u MM_SYMBOL -u MM_MD_URL -u MM_ORDER_URL "${MM[@]}" "${LAYOUT_ARGS[@]}" \
    | sed 's/^/    /' || status=$?
  if ! grep -qs '^MM_ORDER_URL=' "$ENVFILE"; then
    echo "    (no venue URLs in $ENVFILE yet: a core is kept for a local venue; the processes"
    echo "     choose again, without it, once MM_MD_URL and MM_ORDER_URL are set there)"
  fi
fi
if [ "$status" = 2 ]; then
  die "mm layout refused the config (see above); fix it, then re-run"
fi
for role in sender quoter feed; do   # frozen drop-ins of older installs
  dropin=$UNIT_DIR/mm-$role@$INSTANCE.service.d/layout.conf
  if [ -e "$dropin" ]; then run rm -f "$dropin"; fi
done

echo "-- systemd"
run systemctl daemon-reload
[ "$ENABLE" = 0 ] || run systemctl enable "mm-engine@$INSTANCE.target"

cat <<EOF
== next:
   1. credentials into $CREDS/ (api_key + api_secret, or api_key + ed25519_key), mode 0600
   2. venue URLs in $ENVFILE, strategy in $TOML
   3. $VENV/bin/mm doctor --config $TOML
      (the box against the config and $ENVFILE as the units read them; exit 1 on a fail)
   4. systemctl start mm-engine@$INSTANCE.target; journalctl -f -u 'mm-*@$INSTANCE.service'
EOF
