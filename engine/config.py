"""Engine configuration: one TOML file, validated into frozen msgspec Structs, one per process.

A bad value raises ConfigError naming the field (e.g. `quoter.max_position: expected >= 0`); a
wrong choice lists the valid ones, a number where a decimal string belongs says to quote it.
Deployment-specific values can come from the environment (systemd EnvironmentFile= style) and
override the file (ENV_VARS). API keys are read by the sender (engine/sender/keys.py) from
MM_API_KEY / MM_API_SECRET or files named in its config, never stored here.
`mm.example.toml` at the repository root documents every key (a test keeps it complete).
"""
from __future__ import annotations

import os
import re
import tomllib
import typing
from pathlib import Path
from typing import Literal

import msgspec

from engine.backtest.config import BacktestConfig
from engine.feed.config import FeedConfig
from engine.journal.config import JournalConfig
from engine.instruments import DEFAULT_INSTRUMENTS, Instrument
from engine.quoter.config import QuoterConfig
from engine.sender.config import SenderConfig
from engine.sim.config import SimConfig
from engine.units import DEFAULT_LATENCY_CEILING_US

# The environment a deployment sets (one line each in `mm run --help`).
ENV_VARS = (
    ("MM_API_KEY", "API key (else sender.api_key_file; a demo key for a loopback simulator)"),
    ("MM_API_SECRET", "HMAC API secret (else sender.api_secret_file)"),
    ("MM_ED25519_KEY_FILE", "Ed25519 private key, PEM, mode 0600 (else sender.ed25519_key_file)"),
    ("MM_AUTH", "auto | hmac | ed25519, overrides sender.auth (auto: Ed25519 if a key is set)"),
    ("MM_MD_URL", "market data WebSocket URL (feed.url); with MM_ORDER_URL, trade that venue"),
    ("MM_ORDER_URL", "order WebSocket API URL (sender.url)"),
    ("MM_SYMBOL", "symbols to trade, comma-separated (their filters come from the venue)"),
    ("MM_INSTANCE", "instance name, the prefix of its shared memory (instance)"),
    ("MM_STATE_DIR", "what an instance keeps across restarts: its order-id tag and rate "
                     "windows (default ./state; systemd: StateDirectory=)"),
)
# The variables `load` applies over the file; a resolved config file (mm run's config.json) must
# be read without them.
CONFIG_ENV = ("MM_INSTANCE", "MM_MD_URL", "MM_ORDER_URL", "MM_SYMBOL")
INSTRUMENT_FILTERS = ("base", "quote", "tick_size", "lot_size", "min_notional")
# Settings that moved: where an older config file has them -> where they live now.
MOVED = {f"quoter.{k}": f"quoter.glft.{k}" for k in
         ("fair_value", "vol_half_life_s", "gamma", "k", "A", "floor_spread_ticks")}


class ConfigError(ValueError):
    """The configuration is invalid; the message names the field."""


class RingConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    capacity: int                 # slots, a power of two
    policy: Literal["drop", "block"]  # drop (count and refuse the newest) | block (back-pressure)


class RingsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Market data never blocks the socket reader: a full md ring drops (counted, seq gap).
    md: RingConfig = RingConfig(capacity=4096, policy="drop")
    # Order intents and fills are never dropped: the producer waits.
    orders: RingConfig = RingConfig(capacity=1024, policy="block")
    fills: RingConfig = RingConfig(capacity=1024, policy="block")
    # The journal never holds the sender up: a full ring drops (counted; the journal agent
    # fills the gap from the venue's trade list).
    journal: RingConfig = RingConfig(capacity=16384, policy="drop")


class EngineConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    instance: str = "mm"          # shared-memory name prefix; two engines on a box need two names
    tag: str = ""                 # client order id prefix: <tag>-<update id>-<n>; "" = a random
                                  # tag chosen once per instance and kept in state_dir, so two
                                  # instances on one account never take each other's orders
    state_dir: str = ""           # what survives restarts (tag, rate windows); "" = $MM_STATE_DIR,
                                  # $STATE_DIRECTORY (systemd), else ./state
    duration_s: float = 30.0      # mm run: stop after this long (0 = until SIGTERM)
    instruments: tuple[Instrument, ...] = DEFAULT_INSTRUMENTS
    max_instruments: int = 256    # the most instruments this engine accepts (1..1024: the
                                  # control segment's counters hold one per instrument)
    instruments_url: str = ""     # where the instruments' filters are read at start: "" = the order
                                  # URL (Binance WS API exchangeInfo); http(s)://host = the venue's
                                  # REST API (Binance /api/v3/exchangeInfo, Bybit
                                  # /v5/market/instruments-info)
    rings: RingsConfig = RingsConfig()
    heartbeat_timeout_ms: int = 2000  # supervisor: a process silent this long trips the kill switch
    realtime_priority: int = 0    # SCHED_FIFO priority for parking processes (0 = off; needs CAP_SYS_NICE)
    lock_memory: bool = False     # mlockall() every process (needs CAP_IPC_LOCK or LimitMEMLOCK)
    metrics_port: int = 9464      # Prometheus endpoint on 127.0.0.1 during mm run (0 = off)
    latency_ceiling_us: int = DEFAULT_LATENCY_CEILING_US  # hop percentiles above this are flagged
                                  # (report, mm status; metrics export it)
    feed: FeedConfig = FeedConfig()
    quoter: QuoterConfig = QuoterConfig()
    sender: SenderConfig = SenderConfig()
    sim: SimConfig = SimConfig()
    backtest: BacktestConfig = BacktestConfig()
    journal: JournalConfig = JournalConfig()


