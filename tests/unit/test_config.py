"""Configuration: bad values name the field; MM_* environment overrides win over the file."""
import pytest

from engine import config
from engine.layout import choose


def _write(tmp_path, text):
    p = tmp_path / "mm.toml"
    p.write_text(text)
    return p


def test_defaults_are_valid():
    cfg = config.load(env={})
    assert cfg.instruments[0].symbol == "BTCUSDT"
    assert cfg.instruments[0].tick_size == "0.01" and cfg.instruments[0].lot_size == "0.00001"


@pytest.mark.parametrize("text, field", [
    ("[rings.md]\ncapacity = 100\npolicy = 'drop'\n", "rings.md.capacity"),
    ("[rings.orders]\ncapacity = 64\npolicy = 'lose'\n", "rings.orders.policy"),
    ("tag = 'way-too-long-tag'\n", "tag"),
    ("duration_s = -1\n", "duration_s"),
    ("realtime_priority = 120\n", "realtime_priority"),
    ("bogus = 1\n", "bogus"),
    ("[feed]\nnot_a_field = 1\n", "not_a_field"),
    ("[[instruments]]\nsymbol = 'X'\ntick_size = 'abc'\n", "tick_size"),
])
def test_bad_values_name_the_field(tmp_path, text, field):
    with pytest.raises(config.ConfigError, match=field.replace(".", r"\.")):
        config.load(_write(tmp_path, text), env={})


def test_env_overrides_file(tmp_path):
    p = _write(tmp_path, "[feed]\nurl = 'ws://file'\n[sender]\nurl = 'ws://file/api'\n")
    cfg = config.load(p, env={"MM_MD_URL": "wss://md.example", "MM_ORDER_URL": "wss://api.example",
                              "MM_SYMBOL": "ethusdt", "MM_INSTANCE": "blue"})
    assert cfg.feed.url == "wss://md.example" and cfg.sender.url == "wss://api.example"
    assert [i.symbol for i in cfg.instruments] == ["ETHUSDT"]
    assert cfg.instruments[0].lot_size == "0.0001"  # the known instrument keeps its filters
    assert cfg.instance == "blue"


def test_json_round_trip(tmp_path):
    cfg = config.load(env={})
    p = tmp_path / "c.json"
    p.write_bytes(config.dump_json(cfg))
    assert config.load(p, env={}) == cfg


def test_layout_two_cores_one_spinner():
    cfg = config.load(env={})
    lay = choose(cfg, with_sim=True, cpus=[0, 1], isolated=set())
    spinners = [r for r, how in lay.idle.items() if how == "busy-spin"]
    assert spinners == ["sender"]
    assert [r for r, c in lay.cores.items() if c == lay.cores["sender"]] == ["sender"]
    assert not lay.warnings or all("isolated" in w for w in lay.warnings)


def test_layout_warns_on_shared_spinner(tmp_path):
    p = _write(tmp_path, "[quoter]\ncore = 0\nidle = 'busy-spin'\n[sender]\ncore = 0\n")
    lay = choose(config.load(p, env={}), with_sim=False, cpus=[0, 1], isolated=set())
    assert any("spins on core 0 shared with" in w for w in lay.warnings)


def test_layout_refuses_realtime_spinner(tmp_path):
    p = _write(tmp_path, "realtime_priority = 10\n")
    with pytest.raises(ValueError, match="realtime_priority"):
        choose(config.load(p, env={}), with_sim=False, cpus=[0, 1], isolated=set())
