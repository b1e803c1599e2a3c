"""Configuration: bad values name the field; MM_* environment overrides win over the file."""
import msgspec
import pytest

from engine import config
from engine.box.core_layout import LOCAL_VENUE_NOTE, choose, venue_takes_a_core


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
    lay = choose(cfg, with_sim=False, cpus=[0, 1], isolated=set())
    spinners = [r for r, how in lay.idle.items() if how == "busy-spin"]
    assert spinners == ["sender"]
    assert [r for r, c in lay.cores.items() if c == lay.cores["sender"]] == ["sender"]
    assert not lay.warnings or all("isolated" in w for w in lay.warnings)


def test_layout_two_cores_with_the_venue_beside_spins_nothing():
    """A venue at a loopback URL needs a core too; the embedded simulator does not take one
    (pinned to a parked stage's core, SCHED_IDLE: it stands in for a remote venue)."""
    cfg = config.load(env={})
    lay = choose(cfg, with_sim=False, cpus=[0, 1], isolated=set(), venue_local=True)
    assert set(lay.idle.values()) == {"park", "epoll"}    # the feed sleeps in epoll
    three = choose(cfg, with_sim=False, cpus=[0, 1, 2], isolated=set(), venue_local=True)
    assert three.idle == {"quoter": "park", "sender": "busy-spin", "feed": "epoll"}
    sim = choose(cfg, with_sim=True, cpus=[0, 1], isolated=set(),
                 venue_local=venue_takes_a_core(cfg, with_sim=True))
    assert sim.idle == {"quoter": "park", "sender": "busy-spin", "feed": "epoll"}
    assert sim.cores == {"feed": 0, "quoter": 0, "sender": 1, "sim": 0}   # not the spinner's
    loopback = msgspec.structs.replace(cfg, sender=msgspec.structs.replace(
        cfg.sender, url="ws://127.0.0.1:9443/ws-api/v3"))
    assert venue_takes_a_core(loopback, with_sim=False)
    assert not venue_takes_a_core(msgspec.structs.replace(loopback, sender=msgspec.structs.replace(
        cfg.sender, url="wss://ws-api.binance.com/ws-api/v3")), with_sim=False)


def test_a_loopback_venue_layout_says_the_choice_depends_on_the_venue():
    """Parking everything beside a loopback venue is right for a heavy one and wrong for a
    light one (measured both ways): `mm layout` says so, with the figures; the embedded
    simulator (placed out of the spinner's way), an explicit sender.idle and a realtime_priority
    get no such note."""
    cfg = config.load(env={})
    local = choose(cfg, with_sim=False, cpus=[0, 1], isolated=set(), venue_local=True)
    assert [w for w in local.warnings if "loopback" in w] == [LOCAL_VENUE_NOTE]
    assert "realtime_priority = 10" in LOCAL_VENUE_NOTE and "P99" in LOCAL_VENUE_NOTE
    import msgspec

    rt = msgspec.structs.replace(cfg, realtime_priority=10)
    assert not any("loopback" in w for w in choose(rt, with_sim=False, cpus=[0, 1],
                                                   isolated=set(), venue_local=True).warnings)
    for lay in (choose(cfg, with_sim=True, cpus=[0, 1], isolated=set()),
                choose(cfg, with_sim=False, cpus=[0, 1], isolated=set())):
        assert not any("loopback" in w for w in lay.warnings)


def test_layout_warns_on_shared_spinner(tmp_path):
    p = _write(tmp_path, "[quoter]\ncore = 0\nidle = 'busy-spin'\n[sender]\ncore = 0\n")
    lay = choose(config.load(p, env={}), with_sim=False, cpus=[0, 1], isolated=set())
    assert any("spins on core 0 shared with" in w for w in lay.warnings)


def test_realtime_priority_leaves_the_spinner_at_normal_priority(tmp_path):
    # SCHED_FIFO is set by each parked process on itself (engine/proc.realtime), never by a
    # spinner: the layout keeps its spinner, and a FIFO feed waits in epoll
    p = _write(tmp_path, "realtime_priority = 10\n")
    lay = choose(config.load(p, env={}), with_sim=False, cpus=[0, 1], isolated=set())
    assert lay.idle["sender"] == "busy-spin" and lay.idle["feed"] == "epoll"


