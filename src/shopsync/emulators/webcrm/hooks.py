"""Webhook deliveries: after every Create/Update/Delete, POST to each matching hook.

Deliveries run on their own threads, so an API call never waits for a target: the
write is committed, the answer goes out, and the hook call follows. A delivery that
fails (connection error, timeout, non-2xx answer) is retried with exponential backoff
up to ``max_attempts`` times, then given up. Every attempt is logged in memory and shown
by ``GET /_emulator/hook-deliveries``.

The body webCRM posts is not published; the emulator posts (JSON)::

    {"HookId": 3, "EntityType": "Organisation", "EventType": "Update",
     "Id": 42, "OrganisationId": 42, "Timestamp": "2026-11-26T10:00:00.123456Z",
     "DeliveryId": "7f0c…", "Attempt": 1}

A receiver should treat it as a hint that record ``Id`` changed and read it back
through the API (the notes' advice for the live service).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from shopsync.emulators.webcrm.store import Change
from shopsync.emulators.webcrm.timeutil import utc_now

LOG_LIMIT = 10_000


@dataclass(frozen=True)
class HookTarget:
    """The parts of a stored hook that decide whether and where to deliver."""

    hook_id: int
    entity: str
    target_url: str
    event_type: str | None
    """``None`` matches every event type."""


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    hook: HookTarget = field(compare=False)
    change: Change = field(compare=False)
    delivery_id: str = field(compare=False)
    occurred_at: str = field(compare=False)
    attempt: int = field(compare=False, default=1)


class HookDispatcher:
    """Queues, sends and retries hook deliveries in the background."""

    def __init__(
        self,
        *,
        workers: int = 4,
        max_attempts: int = 5,
        backoff: float = 0.5,
        timeout: float = 5.0,
    ) -> None:
        self.max_attempts = max_attempts
        self.backoff = backoff
        self._hooks: dict[str, list[HookTarget]] = {}
        self._heap: list[_Pending] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self._log_lock = threading.Lock()
        self._generation = 0
        self._stopped = False
        self._client = httpx.Client(timeout=timeout, headers={"User-Agent": "webcrm-emulator"})
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hook-send")
        self._thread = threading.Thread(target=self._run, name="hook-dispatch", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ configuration
    def set_hooks(self, hooks: Iterable[dict[str, Any]]) -> None:
        """Replace the cached list of enabled hooks (called after every hook change)."""
        table: dict[str, list[HookTarget]] = {}
        for h in hooks:
            if h["IsEnabled"]:
                table.setdefault(h["Entity"], []).append(
                    HookTarget(h["Id"], h["Entity"], h["TargetUrl"], h["EventType"])
                )
        with self._cond:
            self._hooks = table

    def clear(self) -> None:
        """Forget pending deliveries and the log (emulator reset)."""
        with self._cond:
            self._heap.clear()
            self._generation += 1
        with self._log_lock:
            self._log.clear()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    # ------------------------------------------------------------------ producing
    def notify(self, changes: Iterable[Change]) -> int:
        """Queue a delivery per matching hook and change; returns how many were queued."""
        queued = 0
        now = time.monotonic()
        with self._cond:
            if not self._hooks:
                return 0
            for change in changes:
                for hook in self._hooks.get(change.entity, ()):
                    if hook.event_type is not None and hook.event_type != change.event:
                        continue
                    pending = _Pending(
                        now, next(self._seq), hook, change, uuid.uuid4().hex, utc_now()
                    )
                    heapq.heappush(self._heap, pending)
                    queued += 1
            if queued:
                self._cond.notify()
        return queued

    def deliveries(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return list(self._log)

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    # ------------------------------------------------------------------ consuming
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (
                    not self._heap or self._heap[0].due > time.monotonic()
                ):
                    wait = self._heap[0].due - time.monotonic() if self._heap else None
                    self._cond.wait(timeout=wait)
                if self._stopped:
                    return
                item = heapq.heappop(self._heap)
                generation = self._generation
            try:
                self._pool.submit(self._send, item, generation)
            except RuntimeError:  # pool shut down while stopping
                return

    def _send(self, item: _Pending, generation: int) -> None:
        change = item.change
        body = {
            "HookId": item.hook.hook_id,
            "EntityType": change.entity,
            "EventType": change.event,
            "Id": change.record_id,
            f"{change.entity}Id": change.record_id,
            "Timestamp": item.occurred_at,
            "DeliveryId": item.delivery_id,
            "Attempt": item.attempt,
        }
        status: int | None = None
        error: str | None = None
        try:
            response = self._client.post(item.hook.target_url, json=body)
            status = response.status_code
            if not response.is_success:
                error = f"HTTP {status}"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = f"{exc.__class__.__name__}: {exc}"
        ok = error is None
        retry_in: float | None = None
        if not ok and item.attempt < self.max_attempts:
            retry_in = self.backoff * 2 ** (item.attempt - 1)
        with self._log_lock:
            self._log.append(
                {
                    "DeliveryId": item.delivery_id,
                    "HookId": item.hook.hook_id,
                    "EntityType": change.entity,
                    "EventType": change.event,
                    "Id": change.record_id,
                    "TargetUrl": item.hook.target_url,
                    "Attempt": item.attempt,
                    "Ok": ok,
                    "Status": status,
                    "Error": error,
                    "At": utc_now(),
                    "RetryInSeconds": retry_in,
                    "GaveUp": not ok and retry_in is None,
                }
            )
        if retry_in is not None:
            with self._cond:
                if self._stopped or generation != self._generation:
                    return
                item.attempt += 1
                item.due = time.monotonic() + retry_in
                item.seq = next(self._seq)
                heapq.heappush(self._heap, item)
                self._cond.notify()
