"""Local exchange simulator speaking Binance Spot's protocol on loopback (never imported by the
engine's hot path)."""
