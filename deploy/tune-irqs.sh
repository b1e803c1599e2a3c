#!/usr/bin/env bash
# Move every movable device IRQ to the housekeeping CPUs, so none lands on a trading core.
#   deploy/tune-irqs.sh [CPU-LIST]     (default: the online CPUs that are not isolated)
# Run as root at boot, before the engine starts, with irqbalance stopped (or told to stay off
# the trading cores: IRQBALANCE_BANNED_CPULIST=<trading cores> in /etc/default/irqbalance).
# IRQs created later take /proc/irq/default_smp_affinity: boot with irqaffinity=<CPU-LIST> too.
# `mm doctor` lists the IRQs still allowed on trading cores, ranges such as 0-7 included.
set -eu
cpu=/sys/devices/system/cpu

expand() {  # "0-2,5" -> "0 1 2 5"
  local part
  local IFS=,
  for part in $1; do
    [ -n "$part" ] && seq "${part%-*}" "${part#*-}"
  done
}

house=${1:-}
if [ -z "$house" ]; then
  isolated=" $(expand "$(cat "$cpu/isolated" 2>/dev/null)" | tr '\n' ' ') "
  for c in $(expand "$(cat "$cpu/online")"); do
    case "$isolated" in *" $c "*) ;; *) house="${house:+$house,}$c" ;; esac
  done
fi
[ -n "$house" ] || { echo "tune-irqs: no housekeeping CPU found; give a CPU list" >&2; exit 2; }

moved=0
kept=""
for f in /proc/irq/*/smp_affinity_list; do
  irq=$(basename "$(dirname "$f")")
  if echo "$house" 2>/dev/null > "$f"; then
    moved=$((moved + 1))
  else
    kept="$kept $irq($(cat "$f"))"
  fi
done
echo "IRQs moved to CPU(s) $house: $moved"
[ -z "$kept" ] || echo "left where the kernel keeps them (per-CPU or managed):$kept"
