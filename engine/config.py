"""Engine configuration: one TOML file, validated into frozen msgspec Structs, one per process.

A bad value raises ConfigError naming the field (e.g. `quoter.max_position: expected >= 0`).
Deployment-specific values can come from the environment (systemd EnvironmentFile= style) and
override the file: MM_MD_URL, MM_ORDER_URL, MM_SYMBOL, MM_INSTANCE. API keys are read by the
sender (engine/sender/keys.py) from MM_API_KEY / MM_API_SECRET or files named in its config,
never stored here.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

import msgspec

from engine.feed.config import FeedConfig
from engine.instruments import DEFAULT_INSTRUMENTS, Instrument
from engine.quoter.config import QuoterConfig
from engine.sender.config import SenderConfig
from engine.sim.config import SimConfig


class ConfigError(ValueError):
    """The configuration is invalid; the message names the field."""


class RingConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    capacity: int                 # slots, a power of two
    policy: str                   # drop (count and refuse the newest) | block (back-pressure)


class RingsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Market data never blocks the socket reader: a full md ring drops (counted, seq gap).
    md: RingConfig = RingConfig(capacity=4096, policy="drop")
    # Order intents and fills are never dropped: the producer waits.
    orders: RingConfig = RingConfig(capacity=1024, policy="block")
    fills: RingConfig = RingConfig(capacity=1024, policy="block")


class EngineConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    instance: str = "mm"          # shared-memory name prefix; two engines on a box need two names
    tag: str = ""                 # client order id prefix: <tag>-<update id>-<n>; "" = a random
                                  # tag chosen once per instance and kept in state_dir, so two
                                  # instances on one account never take each other's orders
    state_dir: str = ""           # what survives restarts (tag, rate windows); "" = $MM_STATE_DIR,
                                  # $STATE_DIRECTORY (systemd), else ./state
    duration_s: float = 30.0      # mm run: stop after this long (0 = until SIGTERM)
    instruments: tuple[Instrument, ...] = DEFAULT_INSTRUMENTS
    rings: RingsConfig = RingsConfig()
    heartbeat_timeout_ms: int = 2000  # supervisor: a process silent this long trips the kill switch
    realtime_priority: int = 0    # SCHED_FIFO priority for parking processes (0 = off; needs CAP_SYS_NICE)
    lock_memory: bool = False     # mlockall() every process (needs CAP_IPC_LOCK or LimitMEMLOCK)
    metrics_port: int = 9464      # Prometheus endpoint on 127.0.0.1 during mm run (0 = off)
    feed: FeedConfig = FeedConfig()
    quoter: QuoterConfig = QuoterConfig()
    sender: SenderConfig = SenderConfig()
    sim: SimConfig = SimConfig()


def dump_json(cfg: EngineConfig) -> bytes:
    """The resolved configuration, as the supervisor hands it to the processes it starts."""
    return msgspec.json.encode(cfg)


def load(path: str | os.PathLike | None = None, env: dict | None = None) -> EngineConfig:
    """Load and validate the TOML file at `path` (None: all defaults), then apply MM_* overrides."""
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
    raw = _apply_env(raw, env)
    try:
        cfg = msgspec.convert(raw, EngineConfig)
    except (msgspec.ValidationError, ValueError) as e:
        raise ConfigError(f"config: {e}") from None
    _check(cfg)
    return cfg


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
        known = {i["symbol"] if isinstance(i, dict) else i.symbol: i
                 for i in raw.get("instruments", [msgspec.to_builtins(i) for i in DEFAULT_INSTRUMENTS])}
        raw["instruments"] = [known.get(s, {"symbol": s}) for s in symbols]
    return raw


def _check(cfg: EngineConfig) -> None:
    for name, rc in (("md", cfg.rings.md), ("orders", cfg.rings.orders), ("fills", cfg.rings.fills)):
        if rc.capacity < 2 or rc.capacity & (rc.capacity - 1):
            raise ConfigError(f"rings.{name}.capacity: expected a power of two >= 2, got {rc.capacity}")
        if rc.policy not in ("drop", "block"):
            raise ConfigError(f"rings.{name}.policy: expected 'drop' or 'block', got {rc.policy!r}")
    if not cfg.instruments:
        raise ConfigError("instruments: at least one instrument is needed")
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
    # Each process validates its own section further (engine/<process>/config.py).
    for section in (cfg.feed, cfg.quoter, cfg.sender, cfg.sim):
        check = getattr(section, "validate", None)
        if check is not None:
            try:
                check(cfg)
            except ValueError as e:
                raise ConfigError(str(e)) from None
