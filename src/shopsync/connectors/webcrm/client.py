"""The webCRM REST client: the only code that speaks to webCRM.

What it takes care of, so the sync engine does not have to:

* **Auth.** ``POST /Auth/ApiLogin`` exchanges the application token for an access
  token; the client refreshes (``/Auth/ApiRefresh``) shortly before it expires, and once
  more on a 401 (a token revoked or expired early), then logs in again from scratch.
  "Shortly" is early enough for the slowest recent request, the token's life is counted
  from when its request was sent, and it is checked after the rate limiter's wait, so a
  slow or rate-limited request never reaches webCRM with an expired token.
  A refused application token is a :class:`WebcrmAuthError` telling the operator how to
  re-authorise.
* **Pace.** Every request, including logins and retries, first takes a slot from the
  token's shared :class:`~shopsync.connectors.webcrm.ratelimit.SlidingWindowLimiter`,
  so the client stays under 250 requests per 60 s on its own. A 429 anyway (another
  process on the same token) pauses the limiter for ``Retry-After`` seconds.
* **Failures.** Timeouts, dropped connections and 500/502/503/504 are retried with
  exponential backoff and jitter (tenacity). Retrying a request that *creates* records
  (``POST``, a ``PATCH`` with inserts) after an ambiguous failure — the request may have
  reached webCRM before the connection broke — can create a duplicate; the engine's
  merge criteria find and link such a duplicate on the next run.
* **Bulk.** Reads in pages of 1000 (a full read costs ⌈rows/1000⌉ requests, one more
  only when rows is an exact multiple); incremental reads by ``…UpdatedAt`` through
  ``/Queries`` with keyset paging and an overlap window; writes through ``PATCH`` in
  batches, each returned id or error mapped back to its record.
* **Secrets.** No message, log line or exception text contains the application token,
  access token or refresh token.
"""

from __future__ import annotations

import collections
import email.utils
import json
import re
import time
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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

from shopsync.connectors.webcrm.fieldspec import EntitySpec
from shopsync.connectors.webcrm.queries import entity_spec, updated_since_script
from shopsync.connectors.webcrm.ratelimit import SlidingWindowLimiter, shared_limiter
from shopsync.logs import mask_url

if TYPE_CHECKING:
    from shopsync.config.model import WebcrmConfig

log = structlog.get_logger("shopsync.webcrm")

REAUTHORISE_HINT = (
    "re-authorise: create a new token in webCRM under Configuration › Integration › API"
)
DELETABLE = frozenset({"QuotationLine", "Product"})
"""Entities this API version can delete; Organisations and Opportunities it cannot."""
RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_429_WAITS = 100
"""Consecutive 429s tolerated for one request before giving up (a storm, not a hiccup)."""


# --------------------------------------------------------------------------- errors


def overlap_start(
    since: datetime | None, overlap: timedelta, settled: datetime | None
) -> datetime | None:
    """Where an incremental read starts: ``overlap`` before ``since``, but not below
    ``settled`` (every write before it had committed when the last read began), and
    never after ``since`` itself."""
    if since is None:
        return None
    lower = since - overlap
    if settled is not None:
        lower = max(lower, min(since, settled))
    return lower


class WebcrmError(Exception):
    """Any failure talking to webCRM; ``str()`` never contains a token."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WebcrmAuthError(WebcrmError):
    """webCRM refused the application token (or a login failed)."""


class WebcrmRecordError(WebcrmError):
    """webCRM refused one record (400 with a message)."""


class WebcrmUnavailable(WebcrmError):
    """webCRM could not be reached or kept failing after every retry."""


class WebcrmAmbiguous(WebcrmUnavailable):
    """A request that creates records failed after it may have reached webCRM.

    webCRM has no idempotency key, so such a request is never resent blindly: whether
    its records landed is found out by asking webCRM (the engine's create intents).
    """


_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")


def endpoint_key(method: str, path: str) -> str:
    """``GET /Organisations/17`` → ``GET /Organisations/{id}`` (for request counters)."""
    return f"{method} {_ID_SEGMENT.sub('/{id}', path)}"


@dataclass
class UpsertResult:
    """The outcome for the record at ``index`` of an :meth:`WebcrmClient.upsert` call."""

    index: int
    id: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


class _Retryable(Exception):
    """A 5xx answer worth retrying (internal: becomes WebcrmUnavailable when exhausted)."""

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


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures before any byte of the request reached webCRM: safe to resend anything."""


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (_Retryable, *_TRANSIENT))


