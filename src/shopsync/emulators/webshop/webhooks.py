"""Webhook subscriptions and their delivery: an outbox drained by a background thread.

A change writes one outbox row per interested subscription *in the same transaction*,
so an event is never lost nor sent for a change that rolled back, and the API call never
waits for a receiver. The worker signs the stored body (the same bytes on every retry)
and retries failures with exponential backoff, a bounded number of times.

Secrets stay in the database: they are never returned, and the worker logs neither
secrets nor URLs (a URL may carry credentials of its own).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shopsync.contract.signature import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign
from shopsync.emulators.common.urls import http_url_host

from .clock import naive, rfc3339, utc
from .db import DeliveryRow, WebhookRow, new_id
from .problems import FieldError, Problem, invalid
from .store import Store
from .validation import string_errors

log = logging.getLogger(__name__)

EVENTS = tuple(
    f"{kind}.{action}"
    for kind in ("customer", "product", "order")
    for action in ("created", "updated", "deleted")
)
HOSTS_ENV = "SHOPSYNC_WEBSHOP_WEBHOOK_HOSTS"


class RetrySettings(BaseModel):
    """Delivery policy; the test controls can shorten it."""

    base_seconds: float = Field(1.0, gt=0, le=3600, description="wait after the first failure")
    max_backoff_seconds: float = Field(300.0, gt=0, le=86_400, description="longest wait")
    max_attempts: int = Field(8, ge=1, le=50, description="attempts before giving up")
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="per attempt")

    def delay(self, attempts: int) -> float:
        """Wait before attempt ``attempts + 1``: base × 2^(attempts−1), capped."""
        return float(min(self.base_seconds * 2 ** (attempts - 1), self.max_backoff_seconds))


def allowed_host(host: str, allowed: str | None = None) -> bool:
    """Loopback hosts always; others only when named in ``SHOPSYNC_WEBSHOP_WEBHOOK_HOSTS``."""
    allowed = os.environ.get(HOSTS_ENV, "") if allowed is None else allowed
    names = {h.strip().lower() for h in allowed.split(",") if h.strip()}
    if "*" in names or host.lower() in names or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_subscription(body: dict[str, Any]) -> tuple[str, list[str], str]:
    errors = string_errors(body)
    if errors:
        raise invalid(errors)
    for key in body:
        if key not in ("url", "events", "secret"):
            errors.append(FieldError(key, "unknown field"))
    url, events, secret = body.get("url"), body.get("events"), body.get("secret")
    if not isinstance(url, str) or not url:
        errors.append(FieldError("url", "required: an http(s) URL"))
    else:
        hostname = http_url_host(url)
        if hostname is None or len(url) > 2000:
            errors.append(
                FieldError("url", "must be an absolute http(s) URL of at most 2000 characters")
            )
        elif not allowed_host(hostname):
            errors.append(
                FieldError(
                    "url",
                    f"this server delivers only to loopback hosts unless {HOSTS_ENV} names the host",
                )
            )
    if not isinstance(events, list) or not events:
        errors.append(FieldError("events", "required: a non-empty list of event names"))
    else:
        for index, name in enumerate(events):
            if name not in EVENTS:
                errors.append(FieldError(f"events[{index}]", f"must be one of {', '.join(EVENTS)}"))
        if len(set(map(str, events))) != len(events):
            errors.append(FieldError("events", "must not repeat an event"))
    if not isinstance(secret, str) or not 16 <= len(secret) <= 256:
        errors.append(FieldError("secret", "required: a string of 16 to 256 characters"))
    if errors:
        raise invalid(errors)
    assert isinstance(url, str) and isinstance(events, list) and isinstance(secret, str)
    return url, [str(e) for e in events], secret


def subscription_api(row: WebhookRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "events": row.events.split(),
        "created_at": rfc3339(row.created_at),
    }


class Webhooks:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.settings = RetrySettings()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        store.after_write.append(self._wake.set)

    # ------------------------------------------------------------------ subscriptions
    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        url, events, secret = validate_subscription(body)
        with self.store.write() as session:
            row = WebhookRow(
                id=new_id("whk"), url=url, events=" ".join(events), secret=secret,
                created_at=naive(datetime.now(UTC)),
            )  # fmt: skip
            session.add(row)
            session.flush()
            return subscription_api(row)

    def all(self) -> list[dict[str, Any]]:
        with self.store.read() as session:
            rows = session.scalars(select(WebhookRow).order_by(WebhookRow.created_at))
            return [subscription_api(r) for r in rows]

    @staticmethod
    def _known_form(webhook_id: str) -> None:
        if not re.fullmatch(r"whk_[0-9a-f]{32}", webhook_id):
            raise Problem(404, "not-found", f"no webhook with id {webhook_id}")

    def get(self, webhook_id: str) -> dict[str, Any]:
        self._known_form(webhook_id)
        with self.store.read() as session:
            row = session.get(WebhookRow, webhook_id)
            if row is None:
                raise Problem(404, "not-found", f"no webhook with id {webhook_id}")
            return subscription_api(row)

    def delete(self, webhook_id: str) -> None:
        self._known_form(webhook_id)
        with self.store.write() as session:
            row = session.get(WebhookRow, webhook_id)
            if row is None:
                raise Problem(404, "not-found", f"no webhook with id {webhook_id}")
            session.execute(
                delete(DeliveryRow).where(
                    DeliveryRow.webhook_id == webhook_id, DeliveryRow.status == "pending"
                )
            )
            session.delete(row)

    # ------------------------------------------------------------------ outbox
    def enqueue(self, session: Session, event: str, record_id: str, at: datetime) -> None:
        """Queue ``event`` for every subscription that wants it (inside the write).

        The subscriptions are read once per transaction (a batch writes many records in
        one); they cannot change meanwhile, since subscribing takes the same write lock.
        """
        body = json.dumps(
            {"event": event, "id": record_id, "occurred_at": rfc3339(at)}, separators=(",", ":")
        )
        hooks = session.info.get("webhooks")
        if hooks is None:
            hooks = session.info["webhooks"] = [
                (hook.id, hook.events.split()) for hook in session.scalars(select(WebhookRow))
            ]
        for hook_id, events in hooks:
            if event in events:
                session.add(
                    DeliveryRow(
                        id=new_id("dlv"), webhook_id=hook_id, event=event, record_id=record_id,
                        body=body, status="pending", attempts=0, next_attempt_at=naive(at),
                        created_at=naive(at),
                    )
                )  # fmt: skip

    def deliveries(self) -> list[dict[str, Any]]:
        """For the test controls: every delivery and how it went (no secrets)."""
        with self.store.read() as session:
            rows = session.scalars(select(DeliveryRow).order_by(DeliveryRow.created_at))
            return [
                {
                    "id": r.id, "webhook_id": r.webhook_id, "event": r.event,
                    "record_id": r.record_id, "status": r.status, "attempts": r.attempts,
                    "last_status": r.last_status, "last_error": r.last_error,
                    "next_attempt_at": rfc3339(r.next_attempt_at),
                    "delivered_at": rfc3339(r.delivered_at) if r.delivered_at else None,
                }
                for r in rows
            ]  # fmt: skip

    # ------------------------------------------------------------------ worker
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="webhook-deliveries", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        with httpx.Client(follow_redirects=False) as client:
            while not self._stop.is_set():
                try:
                    wait = self._drain(client)
                except Exception:  # keep delivering whatever one bad row did
                    log.exception("webhook worker failed; retrying")
                    wait = 1.0
                self._wake.wait(timeout=wait)
                self._wake.clear()

    def _drain(self, client: httpx.Client) -> float:
        """Attempt every due delivery; return how long to sleep until the next one."""
        while not self._stop.is_set():
            due = self._due()
            if due is None:
                break
            self._attempt(client, due)
        with self.store.read() as session:
            upcoming = session.scalar(
                select(DeliveryRow.next_attempt_at)
                .where(DeliveryRow.status == "pending")
                .order_by(DeliveryRow.next_attempt_at)
                .limit(1)
            )
        if upcoming is None:
            return 5.0
        seconds = (utc(upcoming) - datetime.now(UTC)).total_seconds()
        return max(0.01, min(seconds, 5.0))

    def _due(self) -> _Due | None:
        with self.store.read() as session:
            now = naive(datetime.now(UTC))
            row = session.scalars(
                select(DeliveryRow)
                .where(DeliveryRow.status == "pending", DeliveryRow.next_attempt_at <= now)
                .order_by(DeliveryRow.next_attempt_at)
                .limit(1)
            ).first()
            if row is None:
                return None
            hook = session.get(WebhookRow, row.webhook_id)
            if hook is None:
                return _Due(row.id, "", "", row.body, row.event)
            return _Due(row.id, hook.url, hook.secret, row.body, row.event)

    def _attempt(self, client: httpx.Client, due: _Due) -> None:
        status: int | None = None
        error: str | None = None
        if not due.url:
            error = "subscription deleted"
        else:
            body = due.body.encode("utf-8")
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(due.secret, body),
                EVENT_HEADER: due.event,
                DELIVERY_HEADER: due.delivery_id,
            }
            try:
                response = client.post(
                    due.url, content=body, headers=headers, timeout=self.settings.timeout_seconds
                )
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"receiver answered {status}"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                error = f"{exc.__class__.__name__}"
        with self.store.write() as session:
            row = session.get(DeliveryRow, due.delivery_id)
            if row is None:
                return
            now = datetime.now(UTC)
            row.attempts += 1
            row.last_status = status
            row.last_error = error
            if error is None:
                row.status = "delivered"
                row.delivered_at = naive(now)
            elif not due.url or row.attempts >= self.settings.max_attempts:
                row.status = "failed"
                log.warning("webhook delivery %s gave up after %d attempts", row.id, row.attempts)
            else:
                delay = self.settings.delay(row.attempts)
                row.next_attempt_at = naive(now + timedelta(seconds=delay))


@dataclass(frozen=True)
class _Due:
    delivery_id: str
    url: str
    secret: str
    body: str
    event: str
