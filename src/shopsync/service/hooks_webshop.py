"""The shop's webhooks: subscribed on start, verified at ``/hooks/webshop/<token>``.

A call is accepted only when all of these hold, else it is refused with 401 and changes
nothing (not even the queue):

* ``X-Webshop-Signature`` is the HMAC-SHA256 of the raw body keyed with our secret
  (:mod:`shopsync.contract.signature`, compared in constant time);
* the body's ``occurred_at`` is within :data:`TOLERANCE` of our clock: a recording
  replayed later is refused even with its valid signature;
* its delivery (``X-Webshop-Delivery``, or the body's hash) was not accepted before
  within that window: a recording replayed at once is refused too.

The window covers the shop's retries (the reference shop's eighth attempt comes about
four minutes after the first). Accepted deliveries are remembered in memory only: after
a restart a replay inside the window could be accepted once, and since a call is only a
hint (the service re-reads the shop through its API) it can cause one cheap extra run,
never a change.

The secret is generated here and kept in the state database (``secrets_store``); the
shop never shows it again, so a subscription whose secret we no longer know is replaced.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shopsync.config.model import Datatype
from shopsync.contract.signature import DELIVERY_HEADER, SIGNATURE_HEADER, verify
from shopsync.engine.restage import record_id

PATH = "/hooks/webshop/"
EVENTS = tuple(
    f"{kind}.{action}"
    for kind in ("customer", "product", "order")
    for action in ("created", "updated", "deleted")
)
KINDS: dict[str, Datatype] = {
    "customer": Datatype.customers,
    "product": Datatype.products,
    "order": Datatype.orders,
}
TOLERANCE = timedelta(minutes=10)


class WebhookApi(Protocol):
    def webhooks(self) -> list[dict[str, Any]] | None: ...

    def subscribe_webhook(self, url: str, events: Sequence[str], secret: str) -> dict[str, Any]: ...

    def delete_webhook(self, id: str) -> None: ...


def target_url(public_url: str, token: str) -> str:
    return public_url.rstrip("/") + PATH + token


def _ours(sub: Mapping[str, Any], public_url: str | None, token: str | None) -> bool:
    url = sub.get("url")
    if not isinstance(url, str):
        return False
    if token is not None and url.endswith(PATH + token):
        return True
    return public_url is not None and url.startswith(public_url.rstrip("/") + PATH)


@dataclass
class Subscription:
    offered: bool
    """False: the shop has no webhooks (404 on ``/webhooks``); the service polls."""
    kept: bool = False
    subscription_id: str | None = None
    secret: str | None = None
    removed: int = 0


def subscribe(
    api: WebhookApi,
    public_url: str,
    token: str,
    *,
    known_id: str | None,
    known_secret: str | None,
    new_secret: str,
    before_subscribing: Callable[[str], None] = lambda _secret: None,
) -> Subscription:
    """Keep our subscription when we still know its secret; otherwise replace it.

    Returns the subscription's id and the secret to verify with. A new subscription's
    secret is handed to ``before_subscribing`` first, so the caller can store it and
    verify with it before the shop's first call can arrive."""
    subs = api.webhooks()
    if subs is None:
        return Subscription(offered=False)
    url = target_url(public_url, token)
    mine = [s for s in subs if _ours(s, public_url, token)]
    keep = next(
        (
            s
            for s in mine
            if s.get("id") == known_id
            and s.get("url") == url
            and known_secret is not None
            and sorted(s.get("events") or []) == sorted(EVENTS)
        ),
        None,
    )
    result = Subscription(offered=True)
    for s in mine:
        if s is not keep:
            api.delete_webhook(str(s["id"]))
            result.removed += 1
    if keep is not None:
        result.kept, result.subscription_id, result.secret = True, known_id, known_secret
        return result
    before_subscribing(new_secret)
    created = api.subscribe_webhook(url, EVENTS, new_secret)
    result.subscription_id, result.secret = str(created["id"]), new_secret
    return result


def unsubscribe(api: WebhookApi, public_url: str | None, token: str | None) -> int:
    subs = api.webhooks()
    removed = 0
    for s in subs or []:
        if _ours(s, public_url, token):
            api.delete_webhook(str(s["id"]))
            removed += 1
    return removed


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str
    datatypes: tuple[Datatype, ...] = ()
    event: str | None = None
    record_id: str | None = None
    """The shop record the event names, checked as an id (None: read the datatype)."""

    @property
    def deleted(self) -> bool:
        return (self.event or "").endswith(".deleted")


class Verifier:
    """Checks signature, timestamp and replay of each call (see the module docstring)."""

    def __init__(
        self,
        secret: str | None = None,
        *,
        tolerance: timedelta = TOLERANCE,
        now: Any = None,
        clock: Any = time.monotonic,
    ) -> None:
        self._secret = secret
        self.tolerance = tolerance
        self._now = now or (lambda: datetime.now(UTC))
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def use_secret(self, secret: str | None) -> None:
        with self._lock:
            self._secret = secret

    def check(self, body: bytes, headers: Mapping[str, str]) -> Verdict:
        with self._lock:
            secret = self._secret
        if secret is None:
            return Verdict(False, "no webhook subscription of ours is active")
        if not verify(secret, body, headers.get(SIGNATURE_HEADER)):
            return Verdict(False, f"missing or wrong {SIGNATURE_HEADER}")
        try:
            event = json.loads(body)
            kind = str(event["event"]).partition(".")[0]
            at = datetime.fromisoformat(str(event["occurred_at"]).replace("Z", "+00:00"))
            if at.tzinfo is None:
                raise ValueError("no UTC offset")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return Verdict(False, "the body is no webhook event (event, id, occurred_at)")
        if abs(self._now() - at) > self.tolerance:
            return Verdict(False, "occurred_at is outside the accepted window (a replay?)")
        delivery = headers.get(DELIVERY_HEADER) or hashlib.sha256(body).hexdigest()
        key = hmac.new(secret.encode(), delivery.encode() + b"\0" + body, "sha256").hexdigest()
        now = self._clock()
        with self._lock:
            horizon = 2 * self.tolerance.total_seconds()
            self._seen = {k: t for k, t in self._seen.items() if now - t < horizon}
            if key in self._seen:
                return Verdict(False, "this delivery was accepted before (a replay)")
            self._seen[key] = now
        if kind not in KINDS:
            return Verdict(True, "ok", tuple(Datatype), str(event["event"]))
        try:
            rid: str | None = record_id(KINDS[kind], "webshop", event.get("id"))
        except ValueError:
            rid = None
        return Verdict(True, "ok", (KINDS[kind],), str(event["event"]), rid)