@pytest.mark.parametrize("text, message", [
    ('[sender]\nauth = "rsa"\n', "sender.auth: expected one of auto, hmac, ed25519; got 'rsa'"),
    ('[feed]\nvenue = "kraken"\n', "feed.venue: expected one of binance, binance-sbe, bybit, okx"),
    ('[quoter.glft]\nfair_value = "last"\n',
     "quoter.glft.fair_value: expected one of mid, micro, depth_imbalance; got 'last'"),
    ('[quoter]\nstrategy = "hodl"\n', "quoter.strategy: expected one of glft, fixed_spread"),
    ("[quoter]\ngamma = 0.1\n", "quoter.gamma: moved to quoter.glft.gamma (write it under "
                                "[quoter.glft])"),
    ('[rings.md]\ncapacity = 64\npolicy = "lose"\n', "rings.md.policy: expected one of drop, block"),
    ("[quoter]\norder_size = 0.001\n", 'quoter.order_size: expected a decimal string like '
                                       '"0.001" (quote it in TOML), got float 0.001'),
    ("[quoter]\nmax_position_by_symbol = { BTCUSDT = 1 }\n",
     'quoter.max_position_by_symbol.BTCUSDT: expected a decimal string like "1" (quote it in '
     'TOML), got int 1'),
    ("[[instruments]]\nsymbol = 'BTCUSDT'\ntick_size = 0.01\n",
     'instruments[0].tick_size: expected a decimal string like "0.01"'),
    ("[sender]\nurl = 5\n", "sender.url: expected a string (quote it in TOML), got int 5"),
    ("[feed]\nconnections = 'two'\n", "feed.connections: expected int, got str 'two'"),
    ("bogus = 1\n", "bogus: unknown setting"),
    ('[quoter.fixed_spread]\nfair_value = "depth_imbalance"\n[quoter]\n'
     'strategy = "fixed_spread"\n',
     "quoter.fixed_spread.fair_value: depth_imbalance needs the feed's L2 book"),
    ('[quoter.glft]\ndepth_levels = 11\n', "quoter.glft.depth_levels: expected"),
    ('[feed]\nrest_url = "ws://127.0.0.1:1"\n', "feed.rest_url: expected"),
    ('[feed]\ndepth_snapshot_limit = 6000\n', "feed.depth_snapshot_limit: expected"),
    ('[feed]\nstreams = ["depth@100ms"]\nurl = "wss://"\n',
     "feed.rest_url: diff depth needs an http(s) REST base"),
    ('[feed]\nvenue = "bybit"\n[quoter.fixed_spread]\nfair_value = "depth_imbalance"\n'
     '[quoter]\nstrategy = "fixed_spread"\n',
     "quoter.fixed_spread.fair_value: depth_imbalance needs the feed's L2 book: add one of "
     "['orderbook.50', 'orderbook.200', 'orderbook.500', 'orderbook.1000'] to feed.streams"),
    ('[feed]\nvenue = "okx"\nstreams = ["bbo-tbt", "books5"]\n',
     "feed.streams: OkxAdapter supports ['bbo-tbt', 'trades', 'books', 'books-l2-tbt', "
     "'books50-l2-tbt']"),
])
def test_errors_name_the_field_and_the_fix(tmp_path, text, message):
    """A wrong choice lists the valid ones; a number meant as a decimal says to quote it."""
    with pytest.raises(config.ConfigError) as e:
        config.load(_write(tmp_path, text), env={})
    assert str(e.value).startswith(message)


def test_literal_choices_match_what_the_processes_accept():
    """The config's Literal choices and the registries the processes use are the same sets."""
    import typing

    import msgspec

    from engine.feed.config import FeedVenue
    from engine.feed.venues import ADAPTERS
    from engine.quoter.config import QuoterConfig, QuoterIdle
    from engine.ring.idle import STRATEGIES
    from engine.strategies import STRATEGIES as MODELS, StrategyName
    from engine.strategies.common import FAIR_KINDS, FairValue

    assert set(typing.get_args(FeedVenue)) == set(ADAPTERS)
    assert set(typing.get_args(QuoterIdle)) == {"", *STRATEGIES}
    assert set(typing.get_args(FairValue)) == set(FAIR_KINDS)
    # every strategy: a name to choose, a [quoter.<name>] section of its own config type
    assert set(typing.get_args(StrategyName)) == set(MODELS)
    fields = {f.name: f.default for f in msgspec.structs.fields(QuoterConfig)}
    for name, (section, _) in MODELS.items():
        assert type(fields[name]) is section


def test_instance_name_is_checked_at_load(tmp_path):
    with pytest.raises(config.ConfigError, match=r"instance: expected 1-40 of .* got 'a/b'"):
        config.load(env={"MM_INSTANCE": "a/b"})


def test_written_filters_are_told_apart_from_defaults(tmp_path):
    p = _write(tmp_path, "[[instruments]]\nsymbol = 'BTCUSDT'\ntick_size = '0.01'\n")
    cfg, configured = config.load_with_sources(p, env={"MM_SYMBOL": "BTCUSDT,SOLUSDT"})
    assert configured == {"BTCUSDT": frozenset({"tick_size"})}
    sol = cfg.instruments[1]
    assert sol.symbol == "SOLUSDT" and "SOLUSDT" not in configured   # filters: from the venue
