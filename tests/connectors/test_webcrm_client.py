"""The webCRM client over real HTTP against the emulator process.

Covers the issue's list: request counts of full reads, incremental reads with overlap
and keyset paging, token expiry mid-read, 429 storms, 5xx and dropped connections,
PATCH partial failures, and escaping in ``/Queries``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from shopsync.connectors.webcrm.client import (
    REAUTHORISE_HINT,
    WebcrmAuthError,
    WebcrmClient,
    WebcrmError,
    WebcrmRecordError,
    WebcrmUnavailable,
)
from shopsync.connectors.webcrm.queries import build_select, eq, parse_timestamp
from shopsync.connectors.webcrm.ratelimit import SlidingWindowLimiter, Slot
from shopsync.emulators.launch import RunningServer, free_port, start_webcrm_emulator
from tests.conftest import AUTH_CODE
from tests.connectors.conftest import (
    control,
    faults,
    make_client,
    seed_organisations,
    server_count,
)


def ids(pages: list[list[dict[str, object]]], field: str = "OrganisationId") -> list[int]:
    return [int(str(row[field])) for page in pages for row in page]


# --------------------------------------------------------------------------- full reads
@pytest.mark.parametrize(("page_size", "expected"), [(1000, 2), (700, 3), (500, 4)])
def test_full_read_costs_the_floor(crm: RunningServer, page_size: int, expected: int) -> None:
    """⌈1500/page⌉ GETs, one more only when 1500 is an exact multiple (500 → 3 + 1)."""
    seed_organisations(crm, 1500)
    control(crm, "DELETE", "/counters")
    with make_client(crm, page_size=page_size) as client:
        pages = list(client.iter_all("Organisation"))
        assert sorted(ids(pages)) == list(range(1, 1501))
        assert client.requests_by_endpoint["GET /Organisations"] == expected
        assert expected == math.ceil(1500 / page_size) + (1500 % page_size == 0)
        assert client.responses_429 == 0
    assert server_count(crm, "GET /Organisations") == expected


# --------------------------------------------------------------------------- incremental
def test_updated_since_none_reads_everything_in_change_order(crm: RunningServer) -> None:
    seed_organisations(crm, 1200)
    with make_client(crm, page_size=500) as client:
        pages = list(client.iter_updated_since("Organisation", None))
        rows = [r for p in pages for r in p]
        assert len(rows) == 1200
        keys = [(r["OrganisationUpdatedAt"], r["OrganisationId"]) for r in rows]
        assert keys == sorted(keys)
        assert client.requests_by_endpoint["GET /Queries"] == 3


def test_updated_since_returns_changes_and_dedups_the_overlap(crm: RunningServer) -> None:
    seed_organisations(crm, 300)
    with make_client(crm, page_size=100, overlap_seconds=3600) as client:
        first = [r for p in client.iter_updated_since("Organisation", None) for r in p]
        last_seen = max(parse_timestamp(str(r["OrganisationUpdatedAt"])) for r in first)
        results = client.upsert(
            "Organisation",
            [{"OrganisationId": i, "OrganisationCity": f"City {i}"} for i in (5, 150, 299)],
        )
        assert all(r.ok for r in results)
        # The one-hour overlap re-reads all 300; what the caller already holds is skipped.
        known = {(int(r["OrganisationId"]), str(r["OrganisationUpdatedAt"])) for r in first}
        changed = [
            r
            for p in client.iter_updated_since("Organisation", last_seen, already_seen=known)
            for r in p
        ]
        assert [r["OrganisationId"] for r in changed] == [5, 150, 299]
        assert [r["OrganisationCity"] for r in changed] == ["City 5", "City 150", "City 299"]
        # Without that knowledge the overlap brings everything back, each row once.
        again = [r for p in client.iter_updated_since("Organisation", last_seen) for r in p]
        assert len(again) == 300
        assert len({r["OrganisationId"] for r in again}) == 300


def test_rows_updated_during_the_read_are_not_skipped(crm: RunningServer) -> None:
    """Keyset paging: a row that changes mid-read moves behind the cursor and comes
    again; with Page=n paging the rows after it would shift and one would be missed."""
    seed_organisations(crm, 250)
    with make_client(crm, page_size=100) as client, make_client(crm) as writer:
        seen: list[int] = []
        for n, page in enumerate(client.iter_updated_since("Organisation", None)):
            seen += [int(r["OrganisationId"]) for r in page]
            if n == 0:  # move an already-read row and a not-yet-read row to the end
                assert all(
                    r.ok
                    for r in writer.upsert(
                        "Organisation",
                        [
                            {"OrganisationId": 10, "OrganisationCity": "moved"},
                            {"OrganisationId": 150, "OrganisationCity": "moved"},
                        ],
                    )
                )
        assert set(seen) == set(range(1, 251))
        assert seen.count(10) == 2  # read before and after its change
        assert seen.count(150) == 1  # read once, in its new place
        assert seen[-2:] == [10, 150]


# --------------------------------------------------------------------------- auth
def test_token_expired_mid_read_is_refreshed_once(crm: RunningServer) -> None:
    seed_organisations(crm, 500)
    with make_client(crm, page_size=100) as client:
        seen: list[int] = []
        for n, page in enumerate(client.iter_all("Organisation")):
            seen += [int(r["OrganisationId"]) for r in page]
            if n == 1:
                assert control(crm, "POST", "/expire-tokens")["expired"] >= 1
        assert seen == list(range(1, 501))
        assert client.responses_401 == 1
        assert client.requests_by_endpoint["POST /Auth/ApiRefresh"] == 1
        assert client.requests_by_endpoint["POST /Auth/ApiLogin"] == 1


class SimulatedTime:
    """A clock only the test moves (the client's, the simulated network's, a limiter's)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SlowWebcrm(httpx.BaseTransport):
    """The emulator over real HTTP, timed by a :class:`SimulatedTime`, so that a verdict
    about token lifetimes never depends on how fast the machine is.

    Every request takes ``latency`` simulated seconds, and webCRM checks its token when
    it arrives, halfway. Access tokens live ``ttl`` simulated seconds from then (the
    ``ExpiresIn`` the client is told). A request whose token has expired when it arrives
    is answered by the emulator's own 401: its tokens are expired (``/expire-tokens``)
    just before the request is passed on, and the request is listed in ``late``.
    """

    def __init__(self, server: RunningServer, clock: SimulatedTime, *, ttl: float,
                 latency: float, inner: httpx.HTTPTransport | None = None) -> None:  # fmt: skip
        self.server, self.clock, self.ttl, self.latency = server, clock, ttl, latency
        self.inner = inner or httpx.HTTPTransport()
        self.owns_inner = inner is None
        self.issued: dict[str, float] = {}
        """Access token → simulated time webCRM issued it."""
        self.late: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.clock.advance(self.latency / 2)
        arrived = self.clock()
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme == "Bearer" and arrived >= self.issued[token] + self.ttl:
            self.late.append(f"{request.method} {request.url.path}")
            control(self.server, "POST", "/expire-tokens")
        response = self.inner.handle_request(request)
        if request.url.path in ("/Auth/ApiLogin", "/Auth/ApiRefresh"):
            body = json.loads(response.read())
            if body.get("AccessToken"):
                self.issued[body["AccessToken"]] = arrived
                body["ExpiresIn"] = self.ttl
            response = httpx.Response(response.status_code, json=body, request=request)
        self.clock.advance(self.latency / 2)
        return response

    def close(self) -> None:
        if self.owns_inner:
            self.inner.close()


class SimulatedLimiter(SlidingWindowLimiter):
    """The client's limiter on a :class:`SimulatedTime`: its waits move the clock."""

    def acquire(self, sleep: Callable[[float], None] | None = None) -> Slot:
        assert isinstance(self.clock, SimulatedTime)
        return super().acquire(sleep=self.clock.advance)


def test_token_is_refreshed_before_it_expires(crm: RunningServer) -> None:
    """Tokens living 2 s and requests taking 0.25 s (longer than a tenth of a token's
    life): whenever in a token's life the next request comes, it reaches webCRM with a
    valid token. Simulated time, swept in 20 ms steps: the same verdict on any machine."""
    seed_organisations(crm, 1)
    refreshed = 0
    with httpx.HTTPTransport() as connections:  # one connection for the whole sweep
        for step in range(111):
            pause = step * 0.02  # 0 … 2.2 s: every moment of the token's life, and past it
            clock = SimulatedTime()
            network = SlowWebcrm(crm, clock, ttl=2.0, latency=0.25, inner=connections)
            with make_client(crm, clock=clock, transport=network) as client:
                assert client.get("Organisation", 1) is not None  # logs in first
                clock.advance(pause)
                assert client.get("Organisation", 1) is not None
            assert network.late == [], f"after a pause of {pause:.2f} s"
            assert client.responses_401 == 0, f"after a pause of {pause:.2f} s"
            refreshed += client.requests_by_endpoint["POST /Auth/ApiRefresh"]
    assert refreshed > 0


def test_token_is_checked_after_the_rate_limiters_wait(crm: RunningServer) -> None:
    """Under load the limiter holds a request back for up to a minute; a token that was
    fresh enough before that wait is not sent after it once it has expired."""
    seed_organisations(crm, 200)
    clock = SimulatedTime()
    network = SlowWebcrm(crm, clock, ttl=90.0, latency=0.25)
    limiter = SimulatedLimiter(limit=4, window=60.0, clock=clock)
    started = clock()
    with make_client(crm, page_size=10, clock=clock, transport=network, limiter=limiter) as client:
        rows = [r for p in client.iter_all("Organisation") for r in p]
    assert len(rows) == 200
    assert clock() - started > 3 * 90.0  # several tokens, each outlived by a wait
    assert network.late == []
    assert client.responses_401 == 0
    assert client.requests_by_endpoint["POST /Auth/ApiRefresh"] >= 3


def test_refused_application_token_says_how_to_reauthorise(crm: RunningServer) -> None:
    secret = "wrong-application-token-0000"
    with make_client(crm, auth_code=secret) as client, pytest.raises(WebcrmAuthError) as info:
        client.count("Product")
    assert REAUTHORISE_HINT in str(info.value)
    assert secret not in str(info.value)
    assert secret not in repr(client)


# --------------------------------------------------------------------------- pace, 429
def test_429_storm_is_waited_out(crm: RunningServer) -> None:
    seed_organisations(crm, 300)
    faults(crm, force_429=3, retry_after=1)
    with make_client(crm, page_size=100) as client:
        started = time.monotonic()
        rows = [r for p in client.iter_all("Organisation") for r in p]
        elapsed = time.monotonic() - started
    assert len(rows) == 300
    assert client.responses_429 == 3
    assert elapsed >= 2.9  # three Retry-After: 1 honoured in turn


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A second emulator, for rate limits switched per test (its tokens live an hour)."""
    path = tmp_path_factory.mktemp("limited") / "e.sqlite"
    with start_webcrm_emulator(path, auth_code=AUTH_CODE, rate_limit=0) as server:
        yield server


def test_client_spends_the_servers_budget_and_no_more(limited: RunningServer) -> None:
    """Server limit 12/60 s; the client (limit 12, counting its login too) sends what the
    window allows, then holds back instead of drawing a 429."""
    seed_organisations(limited, 30)
    control(limited, "PUT", "/rate-limit", limit=12)
    try:
        started = time.monotonic()
        with make_client(limited, rate_limit=12, page_size=1) as client:
            pages = client.iter_all("Organisation")
            read = 0
            while client.rate_headroom() > 0:
                next(pages)
                read += 1
            assert client.requests_made == 12
            assert read == 12 - client.requests_by_endpoint["POST /Auth/ApiLogin"]
            assert client.responses_401 == client.responses_429 == 0
            # The next request waits until the first answer leaves the window: that
            # answer came after `started`, so at least a window (60.5 s) from then.
            now = time.monotonic()
            assert client.limiter._wait_time(now) >= started + 60.5 - now
    finally:
        control(limited, "PUT", "/rate-limit", limit=0)


# --------------------------------------------------------------------------- failures
def test_5xx_and_dropped_connections_are_retried(crm: RunningServer) -> None:
    seed_organisations(crm, 1000)
    faults(crm, error_rate=0.3, drop_rate=0.15, seed=11)
    with make_client(crm, page_size=100, max_retries=10) as client:
        rows = [r for p in client.iter_all("Organisation") for r in p]
        assert sorted(int(r["OrganisationId"]) for r in rows) == list(range(1, 1001))
        assert client.retries > 0
        results = client.upsert(
            "Organisation", [{"OrganisationName": f"Retry {i}"} for i in range(40)]
        )
        assert all(r.ok for r in results)
    faults(crm)
    with make_client(crm) as client:
        assert client.count("Organisation") == 1040  # faults hit before any write


def test_persistent_failure_gives_up_with_a_clear_error(crm: RunningServer) -> None:
    faults(crm, error_rate=1.0)
    with make_client(crm, max_retries=2) as client, pytest.raises(WebcrmUnavailable) as info:
        client.count("Product")
    assert "after 3 attempts" in str(info.value)
    assert AUTH_CODE not in str(info.value)


def test_unreachable_host() -> None:
    client = WebcrmClient(
        f"http://crmuser:CRMPASSWORD@127.0.0.1:{free_port()}", AUTH_CODE, max_retries=1,
        backoff_max=0.1, limiter=SlidingWindowLimiter(limit=10),
    )  # fmt: skip
    with client, pytest.raises(WebcrmUnavailable, match="cannot reach webCRM") as info:
        client.login()
    assert "CRMPASSWORD" not in str(info.value) and "crmuser:***@" in str(info.value)


# --------------------------------------------------------------------------- writes
def test_patch_maps_each_result_back_to_its_record(crm: RunningServer) -> None:
    seed_organisations(crm, 3)
    records: list[dict[str, object]] = [
        {"OrganisationName": "Alpha"},
        {"OrganisationName": "x" * 201},  # too long
        {"OrganisationId": 2, "OrganisationCity": "Aarhus"},  # update
        {"OrganisationId": 999, "OrganisationCity": "Nowhere"},  # no such record
        {"OrganisationId": 0, "OrganisationName": "Beta"},  # id 0 = insert
    ]
    with make_client(crm, batch_size=2) as client:
        results = client.upsert("Organisation", records)
        assert [r.index for r in results] == [0, 1, 2, 3, 4]
        assert [r.ok for r in results] == [True, False, True, False, True]
        assert "OrganisationName" in str(results[1].error)
        assert results[2].id == 2
        assert client.requests_by_endpoint["PATCH /Organisations"] == 3
        alpha, beta = results[0].id, results[4].id
        assert alpha is not None and beta is not None
        assert client.get("Organisation", alpha)["OrganisationName"] == "Alpha"  # type: ignore[index]
        assert client.get("Organisation", beta)["OrganisationName"] == "Beta"  # type: ignore[index]
        assert client.get("Organisation", 2)["OrganisationCity"] == "Aarhus"  # type: ignore[index]
        assert client.get("Organisation", 999) is None


def test_batch_refused_as_a_whole_is_split(crm: RunningServer) -> None:
    """The emulator takes at most 1000 records per PATCH; a 1200-record batch is refused
    with 400 and the client splits it instead of failing every record."""
    with make_client(crm, batch_size=1200) as client:
        results = client.upsert("Product", [{"ProductCustom1": f"S{i}"} for i in range(1200)])
        assert all(r.ok for r in results)
        assert len({r.id for r in results}) == 1200
        assert client.requests_by_endpoint["PATCH /Products"] == 3
        assert client.count("Product") == 1200


def test_create_get_delete(crm: RunningServer) -> None:
    with make_client(crm) as client:
        pid = client.create("Product", {"ProductCustom1": "SKU-1", "ProductPrice": 10.5})
        assert client.get("Product", pid)["ProductPrice"] == 10.5  # type: ignore[index]
        client.delete("Product", pid)
        client.delete("Product", pid)  # already gone: fine
        assert client.get("Product", pid) is None
        with pytest.raises(WebcrmError, match="cannot delete Organisations"):
            client.delete("Organisation", 1)
        with pytest.raises(WebcrmRecordError, match="OrganisationName"):
            client.create("Organisation", {"OrganisationName": "y" * 300})


def test_quotation_lines_of_an_opportunity(crm: RunningServer) -> None:
    control(crm, "POST", "/seed", n=20, seed=3, products=5, opportunities=4, reset=True)
    with make_client(crm, page_size=2) as client:
        opp = next(iter(client.iter_all("Opportunity")))[0]
        lines = client.quotation_lines_of(int(opp["OpportunityId"]))
        everything = [r for p in client.iter_all("QuotationLine") for r in p]
        expected = [
            r for r in everything if r["QuotationLineOpportunityId"] == opp["OpportunityId"]
        ]
        assert lines == expected and lines


# --------------------------------------------------------------------------- escaping
NASTY = [
    "O'Brien & Søn",
    "x' OR 1=1 --",
    "a'; DELETE FROM Organisation; --",
    "back\\slash\\",
    "quote at end'",
    "'",
    "N'unicode' æøå",
    "/* comment */ ORDER BY 1",
]


def test_queries_escape_every_value(crm: RunningServer) -> None:
    seed_organisations(crm, 5)
    with make_client(crm) as client:
        results = client.upsert("Organisation", [{"OrganisationName": n} for n in NASTY])
        assert all(r.ok for r in results)
        for name, result in zip(NASTY, results, strict=True):
            script = build_select(
                "Organisation", where=eq("Organisation", "OrganisationName", name)
            )
            rows = [r for p in client.iter_query(script) for r in p]
            assert [r["OrganisationId"] for r in rows] == [result.id], name
        assert client.count("Organisation") == 5 + len(NASTY)


def test_since_must_be_aware(crm: RunningServer) -> None:
    with make_client(crm) as client, pytest.raises(ValueError, match="time zone"):
        list(client.iter_updated_since("Organisation", datetime(2026, 1, 1)))


def test_parse_timestamp() -> None:
    expected = datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert parse_timestamp("2026-05-01T10:00:00.123456Z") == expected
    assert parse_timestamp("2026-05-01T10:00:00.1234567") == expected
    assert parse_timestamp("2026-05-01T12:00:00.123456+02:00") == expected


def test_overlap_start_is_bounded_by_settled_and_never_passes_since() -> None:
    from datetime import UTC, datetime, timedelta

    from shopsync.connectors.webcrm.client import overlap_start

    t = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    five = timedelta(seconds=5)
    assert overlap_start(None, five, t) is None
    assert overlap_start(t, five, None) == t - five
    assert overlap_start(t, five, t - timedelta(seconds=60)) == t - five  # not settled yet
    assert overlap_start(t, five, t - timedelta(seconds=2)) == t - timedelta(seconds=2)
    assert overlap_start(t, five, t + timedelta(hours=1)) == t  # never past the cursor
