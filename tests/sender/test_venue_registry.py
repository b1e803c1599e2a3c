"""The order venues' registry (engine/sender/venues): one entry per venue package, each
reaching a gateway that implements every hook the base gateway declares."""
from __future__ import annotations

import typing

import pytest

from engine.config import EngineConfig
from engine.sender import keys
from engine.sender.config import SenderConfig, Venue
from engine.sender.gateway import Gateway
from engine.sender.venues import VENUES, make_gateway, venue

HOOKS = ("logon", "place_into", "replace_into", "send_cancel", "dry_intent", "on_frame",
         "query", "reconcile", "cancel_everything", "redact")


class _Sink:
    def emit(self, *a, **k):
        return True


def test_an_unknown_venue_names_the_field_and_the_known_ones():
    with pytest.raises(ValueError, match=r"sender\.venue: expected one of binance, bybit; "
                                         r"got 'kraken'"):
        venue("kraken")


def test_the_config_choices_are_the_registry():
    assert set(typing.get_args(Venue)) == set(VENUES)


@pytest.mark.parametrize("name", sorted(VENUES))
def test_every_venue_reaches_a_gateway_with_every_hook(name):
    v = VENUES[name]
    assert v.name == name and "hmac" in v.auths
    cls = v.gateway_class()
    assert issubclass(cls, Gateway) and cls.venue == name
    for hook in HOOKS:
        assert getattr(cls, hook) is not getattr(Gateway, hook), f"{name}: no {hook}"
    cfg = EngineConfig(tag="mm", sender=SenderConfig(url="ws://127.0.0.1:1/", venue=name,
                                                     auth="hmac"))
    gw = make_gateway(cfg, keys.load(cfg.sender, cfg.sender.url, env={}), _Sink())
    assert type(gw) is cls
    # what the sender process reads, declared by the base for every venue
    assert gw.fd == -1 and gw.auth != "?" and gw.shutdown_notice is False
