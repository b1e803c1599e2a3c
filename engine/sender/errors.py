"""The gateway's errors: what a set-up request or a venue's answer can raise."""
from __future__ import annotations


class GatewayError(Exception):
    """A set-up request failed (logon refused, timeout): the message says which and why."""


class VenueRefusal(GatewayError):
    """The venue refuses us for a reason retrying cannot fix (bad key, bad signature, unknown
    symbol, a filter every order fails): the message says what to change."""
