"""The webshop client: the only code that speaks the webshop contract.

The contract (``src/shopsync/contract/webshop-api.yaml``) gives everything a safe sync
needs, and this client uses all of it:

* **Polling.** ``GET /{collection}?updated_since=…&include_deleted=true`` pages by an
  opaque cursor over ``(updated_at, id)``, stable while records change; deletes show up
  as tombstones ``{"id", "deleted": true, "updated_at"}``.
* **Safe retries.** Every create carries an ``Idempotency-Key``: a create retried after
  a dropped connection returns the first record instead of a second one. Updates carry
  ``If-Match: "<version>"`` when the caller knows the version, so a record changed
  meanwhile is not overwritten (412 → :class:`WebshopPreconditionFailed`).
* **Errors with names.** ``application/problem+json`` answers become typed exceptions;
  422 and 409 name the offending field(s).
* **Batch writes, when offered.** :meth:`WebshopClient.write_many` sends many creates
  and updates as ``POST /{collection}/batch`` when the shop lists ``batch`` in
  ``GET /capabilities`` (read once per client), and one request per record otherwise;
  either way each record gets its own outcome: the record, or the exception its single
  request would have raised.

Timeouts, dropped connections and 500/502/503/504 are retried with exponential backoff
and jitter (tenacity); 429 waits ``Retry-After``. The token never appears in messages.
"""

from __future__ import annotations

import collections
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from shopsync.logs import mask_url

if TYPE_CHECKING:
    from shopsync.config.model import WebshopConfig

log = structlog.get_logger("shopsync.webshop")

COLLECTIONS = ("customers", "products", "orders")
RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_429_WAITS = 100
NO_SUCH_OPERATION = frozenset({404, 405, 501})
"""Answers of a shop that predates an optional endpoint (``/capabilities``, batches)."""
MAX_BATCH_ITEMS = 500
"""Items per batch request at most (the shop's ``max_items`` may be lower)."""
MAX_BATCH_BYTES = 1_000_000
"""Request body of one batch at most, in bytes: below common proxy limits (nginx: 1 MiB)."""
FALLBACK_CONCURRENCY = 4
"""Single requests in flight when a shop offers no batches (as the engine's creates)."""


# --------------------------------------------------------------------------- errors
@dataclass(frozen=True)
class FieldError:
    """One bad field: a dotted path (``lines[2].quantity``) or a parameter/header name."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class WebshopError(Exception):
    """Any failure talking to the webshop; ``str()`` never contains the token."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problem: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem: dict[str, Any] = dict(problem or {})


class WebshopAuthError(WebshopError):
    """The webshop refused the token (401/403)."""


class WebshopNotFound(WebshopError):
    """No such record (404)."""


class WebshopGone(WebshopError):
    """The record was deleted (410)."""


class WebshopPreconditionFailed(WebshopError):
    """``If-Match`` named another version: the record changed meanwhile (412)."""


