"""Engine configuration: one TOML file, validated into frozen msgspec Structs, one per process.

A bad value raises ConfigError naming the field (e.g. `quoter.levels: expected 1..16, got 0`);
a wrong choice lists the valid ones, a number where a decimal string belongs says to quote it.
Ranges are msgspec constraints on the fields, the other rules each section's `validate` and,
across sections, `check` here (engine/config_check.py says how).
Deployment-specific values can come from the environment (systemd EnvironmentFile= style) and
override the file (ENV_VARS). API keys are read by the sender (engine/sender/keys.py) from
MM_API_KEY / MM_API_SECRET or files named in its config, never stored here.
`mm.example.toml` at the repository root documents every key (a test keeps it complete).
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from engine.backtest.config import BacktestConfig
from engine.config_check import ConfigError, NonNegativeFloat, PositiveInt, check_struct, explain
from engine.feed.config import FeedConfig
from engine.instruments import DEFAULT_INSTRUMENTS, Instrument
from engine.journal.config import JournalConfig
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
# The sections with rules of their own (`validate(instruments)`), by their key in the file.
SECTIONS = ("feed", "quoter", "sender", "sim", "backtest", "journal")
Tag = Annotated[str, Meta(pattern=r"^[A-Za-z0-9]{0,8}$",
                          description="1-8 of [A-Za-z0-9] (or empty: chosen per instance)")]
Url = Annotated[str, Meta(pattern=r"^(wss?://|https?://|$)",
                          description="a ws(s):// or http(s):// URL")]


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
    tag: Tag = ""                 # client order id prefix: <tag>-<update id>-<n>; "" = a random
                                  # tag chosen once per instance and kept in state_dir, so two
                                  # instances on one account never take each other's orders
    state_dir: str = ""           # what survives restarts (tag, rate windows); "" = $MM_STATE_DIR,
                                  # $STATE_DIRECTORY (systemd), else ./state
    duration_s: NonNegativeFloat = 30.0  # mm run: stop after this long (0 = until SIGTERM)
    instruments: tuple[Instrument, ...] = DEFAULT_INSTRUMENTS
    max_instruments: int = 256    # the most instruments this engine accepts (1..1024: the
                                  # control segment's counters hold one per instrument)
    instruments_url: Url = ""     # where the instruments' filters are read at start: "" = the order
                                  # URL (Binance WS API exchangeInfo); http(s)://host = the venue's
                                  # REST API (Binance /api/v3/exchangeInfo, Bybit
                                  # /v5/market/instruments-info)
    rings: RingsConfig = RingsConfig()
    heartbeat_timeout_ms: Annotated[int, Meta(ge=100)] = 2000  # supervisor: a process silent this
                                  # long trips the kill switch
    realtime_priority: Annotated[int, Meta(ge=0, le=99)] = 0  # SCHED_FIFO priority for parking
                                  # processes, set by each on itself, never by a spinner
                                  # (0 = off; needs CAP_SYS_NICE)
    lock_memory: bool = False     # mlockall() every process (needs CAP_IPC_LOCK or LimitMEMLOCK)
    cpu_wake_latency_us: Annotated[int, Meta(ge=-1, le=1_000_000)] = 0  # the CPU wake-up bound
                                  # feed, quoter and sender hold while they run (PM QoS,
                                  # /dev/cpu_dma_latency; 0: idle CPUs poll, a parked stage
                                  # wakes in a few us; -1: the box's own setting)
    metrics_port: Annotated[int, Meta(ge=0, le=65535)] = 9464  # Prometheus endpoint on 127.0.0.1
                                  # during mm run (0 = off)
    latency_ceiling_us: PositiveInt = DEFAULT_LATENCY_CEILING_US  # hop percentiles above this are
                                  # flagged (report, mm status; metrics export it)
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
        raise ConfigError(explain(e, raw, EngineConfig, moved=MOVED)) from None
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
    """Every rule of a configuration, loaded or built in code: each field's constraints, the
    rules across sections (here), each section's own against the instruments
    (engine/<process>/config.py `validate`); ConfigError naming the field."""
    from engine.control import MAX_INSTRUMENTS
    from engine.ring.segment import SegmentError, segment_name

    check_struct(cfg)
    try:
        segment_name(cfg.instance, "control")
    except SegmentError:
        raise ConfigError(f"instance: expected 1-40 of [A-Za-z0-9_-] (it names shared memory "
                          f"and the run directory), got {cfg.instance!r}") from None
    for name in ("md", "orders", "fills", "journal"):
        capacity = getattr(cfg.rings, name).capacity
        if capacity < 2 or capacity & (capacity - 1):
            raise ConfigError(f"rings.{name}.capacity: expected a power of two >= 2, got {capacity}")
    if not cfg.instruments:
        raise ConfigError("instruments: at least one instrument is needed")
    # The bound is the control segment's layout (engine.control loads numpy and the native
    # module, which the config does not import at load).
    if not 1 <= cfg.max_instruments <= MAX_INSTRUMENTS:
        raise ConfigError(f"max_instruments: expected 1..{MAX_INSTRUMENTS}, got "
                          f"{cfg.max_instruments}")
    if len(cfg.instruments) > cfg.max_instruments:
        raise ConfigError(f"instruments: {len(cfg.instruments)} configured (MM_SYMBOL or "
                          f"[[instruments]]), more than max_instruments = "
                          f"{cfg.max_instruments}; raise max_instruments (up to "
                          f"{MAX_INSTRUMENTS}) or trade fewer symbols")
    for name in SECTIONS:
        try:
            getattr(cfg, name).validate(cfg.instruments)
        except ValueError as e:       # ConfigError, or a registry's (venue adapters, chaos)
            raise ConfigError(str(e)) from None
    strategy = getattr(cfg.quoter, cfg.quoter.strategy, None)
    if getattr(strategy, "fair_value", "") == "depth_imbalance" and not cfg.feed.keeps_depth():
        from engine.feed.venues import ADAPTERS

        book = getattr(ADAPTERS.get(cfg.feed.venue), "DEPTH_STREAMS", ()) or ("depth@100ms",)
        raise ConfigError(f"quoter.{cfg.quoter.strategy}.fair_value: depth_imbalance needs the "
                          f"feed's L2 book: add one of {list(book)} to feed.streams "
                          f"(feed.venue {cfg.feed.venue!r}), got {list(cfg.feed.streams)}")
