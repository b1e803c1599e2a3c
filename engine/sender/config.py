"""Sender process configuration ([sender] in the TOML file)."""
from __future__ import annotations

from typing import Annotated, Literal, get_args

import msgspec
from msgspec import Meta

from engine.config_check import (ConfigError, Core, NonNegativeFloat, NonNegativeInt,
                                 PositiveFloat, PositiveInt, WsUrl, check_struct)
from engine.sender.venues import VENUES

# The choices of each field, once: the loader lists them when a value is wrong.
Venue = Literal[tuple(VENUES)]   # the order venues' registry (engine/sender/venues)
Auth = Literal["auto", "hmac", "ed25519"]
Idle = Literal["", "park", "busy-spin"]
ReplaceMode = Literal["STOP_ON_FAILURE", "ALLOW_FAILURE"]
RespType = Literal["ACK", "RESULT"]
BybitCategory = Literal["spot", "linear", "inverse"]
AUTHS = get_args(Auth)


class SenderConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    venue: Venue = "binance"      # the order venue: a name in engine/sender/venues (VENUES)
    url: WsUrl = ""               # order WebSocket API URL (MM_ORDER_URL overrides; empty = simulator)
    auth: Auth = "auto"           # auto: ed25519 when an Ed25519 key is configured, else hmac (MM_AUTH
                                  # overrides); ed25519: one signed session.logon, then unsigned
                                  # requests (faster); hmac: every request HMAC-SHA256 signed
                                  # (Bybit always uses op:auth, HMAC)
    api_key_file: str = ""        # file holding the API key (else env MM_API_KEY; demo key on loopback)
    api_secret_file: str = ""     # file holding the HMAC secret (else env MM_API_SECRET)
    ed25519_key_file: str = ""    # PEM Ed25519 private key (else env MM_ED25519_KEY_FILE)
    recv_window_ms: Annotated[int, Meta(ge=1, le=60000)] = 5000  # recvWindow sent with signed
                                  # requests (venue max 60000)
    resp_type: RespType = "ACK"   # newOrderRespType: ACK (fastest) | RESULT
    replace_mode: ReplaceMode = "STOP_ON_FAILURE"  # cancelReplaceMode: a failed cancel (order
                                  # filled or gone) must not add a new order on top of the fill
    dry_run: bool = False         # sign + encode + log (redacted), never connect, never send
    dry_run_log_per_s: NonNegativeInt = 5  # at most this many dry-run lines per second
    heartbeat_timeout_ms: Annotated[int, Meta(ge=100)] = 1000  # quoter/feed heartbeat older than
                                  # this: cancel all and exit
    cancel_confirm_timeout_s: PositiveFloat = 3.0  # bound on cancel-all + openOrders.status
                                  # confirmation
    connect_timeout_s: PositiveFloat = 5.0  # TCP + WebSocket handshake + logon must finish within this
    request_timeout_s: PositiveFloat = 5.0  # set-up requests (logon, time, status) answer within this
    reconnect_base_s: PositiveFloat = 0.1  # first reconnect back-off ceiling (full jitter: 0..ceiling)
    reconnect_cap_s: float = 5.0  # back-off ceiling stops doubling here
    bybit_category: BybitCategory = "spot"  # Bybit v5 category: spot | linear | inverse
    rate_slow_fraction: Annotated[float, Meta(gt=0, le=1)] = 0.8  # above this share of an ORDERS
                                  # limit, pace order sends
    # -- order truth --
    order_timeout_ms: PositiveFloat = 2000.0  # an order request unanswered this long has an unknown
                                  # outcome: the venue is asked (order.status) before the slot
                                  # is used again (Binance gives up after 10 s with -1007)
    order_timeout_min_ms: PositiveFloat = 50.0  # the deadline of an order request is measured
                                  # (smoothed round trip + 4 x its variation, as TCP's RTO) and kept
                                  # between this floor and order_timeout_ms (the cap)
    not_found_confirm_ms: PositiveFloat = 1000.0  # "order does not exist" counts only when a second
                                  # answer says so this much later (under load it can be false)
    backend_timeout_ms: NonNegativeFloat = 10_000.0  # the venue's own wait on its matching engine
                                  # (Binance: 10 s, then -1007): an order is concluded gone no
                                  # sooner than its last request's send time + recv_window_ms + this
    ping_interval_s: PositiveFloat = 2.0  # nothing received on the order connection this long: ping it
    pong_timeout_s: PositiveFloat = 1.5  # no frame within this after a ping: the connection is dead
    dead_after_timeouts: PositiveInt = 3  # this many order requests unanswered in a row: dead
    silence_ms: PositiveFloat = 1500.0  # no frame this long while a request waits for its answer:
                                  # dead (a dead connection is replaced, make-before-break, and the
                                  # orders reconciled before quoting resumes)
    report_timeout_ms: PositiveFloat = 3000.0  # two orders the venue accepted without an order
                                  # report (executionReport) this long: the user-data stream is dead
    max_intent_age_ms: PositiveFloat = 250.0  # NEW/REPLACE intents older than this are not sent
    reconcile_interval_s: NonNegativeFloat = 5.0  # in quiet moments, compare open orders and
                                  # balances with the venue this often (0 = only after reconnects)
    quiet_ms: PositiveFloat = 300.0  # "quiet": no order request in flight for this long
    rollover_after_s: PositiveFloat = 84_600.0  # replace the order connection (make-before-break)
                                  # this long after logon (Binance closes it at 24 h) or at once on
                                  # the venue's serverShutdown notice
    symbols_exclusive: bool = False  # true only when nothing but this engine trades these
                                  # symbols on the account: cancel with openOrders.cancelAll;
                                  # false: cancel our own orders one by one (manual orders and
                                  # other instances' stay untouched)
    core: Core = -1               # CPU to pin to (-1: unpinned)
    idle: Idle = ""               # park (doorbell wake-up) | busy-spin (own core only); "" = park

    def validate(self, instruments=None) -> None:
        """The field constraints and the rules between fields; ConfigError naming the field.
        (No rule here needs the instruments.)"""
        check_struct(self, "sender")
        if self.reconnect_cap_s < self.reconnect_base_s:
            raise ConfigError(f"sender.reconnect_cap_s: expected >= reconnect_base_s "
                              f"({self.reconnect_base_s}), got {self.reconnect_cap_s}")
        if self.order_timeout_min_ms > self.order_timeout_ms:
            raise ConfigError(f"sender.order_timeout_min_ms: expected <= order_timeout_ms "
                              f"({self.order_timeout_ms}), got {self.order_timeout_min_ms}")