class WebshopConflict(WebshopError):
    """A unique value is already taken (409); ``field`` names it when the shop says."""

    def __init__(self, message: str, *, field: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.field = field
        self.errors: list[FieldError] = []


class WebshopValidationError(WebshopError):
    """The shop rejected fields (422); ``errors`` names each one."""

    def __init__(self, message: str, *, errors: list[FieldError], **kw: Any) -> None:
        super().__init__(message, **kw)
        self.errors = errors


class WebshopUnavailable(WebshopError):
    """The webshop could not be reached or kept failing after every retry."""


@dataclass(frozen=True)
class CreateOp:
    """A create for :meth:`WebshopClient.write_many`: ``POST`` with its ``Idempotency-Key``."""

    body: Mapping[str, Any]
    idempotency_key: str


@dataclass(frozen=True)
class UpdateOp:
    """An update for :meth:`WebshopClient.write_many`: a merge patch, with ``If-Match``
    when ``if_match`` is given."""

    id: str
    patch: Mapping[str, Any]
    if_match: int | None = None


WriteOp = CreateOp | UpdateOp
WriteOutcome = dict[str, Any] | WebshopError
"""The record written, or the exception its single request would have raised."""


@dataclass
class ChangePage:
    """One page of a change listing; ``next_cursor`` None means the end."""

    items: list[dict[str, Any]]
    next_cursor: str | None


class _Retryable(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


_TRANSIENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.PoolTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (_Retryable, *_TRANSIENT))


def _retry_after(response: httpx.Response) -> float:
    header = (response.headers.get("Retry-After") or "").strip()
    try:
        return max(float(header), 0.0)
    except ValueError:
        return 1.0


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("updated_since must be timezone-aware (RFC 3339 needs an offset)")
    return value.isoformat(timespec="microseconds")


def _check_collection(collection: str) -> str:
    if collection not in COLLECTIONS:
        raise ValueError(f"unknown webshop collection {collection!r}; known: {COLLECTIONS}")
    return collection


def endpoint_key(method: str, path: str) -> str:
    """``GET /customers/cus_…`` → ``GET /customers/{id}`` (for request counters);
    ``POST /customers/batch`` stays as it is."""
    parts = path.split("/")
    batch = method == "POST" and len(parts) == 3 and parts[2] == "batch"
    if len(parts) >= 3 and parts[2] and not batch:
        parts[2] = "{id}"
    return f"{method} {'/'.join(parts)}"


def _again(exc: WebshopError) -> WebshopError:
    """A fresh exception like ``exc``, for one more item it stands for."""
    return type(exc)(str(exc), status=exc.status, problem=exc.problem)


def _batch_item(op: WriteOp) -> dict[str, Any]:
    if isinstance(op, CreateOp):
        return {"op": "create", "idempotency_key": op.idempotency_key, "body": dict(op.body)}
    item: dict[str, Any] = {"op": "update", "id": op.id, "patch": dict(op.patch)}
    if op.if_match is not None:
        item["if_match"] = f'"{int(op.if_match)}"'
    return item


def _chunks(
    ops: Sequence[WriteOp], max_items: int, max_bytes: int
) -> Iterator[list[tuple[WriteOp, dict[str, Any]]]]:
    """Consecutive runs of at most ``max_items`` items and about ``max_bytes`` of JSON
    (an item larger than that goes alone)."""
    chunk: list[tuple[WriteOp, dict[str, Any]]] = []
    size = 0
    for op in ops:
        item = _batch_item(op)
        length = len(json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass")) + 1
        if chunk and (len(chunk) >= max_items or size + length > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append((op, item))
        size += length
    if chunk:
        yield chunk


def _unsendable(value: Any, loc: tuple[str | int, ...]) -> list[FieldError]:
    """Strings (values and member names) that are not valid Unicode (a lone surrogate),
    named as the shop would name them (``lines[1].sku``): no JSON request can carry them."""
    found: list[FieldError] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            found += _unsendable(key, (*loc, str(key))) + _unsendable(item, (*loc, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found += _unsendable(item, (*loc, index))
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            path = "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc
            ).lstrip(".")
            path = path.encode("utf-8", "backslashreplace").decode("utf-8")
            found.append(FieldError(path, "is not valid Unicode (lone surrogate)"))
    return found


def _independent(ops: Sequence[WriteOp]) -> bool:
    """No two ops touch one record or share a key (so their order cannot matter)."""
    seen: set[tuple[str, str]] = set()
    for op in ops:
        mark = ("key", op.idempotency_key) if isinstance(op, CreateOp) else ("id", op.id)
        if mark in seen:
            return False
        seen.add(mark)
    return True


# --------------------------------------------------------------------------- client
class WebshopClient:
    """A synchronous client for one webshop that implements the contract."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        page_size: int = 1000,
        timeout: float = 30.0,
        max_retries: int = 6,
        transport: httpx.BaseTransport | None = None,
        backoff_max: float = 30.0,
        max_batch_items: int = MAX_BATCH_ITEMS,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        fallback_concurrency: int = FALLBACK_CONCURRENCY,
    ) -> None:
        if not token:
            raise WebshopAuthError(
                "no webshop token configured (webshop.token or SHOPSYNC_WEBSHOP_TOKEN)"
            )
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be 1..1000")
        if max_batch_items < 1 or max_batch_bytes < 1 or fallback_concurrency < 1:
            raise ValueError("max_batch_items, max_batch_bytes, fallback_concurrency must be ≥ 1")
        self.max_batch_items = max_batch_items
        self.max_batch_bytes = max_batch_bytes
        self.fallback_concurrency = fallback_concurrency
        self._capabilities: dict[str, Any] | None = None
        self._capabilities_lock = threading.Lock()
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.page_size = page_size
        self.max_retries = max_retries
        self.backoff_max = backoff_max
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json, application/problem+json",
                "User-Agent": "shopsync",
            },
        )
        self.requests_made = 0
        self.requests_by_endpoint: collections.Counter[str] = collections.Counter()
        self._count_lock = threading.Lock()
        self.responses_429 = 0
        self.retries = 0
        self.last_rate_headers: dict[str, str] = {}

    @classmethod
    def from_config(cls, cfg: WebshopConfig, **kwargs: Any) -> WebshopClient:
        token = cfg.token.get_secret_value() if cfg.token else ""
        return cls(
            cfg.base_url,
            token,
            page_size=cfg.page_size,
            timeout=cfg.timeout_seconds,
            max_retries=cfg.max_retries,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"WebshopClient({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WebshopClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- transport
    def _scrub(self, text: str) -> str:
        """``text`` without the token or any URL's password (server messages may echo)."""
        text = text.replace(self._token, "***") if len(self._token) >= 4 else text
        return mask_url(text)

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        on_retry: Callable[[], None] | None = None,
    ) -> httpx.Response:
        """One logical request: retried on transient failures, 429s honoured.

        ``on_retry`` is called before each retry: the request may then have been done
        by an attempt whose answer was lost (a 429 is not a retry: it was not done).
        """
        endpoint = endpoint_key(method, path)

        def attempt() -> httpx.Response:
            waits = 0
            while True:
                with self._count_lock:  # creates may run on several threads
                    self.requests_made += 1
                    self.requests_by_endpoint[endpoint] += 1
                response = self._http.request(
                    method, path, params=params, json=json_body, headers=dict(headers or {})
                )
                found = {
                    k: v
                    for k, v in response.headers.items()
                    if k.lower().startswith(("x-ratelimit", "ratelimit"))
                }
                if found:
                    self.last_rate_headers = found
                if response.status_code == 429:
                    self.responses_429 += 1
                    waits += 1
                    if waits > MAX_429_WAITS:
                        raise WebshopUnavailable(
                            f"{endpoint}: still throttled after {MAX_429_WAITS} waits", status=429
                        )
                    wait = _retry_after(response)
                    log.warning("webshop.rate_limited", endpoint=endpoint, retry_after=wait)
                    time.sleep(wait)
                    continue
                if response.status_code in RETRY_STATUSES:
                    raise _Retryable(response)
                return response

        def before_sleep(state: RetryCallState) -> None:
            self.retries += 1
            if on_retry is not None:
                on_retry()
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "webshop.retrying",
                endpoint=endpoint,
                attempt=state.attempt_number,
                error=type(exc).__name__ if exc else None,
            )

        retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            wait=wait_random_exponential(multiplier=0.5, max=self.backoff_max),
            stop=stop_after_attempt(self.max_retries + 1),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as exc:
            raise WebshopUnavailable(
                f"{endpoint}: HTTP {exc.response.status_code} after "
                f"{self.max_retries + 1} attempts",
                status=exc.response.status_code,
                problem=self._problem(exc.response),
            ) from None
        except httpx.TransportError as exc:
            raise WebshopUnavailable(
                f"{endpoint}: cannot reach the webshop at {mask_url(self.base_url)} "
                f"({type(exc).__name__}: {self._scrub(str(exc)) or 'no detail'})"
            ) from None

    def _problem(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {"detail": self._scrub(response.text[:300])}
        return body if isinstance(body, dict) else {"detail": str(body)[:300]}

    def _raise_for(self, response: httpx.Response, what: str) -> None:
        """Turn a problem+json answer into the matching typed exception."""
        if response.status_code < 400:
            return
        raise self._error_for(
            response.status_code, self._problem(response), what, response.reason_phrase
        )

    def _error_for(
        self, status: int, problem: dict[str, Any], what: str, reason: str = ""
    ) -> WebshopError:
        """The typed exception for a refusal (a whole answer's or one batch item's)."""
        detail = self._scrub(str(problem.get("detail") or problem.get("title") or ""))
        errors = [
            FieldError(str(e.get("field", "")), self._scrub(str(e.get("message", ""))))
            for e in problem.get("errors") or []
            if isinstance(e, dict)
        ]
        listed = "; ".join(str(e) for e in errors)
        message = f"{what}: HTTP {status}: {listed or detail or reason}"
        kw: dict[str, Any] = {"status": status, "problem": problem}
        if status in (401, 403):
            return WebshopAuthError(
                f"{what}: the webshop refused the token (HTTP {status}); check webshop.token "
                "or SHOPSYNC_WEBSHOP_TOKEN",
                **kw,
            )
        if status == 404:
            return WebshopNotFound(message, **kw)
        if status == 410:
            return WebshopGone(message, **kw)
        if status == 412:
            return WebshopPreconditionFailed(message, **kw)
        if status == 409:
            conflict = WebshopConflict(message, field=errors[0].field if errors else None, **kw)
            conflict.errors = errors
            return conflict
        if status == 422:
            return WebshopValidationError(message, errors=errors, **kw)
        return WebshopError(message, **kw)

    def _record(self, response: httpx.Response, what: str) -> dict[str, Any]:
        self._raise_for(response, what)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise WebshopError(
                f"{what}: the answer is not JSON", status=response.status_code
            ) from None
        if not isinstance(body, dict):
            raise WebshopError(f"{what}: expected an object, got {type(body).__name__}")
        return body

    # ----------------------------------------------------------------- reading
    def iter_changes(
        self,
        collection: str,
        updated_since: datetime | None,
        include_deleted: bool = True,
    ) -> Iterator[ChangePage]:
        """Pages of records (and tombstones) changed at or after ``updated_since``.

        Oldest change first; ``updated_since`` is inclusive, so a poller that passes the
        ``updated_at`` of the last item it processed sees that item once more.
        """
        path = f"/{_check_collection(collection)}"
        params: dict[str, Any] = {
            "limit": self.page_size,
            "include_deleted": "true" if include_deleted else "false",
        }
        if updated_since is not None:
            params["updated_since"] = _timestamp(updated_since)
        seen_cursors: set[str] = set()
        while True:
            response = self._send("GET", path, params=params)
            body = self._record(response, f"GET {path}")
            items = body.get("items")
            if not isinstance(items, list):
                raise WebshopError(f"GET {path}: the answer has no 'items' list")
            cursor = body.get("next_cursor")
            if cursor is not None and not isinstance(cursor, str):
                raise WebshopError(f"GET {path}: 'next_cursor' is not a string")
            yield ChangePage(items=items, next_cursor=cursor)
            if cursor is None:
                return
            if cursor in seen_cursors:
                raise WebshopError(f"GET {path}: the shop returned the same cursor twice")
            seen_cursors.add(cursor)
            params = {**params, "cursor": cursor}

    def get(self, collection: str, id: str) -> dict[str, Any] | None:
        """One record; None when it does not exist (404); :class:`WebshopGone` on 410."""
        path = f"/{_check_collection(collection)}/{_id(id)}"
        response = self._send("GET", path)
        if response.status_code == 404:
            return None
        return self._record(response, f"GET {path}")

    def count(self, collection: str) -> int:
        """Live records in ``collection`` (pages through them: ⌈n/page_size⌉ requests)."""
        return sum(
            len(page.items) for page in self.iter_changes(collection, None, include_deleted=False)
        )

    # ----------------------------------------------------------------- writing
    def create(
        self, collection: str, body: Mapping[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        """``POST`` a record with ``Idempotency-Key`` (safe to retry); returns the record."""
        if not idempotency_key or not re.fullmatch(r"[!-~]{1,255}", idempotency_key):
            raise ValueError("idempotency_key must be 1..255 visible ASCII characters")
        path = f"/{_check_collection(collection)}"
        response = self._send(
            "POST", path, json_body=dict(body), headers={"Idempotency-Key": idempotency_key}
        )
        return self._record(response, f"POST {path}")

    def update(
        self,
        collection: str,
        id: str,
        patch: Mapping[str, Any],
        if_match: int | None = None,
    ) -> dict[str, Any]:
        """``PATCH`` (JSON merge patch); with ``if_match``, only if still at that version.

        A conditional update retried after an ambiguous failure may find its own write
        already applied (version moved on: 412). The client then reads the record, and
        when it already holds every patched value, returns it as the result.
        """
        path = f"/{_check_collection(collection)}/{_id(id)}"
        headers = {"If-Match": f'"{int(if_match)}"'} if if_match is not None else {}
        retried = threading.Event()
        response = self._send(
            "PATCH", path, json_body=dict(patch), headers=headers, on_retry=retried.set
        )
        if response.status_code == 412 and retried.is_set():
            current = self._applied_already(collection, id, patch)
            if current is not None:
                return current
        return self._record(response, f"PATCH {path}")

    def _applied_already(
        self, collection: str, id: str, patch: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """After a retried conditional update answered 412: the record, when it already
        holds every patched value (the lost first attempt was applied); else None."""
        current = self.get(collection, id)
        return current if current is not None and _applied(patch, current) else None

    def delete(self, collection: str, id: str) -> None:
        """``DELETE``; a record that is already gone (404/410) is fine."""
        path = f"/{_check_collection(collection)}/{_id(id)}"
        response = self._send("DELETE", path)
        if response.status_code in (404, 410):
            return
        self._raise_for(response, f"DELETE {path}")

    # ----------------------------------------------------------------- webhooks
    def webhooks(self) -> list[dict[str, Any]] | None:
        """The shop's webhook subscriptions; None when it offers no webhooks (404/405)."""
        response = self._send("GET", "/webhooks")
        if response.status_code in NO_SUCH_OPERATION:
            return None
        self._raise_for(response, "GET /webhooks")
        body = response.json()
        items = body.get("items", body) if isinstance(body, dict) else body
        return [dict(i) for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def subscribe_webhook(self, url: str, events: Sequence[str], secret: str) -> dict[str, Any]:
        """``POST /webhooks``: deliver ``events`` to ``url`` signed with ``secret``."""
        response = self._send(
            "POST", "/webhooks", json_body={"url": url, "events": list(events), "secret": secret}
        )
        return self._record(response, "POST /webhooks")

    def delete_webhook(self, id: str) -> None:
        """Unsubscribe; a subscription that is already gone is fine."""
        path = f"/webhooks/{_id(id)}"
        response = self._send("DELETE", path)
        if response.status_code in (404, 410):
            return
        self._raise_for(response, f"DELETE {path}")

    # ----------------------------------------------------------------- batch writes
    def capabilities(self) -> dict[str, Any]:
        """The shop's optional features (``GET /capabilities``), asked once per client.

        A shop without the document (404, 405, 501), or whose document is not a JSON
        object, has none: ``{}``. So has a shop that answers it only with 5xx after every
        retry (an optional feature must not stop a sync; its writes go one by one).
        Raises :class:`WebshopAuthError` on 401/403 and :class:`WebshopUnavailable` when
        the shop cannot be reached at all (nothing is remembered then).
        """
        with self._capabilities_lock:
            if self._capabilities is None:
                self._capabilities = self._read_capabilities()
            return self._capabilities

    def _read_capabilities(self) -> dict[str, Any]:
        try:
            response = self._send("GET", "/capabilities")
        except WebshopUnavailable as exc:
            if exc.status is None:
                raise
            log.warning("webshop.capabilities_failing", status=exc.status)
            return {}
        if response.status_code in NO_SUCH_OPERATION:
            return {}
        if response.status_code in (401, 403):
            self._raise_for(response, "GET /capabilities")
        try:
            body = response.json() if response.status_code == 200 else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            log.warning("webshop.capabilities_unreadable", status=response.status_code)
            return {}
        return body

    def batch_size(self) -> int | None:
        """Items per batch request: the shop's ``max_items``, at most ``max_batch_items``;
        None when the shop offers no batch writes."""
        batch = self.capabilities().get("batch")
        limit = batch.get("max_items") if isinstance(batch, dict) else None
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            return None
        return min(limit, self.max_batch_items)

    def write_many(self, collection: str, ops: Sequence[WriteOp]) -> list[WriteOutcome]:
        """Create and update many records in as few requests as the shop allows.

        With batch support (:meth:`batch_size`), consecutive ops go as
        ``POST /{collection}/batch`` of at most ``batch_size()`` items and about
        ``max_batch_bytes`` each; without it, as single requests (several in flight when
        no two ops touch one record or share a key, in order otherwise). The outcomes
        come in the order of ``ops``: the record written (a replayed create's record
        too), or the exception the single :meth:`create`/:meth:`update` would have
        raised for that op (:class:`WebshopValidationError`, :class:`WebshopConflict`,
        :class:`WebshopPreconditionFailed`, :class:`WebshopNotFound`,
        :class:`WebshopGone`, …), so a caller can put aside just that record. An op
        with a string no JSON request can carry (a lone surrogate) is not sent and gets
        the :class:`WebshopValidationError` the shop would answer, naming the field.

        A whole batch that times out or answers 5xx is retried as it is: every create
        carries its idempotency key (a replay answers the record made the first time),
        and an update with ``if_match`` that then answers 412 is checked against the
        record as :meth:`update` does. When the shop refuses the token or cannot be
        reached (after every retry), that op and every later one get that error
        (:class:`WebshopAuthError`, :class:`WebshopUnavailable`): their fate is unknown
        or they were not sent; writing them again later is safe. A batch the shop refuses
        as a whole with another 4xx (its records unjudged) is written op by op instead.

        Raises ``ValueError`` (before sending anything) for an unknown collection, a
        malformed idempotency key or id.
        """
        _check_collection(collection)
        for op in ops:
            if isinstance(op, CreateOp):
                if not re.fullmatch(r"[!-~]{1,255}", op.idempotency_key or ""):
                    raise ValueError("idempotency_key must be 1..255 visible ASCII characters")
            else:
                _id(op.id)
        if not ops:
            return []
        outcomes: list[WriteOutcome | None] = [None] * len(ops)
        sendable: list[int] = []
        for index, op in enumerate(ops):
            bad = _unsendable(op.body if isinstance(op, CreateOp) else op.patch, ())
            if bad:  # cannot be encoded as JSON text: not sent, refused as the shop would
                what = (
                    f"POST /{collection}"
                    if isinstance(op, CreateOp)
                    else f"PATCH /{collection}/{op.id}"
                )
                listed = "; ".join(str(e) for e in bad)
                outcomes[index] = WebshopValidationError(f"{what}: not sent: {listed}", errors=bad)
            else:
                sendable.append(index)
        written = self._write_sendable(collection, [ops[i] for i in sendable])
        for index, outcome in zip(sendable, written, strict=True):
            outcomes[index] = outcome
        return [o for o in outcomes if o is not None]

    def _write_sendable(self, collection: str, ops: Sequence[WriteOp]) -> list[WriteOutcome]:
        if not ops:
            return []
        try:
            size = self.batch_size()
        except (WebshopAuthError, WebshopUnavailable) as exc:
            return [_again(exc) for _ in ops]
        if size is None:
            return self._write_singly(collection, ops)
        outcomes: list[WriteOutcome] = []
        for chunk in _chunks(ops, size, self.max_batch_bytes):
            if self.batch_size() is None:  # the shop stopped offering batches
                outcomes += self._write_singly(collection, [op for op, _ in chunk])
                continue
            try:
                outcomes += self._write_batch(collection, chunk)
            except (WebshopAuthError, WebshopUnavailable) as exc:
                outcomes += [_again(exc) for _ in ops[len(outcomes) :]]
                break
        return outcomes

    def _write_batch(
        self, collection: str, chunk: list[tuple[WriteOp, dict[str, Any]]]
    ) -> list[WriteOutcome]:
        """One ``POST /{collection}/batch``; the outcome of each item, in order."""
        path = f"/{collection}/batch"
        what = f"POST {path}"
        retried = threading.Event()
        response = self._send(
            "POST", path, json_body={"items": [item for _, item in chunk]}, on_retry=retried.set
        )
        ops = [op for op, _ in chunk]
        if response.status_code in NO_SUCH_OPERATION:
            log.warning("webshop.batch_withdrawn", status=response.status_code)
            with self._capabilities_lock:
                self._capabilities = {}
            return self._write_singly(collection, ops)
        if response.status_code == 413 and len(chunk) > 1:  # too large for the shop: halve
            half = len(chunk) // 2
            return self._write_batch(collection, chunk[:half]) + self._write_batch(
                collection, chunk[half:]
            )
        if response.status_code == 413:
            return self._write_singly(collection, ops)
        if response.status_code in (401, 403):
            self._raise_for(response, what)
        if 400 <= response.status_code < 500:
            # The batch as such was refused (say max_items was lowered meanwhile), which
            # says nothing about its records: each gets the answer to its own request.
            problem = self._problem(response)
            log.warning(
                "webshop.batch_refused",
                status=response.status_code,
                detail=self._scrub(str(problem.get("detail", "")))[:200],
            )
            return self._write_singly(collection, ops)
        if response.status_code != 200:
            error = self._error_for(
                response.status_code, self._problem(response), what, response.reason_phrase
            )
            return [_again(error) for _ in ops]
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != len(ops):
            count = len(results) if isinstance(results, list) else "no"
            error = WebshopError(
                f"{what}: the answer has {count} results for {len(ops)} items", status=200
            )
            return [_again(error) for _ in ops]
        return [
            self._item_outcome(collection, op, result, retried.is_set())
            for op, result in zip(ops, results, strict=True)
        ]

    def _item_outcome(
        self, collection: str, op: WriteOp, result: Any, retried: bool
    ) -> WriteOutcome:
        path = f"/{collection}"
        what = f"POST {path}" if isinstance(op, CreateOp) else f"PATCH {path}/{op.id}"
        status = result.get("status") if isinstance(result, dict) else None
        if not isinstance(status, int) or isinstance(status, bool):
            return WebshopError(f"{what} (in a batch): a result without a status: {result!r}")
        assert isinstance(result, dict)
        if 200 <= status < 300:
            record = result.get("record")
            if isinstance(record, dict):
                return record
            return WebshopError(
                f"{what} (in a batch): HTTP {status} without a record", status=status
            )
        problem = result.get("problem")
        error = self._error_for(status, problem if isinstance(problem, dict) else {}, what)
        if isinstance(error, WebshopPreconditionFailed) and retried and isinstance(op, UpdateOp):
            try:
                current = self._applied_already(collection, op.id, op.patch)
            except WebshopError:
                current = None
            if current is not None:
                return current
        return error

    def _write_singly(self, collection: str, ops: Sequence[WriteOp]) -> list[WriteOutcome]:
        """The fallback: one request per op, the same outcomes as a batch."""
        stop: list[WebshopError] = []

        def one(op: WriteOp) -> WriteOutcome:
            if stop:
                return _again(stop[0])
            try:
                if isinstance(op, CreateOp):
                    return self.create(collection, op.body, op.idempotency_key)
                return self.update(collection, op.id, op.patch, if_match=op.if_match)
            except (WebshopAuthError, WebshopUnavailable) as exc:
                stop.append(exc)
                return exc
            except WebshopError as exc:
                return exc

        if self.fallback_concurrency == 1 or len(ops) == 1 or not _independent(ops):
            return [one(op) for op in ops]
        with ThreadPoolExecutor(max_workers=self.fallback_concurrency) as pool:
            return list(pool.map(one, ops))

    def probe_write(self, collection: str) -> str:
        """Prove the write path without changing data (used by ``shopsync check``).

        With a record at hand: ``PATCH`` it with ``If-Match`` of a version it cannot have
        (0; versions start at 1) and an empty patch — the shop must answer 412 and change
        nothing. With none: ``POST`` an empty body, which must be refused with 422
        (nothing is created). Returns what was proven; raises on anything else.
        """
        path = f"/{_check_collection(collection)}"
        first = self.first_record(collection)
        if first is not None:
            rid = str(first["id"])
            response = self._send(
                "PATCH", f"{path}/{_id(rid)}", json_body={}, headers={"If-Match": '"0"'}
            )
            if response.status_code == 412:
                return "If-Match refused (412), nothing changed"
            self._raise_for(response, f"PATCH {path}/{{id}}")
            raise WebshopError(
                f'PATCH {path}/{{id}} with If-Match "0" answered {response.status_code}, '
                "not 412: the shop ignores If-Match"
            )
        response = self._send(
            "POST",
            path,
            json_body={},
            headers={"Idempotency-Key": f"shopsync-check-{time.time_ns()}"},
        )
        if response.status_code == 422:
            return "empty create refused (422), nothing created"
        self._raise_for(response, f"POST {path}")
        raise WebshopError(
            f"POST {path} with an empty body answered {response.status_code}, not 422"
        )

    def first_record(self, collection: str) -> dict[str, Any] | None:
        """One live record, or None when the collection is empty (one request)."""
        path = f"/{_check_collection(collection)}"
        response = self._send("GET", path, params={"limit": 1, "include_deleted": "false"})
        body = self._record(response, f"GET {path}")
        items = body.get("items")
        if isinstance(items, list) and items and isinstance(items[0], dict):
            return items[0]
        return None


def _id(value: str) -> str:
    text = str(value)
    if not text or "/" in text or text in (".", "..") or not text.isprintable():
        raise ValueError(f"{value!r} is not a webshop record id")
    return text


def _applied(patch: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """True when ``record`` already holds every value of the merge ``patch``."""
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(record.get(key), Mapping):
            if not _applied(value, record[key]):
                return False
        elif key == "lines":
            return False  # line ids are reassigned; cannot tell cheaply
        elif not _same(record.get(key), value):
            return False
    return True


def _same(a: Any, b: Any) -> bool:
    """Equal, comparing decimal strings by value (``"12.5"`` == ``"12.50"``)."""
    if a == b:
        return True
    if isinstance(a, str) and isinstance(b, str):
        try:
            return Decimal(a) == Decimal(b)
        except InvalidOperation:
            return False
    return False
