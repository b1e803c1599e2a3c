"""Quoter configuration: defaults validate, bad values name the field."""
from __future__ import annotations

import pytest

from engine.config import ConfigError, load
from engine.quoter.config import QuoterConfig


def _load(tmp_path, body: str):
    path = tmp_path / "mm.toml"
    path.write_text("[quoter]\n" + body + "\n")
    return load(path, env={})


def test_defaults_validate(tmp_path):
    cfg = _load(tmp_path, "")
    assert cfg.quoter == QuoterConfig()


@pytest.mark.parametrize("body,field", [
    ('max_position = "-1"', "quoter.max_position"),
    ('order_size = "0"', "quoter.order_size"),
    ('order_size = "abc"', "quoter.order_size"),
    ('order_size = "0.000015"', "quoter.order_size"),        # not a whole number of lots
    ('strategy = "martingale"', "quoter.strategy"),
    ('glft = {fair_value = "last"}', "quoter.glft.fair_value"),
    ("glft = {gamma = 0.0}", "quoter.glft.gamma"),
    ("levels = 0", "quoter.levels"),
    ("glft = {floor_spread_ticks = 0}", "quoter.glft.floor_spread_ticks"),
    ("fixed_spread = {half_spread_ticks = 0}", "quoter.fixed_spread.half_spread_ticks"),
    ("fixed_spread = {skew_ticks = -1}", "quoter.fixed_spread.skew_ticks"),
    ("rate_per_10s = 0", "quoter.rate_per_10s"),
    ('idle = "sleep"', "quoter.idle"),
    ('max_position_by_symbol = {DOGEUSDT = "1"}', "quoter.max_position_by_symbol.DOGEUSDT"),
])
def test_bad_values_name_the_field(tmp_path, body, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        _load(tmp_path, body)


def test_unknown_field_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="gamm"):
        _load(tmp_path, "gamm = 0.1")
