"""Fixed spread with inventory skew: quotes a fixed distance either side of a fair value, both
shifted against the inventory (config.py: [quoter.fixed_spread]; model.py: compiled hooks)."""
