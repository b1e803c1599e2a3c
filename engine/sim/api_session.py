"""The WS API's sessions (engine/sim/api.py): per-connection state, authentication (API key,
signatures, recvWindow), logon/status/logout and the user-data stream subscriptions."""
from __future__ import annotations

from typing import Callable

from engine.sim import auth
from engine.sim.api_params import mandatory, now_ms
from engine.sim.exchange import ApiError


class Session:
    """Per-connection API state: logon, user-data subscriptions, default returnRateLimits."""

    __slots__ = ("send", "number", "connected_since", "authorized_since", "user_subs",
                 "next_sub_id", "return_rate_limits")

    def __init__(self, send: Callable[[bytes], None], return_rate_limits: bool = True,
                 number: int = 0):
        self.send = send
        self.number = number                # connection number (cancel_log actor)
        self.connected_since = now_ms()
        self.authorized_since = 0           # 0 = not logged on
        self.user_subs: list[int] = []
        self.next_sub_id = 0
        self.return_rate_limits = return_rate_limits


class SessionMethods:
    """Authentication and the session.* / userDataStream.* methods (a part of Api: self.creds
    are its credentials)."""

    def _authorize(self, session: Session, params: dict, kind: str, now: int) -> None:
        if kind == "none":
            return
        if kind == "session":
            if not session.authorized_since:
                raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
            return
        self._check_timestamp(params, now)
        if kind == "signed" and session.authorized_since and "signature" not in params:
            return                  # a logged-on session signs nothing more
        api_key = params.get("apiKey")
        if not api_key:
            raise mandatory("apiKey")
        signature = params.get("signature")
        if not signature or not isinstance(signature, str):
            raise mandatory("signature")
        if api_key != self.creds.api_key:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        payload = auth.signature_payload(params)
        if kind == "logon":
            ok = self.creds.check_ed25519(payload, signature)
        else:
            ok = self.creds.check_hmac(payload, signature) if len(signature) == 64 \
                else self.creds.check_ed25519(payload, signature)
        if not ok:
            raise ApiError(400, -1022, "Signature for this request is not valid.")

    def _check_timestamp(self, params: dict, now: int) -> None:
        ts = params.get("timestamp")
        if isinstance(ts, str) and ts.isdigit():
            ts = int(ts)
        if not isinstance(ts, int) or isinstance(ts, bool) or ts <= 0:
            raise mandatory("timestamp")
        if ts > 100_000_000_000_000:        # microseconds
            ts = ts / 1000
        window = params.get("recvWindow", self.recv_window_ms)
        try:
            window = float(window)
        except (TypeError, ValueError):
            raise mandatory("recvWindow") from None
        if not 0 < window <= 60_000:
            raise ApiError(400, -1131, "recvWindow must be less than 60000")
        if ts >= now + 1000:
            raise ApiError(400, -1021, "Timestamp for this request was 1000ms ahead of the "
                                       "server's time.")
        if now - ts > window:
            raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    def _logon(self, session: Session, params):
        now = now_ms()
        session.authorized_since = now
        if "returnRateLimits" in params:
            session.return_rate_limits = params["returnRateLimits"] is not False
        return self._session_status(session, params)

    def _session_status(self, session: Session, params):
        return {"apiKey": self.creds.api_key if session.authorized_since else None,
                "authorizedSince": session.authorized_since or None,
                "connectedSince": session.connected_since,
                "returnRateLimits": session.return_rate_limits, "serverTime": now_ms(),
                "userDataStream": bool(session.user_subs)}

    def _logout(self, session: Session, params):
        session.authorized_since = 0
        return self._session_status(session, params)

    def _uds_subscribe(self, session: Session, params):
        sub = session.next_sub_id
        session.next_sub_id += 1
        session.user_subs.append(sub)
        return {"subscriptionId": sub}

    def _uds_unsubscribe(self, session: Session, params):
        sub = params.get("subscriptionId")
        if sub is None:
            session.user_subs.clear()
        elif sub in session.user_subs:
            session.user_subs.remove(sub)
        else:
            raise ApiError(400, -2030, "Subscription not found.")
        return {}
