"""Order venues: one package per venue (request encoding, wire schema, gateway, reconcile)."""