def dump_json(cfg: EngineConfig) -> bytes:
    """The resolved configuration, as the supervisor hands it to the processes it starts."""
    return msgspec.json.encode(cfg)


def load(path: str | os.PathLike | None = None, env: dict | None = None) -> EngineConfig:
    """Load and validate the TOML file at `path` (None: all defaults), then apply MM_* overrides."""
    return load_with_sources(path, env)[0]


def load_with_sources(path: str | os.PathLike | None = None, env: dict | None = None
                      ) -> tuple[EngineConfig, dict[str, frozenset[str]]]:
    """`load`, plus which instrument filters (INSTRUMENT_FILTERS) the user wrote, per symbol:
    those must agree with the venue; the others (built-in defaults) are replaced by its values."""
    env = os.environ if env is None else env
    raw: dict = {}
    if path is not None:
        try:
            text = Path(path).read_text()
            raw = msgspec.json.decode(text) if str(path).endswith(".json") else tomllib.loads(text)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found") from None
        except (tomllib.TOMLDecodeError, msgspec.DecodeError) as e:
            raise ConfigError(f"config file {path}: {e}") from None
    configured = {}
    entries = raw.get("instruments", ())
    for entry in entries if isinstance(entries, list) else ():  # the file's, before MM_SYMBOL
        if isinstance(entry, dict) and isinstance(entry.get("symbol"), str):
            configured[entry["symbol"].upper()] = frozenset(
                k for k in INSTRUMENT_FILTERS if k in entry)
    raw = _apply_env(raw, env)
    try:
        cfg = msgspec.convert(raw, EngineConfig)
    except msgspec.ValidationError as e:
        raise ConfigError(explain(e, raw)) from None
    except ValueError as e:
        raise ConfigError(f"config: {e}") from None
    check(cfg)
    return cfg, configured


def _apply_env(raw: dict, env) -> dict:
    raw = dict(raw)
    if env.get("MM_INSTANCE"):
        raw["instance"] = env["MM_INSTANCE"]
    if env.get("MM_MD_URL"):
        raw["feed"] = {**raw.get("feed", {}), "url": env["MM_MD_URL"]}
    if env.get("MM_ORDER_URL"):
        raw["sender"] = {**raw.get("sender", {}), "url": env["MM_ORDER_URL"]}
    if env.get("MM_SYMBOL"):
        symbols = [s.strip().upper() for s in env["MM_SYMBOL"].split(",") if s.strip()]
        # Symbols the file lists keep what the file says, built-in ones their defaults; the
        # others get only their name: their filters come from the venue (engine/venue_info.py).
        listed = {i["symbol"].upper(): i for i in raw.get("instruments", [])
                  if isinstance(i, dict) and isinstance(i.get("symbol"), str)}
        builtin = {i.symbol: msgspec.to_builtins(i) for i in DEFAULT_INSTRUMENTS}
        raw["instruments"] = [listed.get(s) or builtin.get(s) or {"symbol": s} for s in symbols]
    return raw


def check(cfg: EngineConfig) -> None:
    """Cross-field checks, and each process's own (engine/<process>/config.py); ConfigError."""
    from engine.ring.segment import SegmentError, segment_name

    try:
        segment_name(cfg.instance, "control")
    except SegmentError:
        raise ConfigError(f"instance: expected 1-40 of [A-Za-z0-9_-] (it names shared memory "
                          f"and the run directory), got {cfg.instance!r}") from None
    for name, rc in (("md", cfg.rings.md), ("orders", cfg.rings.orders), ("fills", cfg.rings.fills),
                     ("journal", cfg.rings.journal)):
        if rc.capacity < 2 or rc.capacity & (rc.capacity - 1):
            raise ConfigError(f"rings.{name}.capacity: expected a power of two >= 2, got {rc.capacity}")
    if not cfg.instruments:
        raise ConfigError("instruments: at least one instrument is needed")
    from engine.control import MAX_INSTRUMENTS

    if not 1 <= cfg.max_instruments <= MAX_INSTRUMENTS:
        raise ConfigError(f"max_instruments: expected 1..{MAX_INSTRUMENTS}, got "
                          f"{cfg.max_instruments}")
    if len(cfg.instruments) > cfg.max_instruments:
        raise ConfigError(f"instruments: {len(cfg.instruments)} configured (MM_SYMBOL or "
                          f"[[instruments]]), more than max_instruments = "
                          f"{cfg.max_instruments}; raise max_instruments (up to "
                          f"{MAX_INSTRUMENTS}) or trade fewer symbols")
    if cfg.tag and (len(cfg.tag) > 8 or not cfg.tag.isalnum() or not cfg.tag.isascii()):
        raise ConfigError(f"tag: expected 1-8 of [A-Za-z0-9] (or empty: chosen per instance), "
                          f"got {cfg.tag!r}")
    if not 0 <= cfg.realtime_priority <= 99:
        raise ConfigError(f"realtime_priority: expected 0..99, got {cfg.realtime_priority}")
    if not 0 <= cfg.metrics_port <= 65535:
        raise ConfigError(f"metrics_port: expected 0..65535, got {cfg.metrics_port}")
    if cfg.heartbeat_timeout_ms < 100:
        raise ConfigError(f"heartbeat_timeout_ms: expected >= 100, got {cfg.heartbeat_timeout_ms}")
    if cfg.duration_s < 0:
        raise ConfigError(f"duration_s: expected >= 0, got {cfg.duration_s}")
    if cfg.latency_ceiling_us < 1:
        raise ConfigError(f"latency_ceiling_us: expected >= 1, got {cfg.latency_ceiling_us}")
    if cfg.instruments_url and not cfg.instruments_url.startswith(
            ("ws://", "wss://", "http://", "https://")):
        raise ConfigError(f"instruments_url: expected a ws(s):// or http(s):// URL, "
                          f"got {cfg.instruments_url!r}")
    for section in (cfg.feed, cfg.quoter, cfg.sender, cfg.sim, cfg.backtest):
        validate = getattr(section, "validate", None)
        if validate is not None:
            try:
                validate(cfg)
            except ValueError as e:
                raise ConfigError(str(e)) from None


