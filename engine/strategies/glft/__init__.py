"""GLFT: Gueant-Lehalle-Fernandez-Tapia quotes around a fair value, spread and skew scaled by
an EWMA volatility (config.py: [quoter.glft]; model.py: the compiled hooks)."""
