"""Quoter process configuration ([quoter] in the TOML file)."""
import msgspec


class QuoterConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    core: int = -1                # CPU to pin to (-1: chosen by the layout)
    idle: str = ""                # busy-spin | yield | park ("" = chosen by the layout)