# ---------------------------------------------------------------------- readable type errors
_PATH_RE = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_TOKEN_RE = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\.\.\.)\]")
_UNKNOWN_RE = re.compile(r"Object contains unknown field `([^`]*)`")
_EXPECTED_RE = re.compile(r"Expected `([^`]*)`, got `([^`]*)`")


def explain(err: msgspec.ValidationError, raw: dict) -> str:
    """msgspec's validation error as the user should read it: the dotted field name first,
    the valid choices of a Literal field, a hint to quote a number meant as a decimal string."""
    text = str(err)
    m = _PATH_RE.search(text)
    what = text[:m.start()] if m else text       # no path: the top level
    tokens = _TOKEN_RE.findall(m.group("path")) if m else []
    hint, value, found = EngineConfig, raw, True
    parts: list[str] = []
    for name, index in tokens:
        if name:
            parts.append(name)
            hint = _field_hint(hint, name)
            value = value.get(name) if isinstance(value, dict) else None
        elif index == "...":                       # a dict value; msgspec does not say which
            hint = typing.get_args(_strip(hint))[-1] if hint is not None else None
            bad = ({k: v for k, v in value.items() if not isinstance(v, str)}
                   if isinstance(value, dict) else {})
            key = next(iter(bad), None)
            parts[-1:] = [f"{parts[-1]}.{key}" if parts and key is not None else parts[-1]]
            value, found = (bad[key], True) if key is not None else (None, False)
        else:
            parts[-1:] = [f"{parts[-1]}[{index}]"] if parts else [f"[{index}]"]
            hint = typing.get_args(_strip(hint))[0] if hint is not None else None
            in_list = isinstance(value, list) and int(index) < len(value)
            value = value[int(index)] if in_list else None
    field = ".".join(parts)
    unknown = _UNKNOWN_RE.match(what)
    if unknown:
        key = f"{field + '.' if field else ''}{unknown.group(1)}"
        if key in MOVED:
            new = MOVED[key]
            return (f"{key}: moved to {new} (write it under [{new.rpartition('.')[0]}])")
        return f"{key}: unknown setting (every key is listed in mm.example.toml)"
    field = field or "config"
    got = f"{type(value).__name__} {value!r}" if found else "another type"
    choices = _literal_choices(hint)
    if choices:
        return f"{field}: expected one of {', '.join(map(str, choices))}; got {value!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and _is_str(hint):
        if _is_decimal(hint):
            return (f"{field}: expected a decimal string like \"{value}\" (quote it in TOML), "
                    f"got {got}")
        return f"{field}: expected a string (quote it in TOML), got {got}"
    expected = _EXPECTED_RE.match(what)
    if expected:
        return f"{field}: expected {expected.group(1)}, got {got if found else expected.group(2)}"
    return f"{field}: {what[0].lower()}{what[1:]}"


def _strip(hint):
    """The type under Annotated[...] / Optional[...] (one level)."""
    if typing.get_origin(hint) is typing.Annotated:
        return typing.get_args(hint)[0]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None)) \
            and len(args) == 1:
        return args[0]
    return hint


def _field_hint(cls, name: str):
    cls = _strip(cls)
    if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
        return None
    return typing.get_type_hints(cls, include_extras=True).get(name)


def _literal_choices(hint) -> tuple:
    hint = _strip(hint)
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else ()


def _is_str(hint) -> bool:
    return _strip(hint) is str


def _is_decimal(hint) -> bool:
    if typing.get_origin(hint) is not typing.Annotated:
        return False
    return any(isinstance(m, msgspec.Meta) and m.description == "decimal string"
               for m in typing.get_args(hint)[1:])
