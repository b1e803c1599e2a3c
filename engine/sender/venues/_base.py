"""What every order venue package declares: one OrderVenue, the facts the engine reaches the
venue by (its registry entry in engine/sender/venues/__init__.py).

The gateway is named, not imported: a configuration names its venue, and loading it (or
checking credentials, or asking for instruments) must not import every venue's hot path.
"""
from __future__ import annotations

import importlib
from typing import NamedTuple


class OrderVenue(NamedTuple):
    """One order venue: its name in the config and in messages, its gateway, the credential
    methods its order API takes."""
    name: str                     # sender.venue
    title: str                    # in messages: "Bybit signs with HMAC"
    gateway: str                  # "package.module:Class", a subclass of engine.sender.gateway's
                                  # Gateway, imported when a sender starts
    auths: tuple[str, ...]        # "hmac" (every venue), "ed25519" (an Ed25519 session)

    def gateway_class(self) -> type:
        """The venue's Gateway subclass (imports its module)."""
        module, _, cls = self.gateway.partition(":")
        return getattr(importlib.import_module(module), cls)
