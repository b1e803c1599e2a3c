"""Simulator configuration ([sim] in the TOML file, or `mm sim` flags)."""
import msgspec


class SimConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 0                 # 0 = pick a free port
    seed: int = 1
