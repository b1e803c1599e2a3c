"""Sender process configuration ([sender] in the TOML file)."""
import msgspec


class SenderConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    venue: str = "binance"        # binance | bybit
    url: str = ""                 # order WebSocket API URL (MM_ORDER_URL overrides; empty = simulator)
    core: int = -1
    idle: str = ""                # busy-spin | park ("" = chosen by the layout)
