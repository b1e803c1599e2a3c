"""Signer/sender process: the order gateway, order state, and the safety net."""
