"""Feed configuration checks and the reconnect back-off schedule."""
import random

import pytest

from engine.config import ConfigError, load
from engine.feed.config import FeedConfig
from engine.feed.connection import backoff_delay


@pytest.mark.parametrize("toml, message", [
    ("connections = 0", "feed.connections: expected 1..8, got 0"),
    ("connections = 9", "feed.connections: expected 1..8, got 9"),
    ("stale_after_ms = 0", "feed.stale_after_ms: expected >= 10, got 0"),
    ("reconnect_base_s = 0.0", "feed.reconnect_base_s: expected > 0"),
    ("reconnect_base_s = 1.0\nreconnect_cap_s = 0.5", "feed.reconnect_cap_s: expected >= reconnect_base_s"),
    ("max_age_s = -1.0", "feed.max_age_s: expected >= 0"),
    ("venue = 'kraken'", "feed.venue: expected one of"),
    ("url = 'http://x'", "feed.url: expected ws:// or wss://"),
    ("streams = ['']", "feed.streams: expected non-empty stream names"),
    ("streams = ['kline_1m']", "feed.streams: BinanceJsonAdapter supports"),
])
def test_bad_values_name_the_field(tmp_path, toml, message):
    path = tmp_path / "mm.toml"
    path.write_text("[feed]\n" + toml + "\n")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load(path, env={})


def test_env_url_override_and_defaults(tmp_path):
    cfg = load(None, env={"MM_MD_URL": "ws://127.0.0.1:9"})
    assert cfg.feed.url == "ws://127.0.0.1:9"
    assert cfg.feed.connections == 2 and cfg.feed.streams == ("bookTicker", "trade")


def test_effective_max_age():
    day = 86_400.0
    assert FeedConfig().effective_max_age_s(day) == day - 300      # venue limit minus the margin
    assert FeedConfig(max_age_s=60).effective_max_age_s(day) == 60
    assert FeedConfig(max_age_s=60).effective_max_age_s(100) == 50  # short limit: half of it
    assert FeedConfig(max_age_s=2).effective_max_age_s(0) == 2
    assert FeedConfig().effective_max_age_s(0) == 0                 # no limit anywhere: never


def test_backoff_is_full_jitter_exponential_capped():
    # Ceiling: base * 2**failures, capped; the delay is uniform below the ceiling.
    assert [backoff_delay(n, 0.1, 5.0, rand=lambda: 1.0) for n in range(8)] == \
        [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert backoff_delay(3, 0.1, 5.0, rand=lambda: 0.0) == 0.0
    assert backoff_delay(10_000, 0.1, 5.0, rand=lambda: 1.0) == 5.0   # no overflow
    rng = random.Random(7)
    samples = [backoff_delay(4, 0.1, 5.0, rand=rng.random) for _ in range(2000)]
    assert 0.0 <= min(samples) < 0.1 and 1.5 < max(samples) <= 1.6
