"""Feed process configuration ([feed] in the TOML file)."""
import msgspec


class FeedConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    venue: str = "binance"        # binance | binance-sbe | bybit | okx
    url: str = ""                 # market stream base URL (MM_MD_URL overrides; empty = simulator)
    core: int = -1                # CPU to pin to (-1: chosen by the layout)