def _is_unsent(exc: BaseException) -> bool:
    return isinstance(exc, _NOT_SENT)


def retry_after_seconds(response: httpx.Response, default: float = 1.0) -> float:
    """Seconds to wait from a 429: ``Retry-After`` (seconds or HTTP date), else the body."""
    header = response.headers.get("Retry-After")
    if header:
        header = header.strip()
        try:
            return max(float(header), 0.0)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(header)
                return max(when.timestamp() - time.time(), 0.0)
            except (TypeError, ValueError):
                pass
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("RetryAfterSeconds"), int | float):
            return max(float(body["RetryAfterSeconds"]), 0.0)
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    return default


@dataclass
class _Token:
    access: str
    refresh: str | None
    expires_at: float
    """The client's clock (``time.monotonic``) after which the access token is no longer
    valid: ``ExpiresIn`` counted from when the login or refresh was sent."""
    lifetime: float


# --------------------------------------------------------------------------- client
class WebcrmClient:
    """A synchronous webCRM client for one application token (see module docstring)."""

    def __init__(
        self,
        base_url: str,
        auth_code: str,
        *,
        rate_limit: int = 250,
        window_seconds: float = 60.0,
        page_size: int = 1000,
        batch_size: int = 500,
        timeout: float = 30.0,
        max_retries: int = 6,
        overlap_seconds: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        limiter: SlidingWindowLimiter | None = None,
        backoff_max: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not auth_code:
            raise WebcrmAuthError(f"no webCRM application token configured; {REAUTHORISE_HINT}")
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be 1..1000")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._auth_code = auth_code
        self.page_size = page_size
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.overlap = timedelta(seconds=overlap_seconds)
        self.backoff_max = backoff_max
        self.limiter = limiter or shared_limiter(
            self.base_url, auth_code, rate_limit, window_seconds
        )
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "shopsync"},
        )
        self._token: _Token | None = None
        self._clock = clock
        """Seconds, for token lifetimes and request durations (injectable for tests)."""
        self._durations: collections.deque[float] = collections.deque(maxlen=32)
        """How long the recent requests took, sent to answered."""
        self._last_sent_at = 0.0
        self.requests_made = 0
        self.requests_by_endpoint: collections.Counter[str] = collections.Counter()
        self.responses_429 = 0
        """429 answers received (the client's own pace should keep this at 0)."""
        self.retries = 0
        self.responses_401 = 0
        """401 answers to API calls (each followed by one refresh and a resend)."""
        self.last_rate_headers: dict[str, str] = {}
        """Rate-limit headers of the last answer, when the server sends any."""

    @classmethod
    def from_config(cls, cfg: WebcrmConfig, **kwargs: Any) -> WebcrmClient:
        code = cfg.auth_code.get_secret_value() if cfg.auth_code else ""
        return cls(
            cfg.base_url,
            code,
            rate_limit=cfg.rate_limit,
            window_seconds=cfg.rate_window_seconds,
            page_size=cfg.page_size,
            batch_size=cfg.batch_size,
            timeout=cfg.timeout_seconds,
            max_retries=cfg.max_retries,
            overlap_seconds=cfg.overlap_seconds,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"WebcrmClient({self.base_url!r})"

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WebcrmClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def rate_headroom(self) -> int:
        """Requests this token may still send in the current window without waiting."""
        return self.limiter.headroom()

    # ----------------------------------------------------------------- secrets
    def _scrub(self, text: str) -> str:
        """Remove every secret this client knows from ``text`` (server messages may echo)."""
        secrets = [self._auth_code]
        if self._token is not None:
            secrets += [self._token.access, self._token.refresh or ""]
        for secret in secrets:
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return mask_url(text)

    def _message(self, response: httpx.Response) -> str:
        """The server's error text (``Message``/``Error``/plain body), scrubbed, short."""
        text = ""
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if isinstance(body, dict):
            for key in ("Message", "message", "ErrorDescription", "Error", "title", "detail"):
                if body.get(key):
                    text = str(body[key])
                    break
        elif isinstance(body, str):
            text = body
        if not text:
            text = response.text.strip()
        text = self._scrub(text or response.reason_phrase)
        return text if len(text) <= 500 else text[:497] + "..."

    # ----------------------------------------------------------------- auth
    def _token_from(self, response: httpx.Response, what: str, sent_at: float) -> _Token:
        if response.status_code in (400, 401, 403):
            raise WebcrmAuthError(
                f"webCRM refused the application token at {what} "
                f"(HTTP {response.status_code}: {self._message(response)}); {REAUTHORISE_HINT}",
                status=response.status_code,
            )
        if response.status_code != 200:
            raise WebcrmError(
                f"{what} failed: HTTP {response.status_code}: {self._message(response)}",
                status=response.status_code,
            )
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise WebcrmError(f"{what}: the answer is not JSON") from None
        if not isinstance(body, dict) or body.get("IsError") or not body.get("AccessToken"):
            detail = ""
            if isinstance(body, dict):
                detail = self._scrub(str(body.get("ErrorDescription") or body.get("Error") or ""))
            raise WebcrmAuthError(
                f"webCRM refused the application token at {what}"
                f"{': ' + detail if detail else ''}; {REAUTHORISE_HINT}",
                status=response.status_code,
            )
        lifetime = float(body.get("ExpiresIn") or 3600)
        return _Token(
            access=str(body["AccessToken"]),
            refresh=str(body["RefreshToken"]) if body.get("RefreshToken") else None,
            expires_at=sent_at + lifetime,  # webCRM's clock started before the answer
            lifetime=lifetime,
        )

    def login(self) -> None:
        """Exchange the application token for an access token."""
        response = self._send(
            "POST", "/Auth/ApiLogin", data={"authCode": self._auth_code}, authed=False
        )
        self._token = self._token_from(response, "login", self._last_sent_at)
        log.debug("webcrm.login", expires_in=self._token.lifetime)

    def _refresh(self) -> None:
        """Refresh the access token; log in again when refreshing is refused."""
        token = self._token
        if token is None or token.refresh is None:
            self.login()
            return
        response = self._send(
            "POST", "/Auth/ApiRefresh", headers={"refreshToken": token.refresh}, authed=False
        )
        if response.status_code in (400, 401, 403):
            log.info("webcrm.refresh_refused", status=response.status_code)
            self.login()
            return
        self._token = self._token_from(response, "token refresh", self._last_sent_at)
        log.debug("webcrm.refreshed", expires_in=self._token.lifetime)

    def _refresh_lead(self, token: _Token) -> float:
        """Seconds before its expiry a token is replaced: a tenth of its life (at most
        60 s), but at least twice the slowest recent request, so that a request checked
        against it still arrives in time; at most half its life."""
        slowest = max(self._durations, default=0.0)
        return min(max(min(60.0, token.lifetime / 10), 2 * slowest), token.lifetime / 2)

    def _token_due(self) -> bool:
        """True when there is no access token or it is within its refresh lead."""
        token = self._token
        return token is None or self._clock() >= token.expires_at - self._refresh_lead(token)

    def _ensure_token(self) -> str:
        """A valid access token, refreshed shortly before it expires."""
        if self._token is None:
            self.login()
        elif self._token_due():
            self._refresh()
        assert self._token is not None
        return self._token.access

    # ----------------------------------------------------------------- transport
    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authed: bool = True,
        idempotent: bool = True,
        before_send: Callable[[], None] | None = None,
    ) -> httpx.Response:
        """One logical request: paced, retried on transient failures, 429s honoured.

        With ``authed``, a 401 triggers one refresh (or re-login) and one resend; a
        second 401 is a :class:`WebcrmAuthError`. Returns the final response whatever
        its status (callers decide what a 400 or 404 means). A request that is not
        ``idempotent`` (it creates records) is resent only when it provably never
        reached webCRM (connection refused, 429, 401); after a 5xx or a failure in
        mid-flight it raises :class:`WebcrmAmbiguous` instead. ``before_send`` runs just
        before each attempt leaves, after the rate limiter let it go (the engine records
        there that a create is in flight).
        """
        endpoint = endpoint_key(method, path)
        reauthed = False

        def attempt() -> httpx.Response:
            nonlocal reauthed
            waits_429 = 0
            rechecked = False
            while True:
                hdrs = dict(headers or {})
                if authed:
                    self._ensure_token()
                slot = self.limiter.acquire()
                if authed and not rechecked and self._token_due():
                    # The limiter's wait used up the token's lead: refresh before sending.
                    # The unused slot counts as a request for a window (errs on the safe
                    # side); checked once per request, so a short-lived token cannot loop.
                    rechecked = True
                    self.limiter.release(slot)
                    continue
                rechecked = False
                if authed:
                    assert self._token is not None
                    hdrs["Authorization"] = f"Bearer {self._token.access}"
                try:
                    if before_send is not None:
                        before_send()
                    self.requests_made += 1
                    self.requests_by_endpoint[endpoint] += 1
                    self._last_sent_at = sent = self._clock()
                    response = self._http.request(
                        method, path, params=params, json=json_body, data=data, headers=hdrs
                    )
                    self._durations.append(self._clock() - sent)
                finally:
                    self.limiter.release(slot)
                self._note_rate_headers(response)
                status = response.status_code
                if status == 429:
                    self.responses_429 += 1
                    waits_429 += 1
                    wait = retry_after_seconds(response)
                    if waits_429 > MAX_429_WAITS:
                        raise WebcrmUnavailable(
                            f"{endpoint}: still rate-limited after {MAX_429_WAITS} waits",
                            status=429,
                        )
                    log.warning("webcrm.rate_limited", endpoint=endpoint, retry_after=wait)
                    self.limiter.pause(wait)
                    continue
                if status == 401 and authed:
                    self.responses_401 += 1
                if status == 401 and authed and not reauthed:
                    reauthed = True
                    log.info("webcrm.unauthorised_refreshing", endpoint=endpoint)
                    self._refresh()
                    continue
                if status == 401 and authed:
                    raise WebcrmAuthError(
                        f"{endpoint}: webCRM refused the access token after a fresh login "
                        f"(HTTP 401: {self._message(response)}); {REAUTHORISE_HINT}",
                        status=401,
                    )
                if status in RETRY_STATUSES:
                    raise _Retryable(response)
                return response

        def before_sleep(state: RetryCallState) -> None:
            self.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "webcrm.retrying",
                endpoint=endpoint,
                attempt=state.attempt_number,
                error=type(exc).__name__ if exc else None,
                status=exc.response.status_code if isinstance(exc, _Retryable) else None,
            )

        retrying = Retrying(
            retry=retry_if_exception(_is_retryable if idempotent else _is_unsent),
            wait=wait_random_exponential(multiplier=0.5, max=self.backoff_max),
            stop=stop_after_attempt(self.max_retries + 1),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as exc:
            if not idempotent:
                raise WebcrmAmbiguous(
                    f"{endpoint}: HTTP {exc.response.status_code} to a request that creates "
                    f"records; not resent, as it may have landed: "
                    f"{self._message(exc.response)}",
                    status=exc.response.status_code,
                ) from None
            raise WebcrmUnavailable(
                f"{endpoint}: HTTP {exc.response.status_code} after {self.max_retries + 1} "
                f"attempts: {self._message(exc.response)}",
                status=exc.response.status_code,
            ) from None
        except httpx.TransportError as exc:
            if not idempotent and not _is_unsent(exc):
                raise WebcrmAmbiguous(
                    f"{endpoint}: the connection failed in mid-request ({type(exc).__name__}); "
                    f"not resent, as its records may have landed"
                ) from None
            raise WebcrmUnavailable(
                f"{endpoint}: cannot reach webCRM at {mask_url(self.base_url)} "
                f"({type(exc).__name__}: {self._scrub(str(exc)) or 'no detail'})"
            ) from None

    def _note_rate_headers(self, response: httpx.Response) -> None:
        found = {
            k: v
            for k, v in response.headers.items()
            if k.lower().startswith(("x-ratelimit", "ratelimit", "x-rate-limit"))
        }
        if found:
            self.last_rate_headers = found

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise WebcrmError(
                f"{what}: HTTP {response.status_code}, the answer is not JSON",
                status=response.status_code,
            ) from None

    def _expect_ok(self, response: httpx.Response, what: str) -> None:
        if response.status_code == 400:
            raise WebcrmRecordError(f"{what}: {self._message(response)}", status=400)
        if response.status_code >= 300:
            raise WebcrmError(
                f"{what}: HTTP {response.status_code}: {self._message(response)}",
                status=response.status_code,
            )

    # ----------------------------------------------------------------- reading
    def _pages(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """``Page=1,2,…`` until a page shorter than ``page_size`` (or empty)."""
        page = 1
        while True:
            query = {**(params or {}), "Page": page, "Size": self.page_size}
            response = self._send("GET", path, params=query)
            self._expect_ok(response, f"GET {path}")
            rows = self._json(response, f"GET {path}")
            if not isinstance(rows, list):
                raise WebcrmError(f"GET {path}: expected a list, got {type(rows).__name__}")
            if rows:
                yield rows
            if len(rows) < self.page_size:
                return
            page += 1

    def iter_all(self, entity: str) -> Iterator[list[dict[str, Any]]]:
        """Every row of ``entity``, a page at a time."""
        yield from self._pages(f"/{entity_spec(entity).collection}")

    def iter_query(self, script: str) -> Iterator[list[dict[str, Any]]]:
        """The rows of a ``/Queries`` script, a page at a time (build it with ``queries``)."""
        yield from self._pages("/Queries", {"script": script})

    def iter_updated_since(
        self,
        entity: str,
        since: datetime | None,
        *,
        settled: datetime | None = None,
        already_seen: Container[tuple[int, str]] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Rows changed at or after ``since`` minus the overlap window, oldest first.

        The overlap re-reads rows whose write may have committed after the last read
        saw the newest one. ``settled`` (when the caller knows it) is a time before
        which every write had committed when that read began: the overlap need not
        reach below it, so a cursor left behind by a burst of writes long ago costs one
        page, not the burst's last ``overlap_seconds`` again on every run.

        Ordered by ``(UpdatedAt, Id)`` and paged by keyset (see
        :func:`~shopsync.connectors.webcrm.queries.updated_since_script`), one
        ``/Queries`` request per page. ``since=None`` reads everything in the same order.
        A row whose ``(id, UpdatedAt)`` was already yielded in this iteration, or is in
        ``already_seen`` (what the caller read last time: the overlap), is skipped.
        Pages may be shorter than ``page_size`` after de-duplication; an empty page is
        never yielded.
        """
        spec = entity_spec(entity)
        lower = overlap_start(since, self.overlap, settled)
        yield from self._keyset(entity, spec.updated_at_field, lower, already_seen)

    def iter_created_since(self, entity: str, since: datetime) -> Iterator[list[dict[str, Any]]]:
        """Rows created at or after ``since``, oldest first, one ``/Queries`` request a
        page: how the engine asks which of its interrupted creates landed."""
        yield from self._keyset(entity, entity_spec(entity).created_at_field, since, None)

    def _keyset(
        self,
        entity: str,
        ts_field: str,
        lower: datetime | None,
        already_seen: Container[tuple[int, str]] | None,
    ) -> Iterator[list[dict[str, Any]]]:
        id_field = entity_spec(entity).id_field
        seen: set[tuple[int, str]] = set()
        after: tuple[str, int] | None = None
        while True:
            script = updated_since_script(entity, lower, after, ts_field=ts_field)
            response = self._send(
                "GET", "/Queries", params={"script": script, "Page": 1, "Size": self.page_size}
            )
            self._expect_ok(response, f"GET /Queries ({entity} by {ts_field})")
            rows = self._json(response, "GET /Queries")
            if not isinstance(rows, list):
                raise WebcrmError(f"GET /Queries: expected a list, got {type(rows).__name__}")
            fresh = []
            for row in rows:
                key = (int(row[id_field]), str(row[ts_field]))
                if key in seen or (already_seen is not None and key in already_seen):
                    continue
                seen.add(key)
                fresh.append(row)
            if fresh:
                yield fresh
            if len(rows) < self.page_size:
                return
            last = rows[-1]
            after = (str(last[ts_field]), int(last[id_field]))

    def get(self, entity: str, id: int) -> dict[str, Any] | None:
        """One record, or None when it does not exist."""
        path = f"/{entity_spec(entity).collection}/{int(id)}"
        response = self._send("GET", path)
        if response.status_code == 404:
            return None
        self._expect_ok(response, f"GET {path}")
        body = self._json(response, f"GET {path}")
        if body is None:
            return None
        if not isinstance(body, dict):
            raise WebcrmError(f"GET {path}: expected an object, got {type(body).__name__}")
        return body

    def quotation_lines_of(self, opportunity_id: int) -> list[dict[str, Any]]:
        """All quotation lines of one opportunity."""
        rows: list[dict[str, Any]] = []
        for page in self._pages(f"/Opportunities/{int(opportunity_id)}/QuotationLines"):
            rows.extend(page)
        return rows

    def count(self, entity: str) -> int:
        """How many rows ``entity`` has (reads them: ⌈n/1000⌉ requests)."""
        return sum(len(page) for page in self.iter_all(entity))

    # ----------------------------------------------------------------- writing
    def create(self, entity: str, record: Mapping[str, Any]) -> int:
        """``POST`` one record; returns its new id. Refused: :class:`WebcrmRecordError`."""
        path = f"/{entity_spec(entity).collection}"
        response = self._send("POST", path, json_body=dict(record))
        self._expect_ok(response, f"POST {path}")
        body = self._json(response, f"POST {path}")
        try:
            return int(body)
        except (TypeError, ValueError):
            raise WebcrmError(f"POST {path}: expected the new id, got {body!r}"[:300]) from None

    def upsert(
        self,
        entity: str,
        records: Sequence[Mapping[str, Any]],
        *,
        on_send: Callable[[range], None] | None = None,
    ) -> list[UpsertResult]:
        """Insert or update many records through ``PATCH`` in batches of ``batch_size``.

        A record without its id field (or with id 0) is inserted. The result has one
        entry per input record, in input order, with the id webCRM gave or its error.
        A batch that webCRM refuses as a whole (400) is split in halves and retried, so
        one bad record costs a few extra requests instead of failing its neighbours.
        A request that inserts is never resent after it may have reached webCRM
        (:class:`WebcrmAmbiguous`); ``on_send(range of indices)`` runs just before each
        request leaves.
        """
        spec = entity_spec(entity)
        results: list[UpsertResult] = []
        for start in range(0, len(records), self.batch_size):
            batch = list(records[start : start + self.batch_size])
            results.extend(self._patch(spec, batch, start, on_send))
        return results

    def _patch(
        self,
        spec: EntitySpec,
        batch: list[Mapping[str, Any]],
        offset: int,
        on_send: Callable[[range], None] | None = None,
    ) -> list[UpsertResult]:
        path = f"/{spec.collection}"
        inserts = any(not record.get(spec.id_field) for record in batch)
        indices = range(offset, offset + len(batch))
        response = self._send(
            "PATCH",
            path,
            json_body=[dict(r) for r in batch],
            idempotent=not inserts,
            before_send=(lambda: on_send(indices)) if on_send is not None else None,
        )
        if response.status_code == 400:
            message = self._message(response)
            if len(batch) == 1:
                return [UpsertResult(offset, None, message)]
            half = len(batch) // 2
            log.info("webcrm.patch_split", path=path, size=len(batch), reason=message[:200])
            return self._patch(spec, batch[:half], offset, on_send) + self._patch(
                spec, batch[half:], offset + half, on_send
            )
        self._expect_ok(response, f"PATCH {path}")
        answers = self._json(response, f"PATCH {path}")
        if not isinstance(answers, list) or len(answers) != len(batch):
            got = len(answers) if isinstance(answers, list) else type(answers).__name__
            raise WebcrmError(f"PATCH {path}: sent {len(batch)} records, got {got} answers")
        out = []
        for i, answer in enumerate(answers):
            text = str(answer).strip() if answer is not None else ""
            if text.isdigit() and int(text) > 0:
                out.append(UpsertResult(offset + i, int(text), None))
            else:
                out.append(UpsertResult(offset + i, None, self._scrub(text) or "refused"))
        return out

    def delete(self, entity: str, id: int) -> None:
        """Delete one record (QuotationLine, Product only); already gone is fine."""
        spec = entity_spec(entity)
        if spec.name not in DELETABLE:
            raise WebcrmError(
                f"webCRM's API cannot delete {spec.collection}; only "
                + ", ".join(sorted(DELETABLE))
            )
        path = f"/{spec.collection}/{int(id)}"
        response = self._send("DELETE", path)
        if response.status_code == 404:
            return
        self._expect_ok(response, f"DELETE {path}")

    # ----------------------------------------------------------------- hooks
    def hooks(self, entity: str) -> list[dict[str, Any]]:
        """Every hook registered on ``entity`` (``GET /<Entity>/Hooks``, paged)."""
        rows: list[dict[str, Any]] = []
        for page in self._pages(f"/{entity_spec(entity).collection}/Hooks"):
            rows.extend(page)
        return rows

    def create_hook(self, entity: str, hook: Mapping[str, Any]) -> int:
        """Register a hook (``TargetUrl``, ``EventType``, ``IsEnabled``, ``Filter``);
        returns its id. Not a record write: it is resent like any read."""
        path = f"/{entity_spec(entity).collection}/Hooks"
        response = self._send("POST", path, json_body=dict(hook))
        self._expect_ok(response, f"POST {path}")
        return int(self._json(response, f"POST {path}"))

    def update_hook(self, entity: str, id: int, hook: Mapping[str, Any]) -> None:
        """Replace one hook (``PUT /<Entity>/Hooks/{id}``)."""
        path = f"/{entity_spec(entity).collection}/Hooks/{int(id)}"
        response = self._send("PUT", path, json_body=dict(hook))
        self._expect_ok(response, f"PUT {path}")

    def delete_hook(self, entity: str, id: int) -> None:
        """Remove one hook; one that is already gone is fine."""
        path = f"/{entity_spec(entity).collection}/Hooks/{int(id)}"
        response = self._send("DELETE", path)
        if response.status_code == 404:
            return
        self._expect_ok(response, f"DELETE {path}")

    def probe_write(self, entity: str) -> None:
        """An empty bulk write (``PATCH []``): proves the write endpoint accepts this
        token without changing any data (used by ``shopsync check``)."""
        path = f"/{entity_spec(entity).collection}"
        response = self._send("PATCH", path, json_body=[])
        self._expect_ok(response, f"PATCH {path}")
