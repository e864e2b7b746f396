"""The ``/_emulator`` controls: counters, fault switches, seeding, reset, host check."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import HTTPException
from starlette.requests import Request

from shopsync.emulators.common.controls import require_local
from shopsync.emulators.launch import RunningServer

from .conftest import seed


@pytest.fixture
def faults(crm: httpx.Client, reset_emulator: RunningServer) -> Iterator[str]:
    url = reset_emulator.url + "/_emulator/faults"
    yield url
    httpx.put(url, json={}, timeout=30).raise_for_status()


def test_counters_fold_ids_per_endpoint(crm: httpx.Client, reset_emulator: RunningServer) -> None:
    seed(reset_emulator.url, 5)
    httpx.delete(reset_emulator.url + "/_emulator/counters", timeout=30).raise_for_status()
    for i in (1, 2, 3):
        crm.get(f"/Organisations/{i}")
    crm.get("/Organisations")
    crm.get("/Queries", params={"script": "SELECT * FROM Product"})
    counts = httpx.get(reset_emulator.url + "/_emulator/counters", timeout=30).json()
    assert counts["endpoints"] == {
        "GET /Organisations/{id}": 3,
        "GET /Organisations": 1,
        "GET /Queries": 1,
    }
    assert counts["total"] == 5
    timing = crm.get("/Organisations").headers["server-timing"]
    assert timing.startswith("app;dur=") and float(timing.split("=")[1]) >= 0


def test_error_rate_latency_forced_429_and_drops(crm: httpx.Client, faults: str) -> None:
    httpx.put(faults, json={"error_rate": 1.0, "seed": 3}, timeout=30).raise_for_status()
    codes = {crm.get("/Organisations").status_code for _ in range(12)}
    assert codes <= {500, 503} and codes

    httpx.put(faults, json={"force_429": 2, "retry_after": 7}, timeout=30).raise_for_status()
    for _ in range(2):
        r = crm.get("/Organisations")
        assert r.status_code == 429 and r.headers["Retry-After"] == "7"
        assert r.json()["RetryAfterSeconds"] == 7
        assert r.json()["Type"] == "TooManyRequestsException"
    assert crm.get("/Organisations").status_code == 200

    httpx.put(faults, json={"drop_rate": 1.0}, timeout=30).raise_for_status()
    with pytest.raises(httpx.TransportError):
        crm.get("/Organisations")

    httpx.put(faults, json={"latency_ms": 300}, timeout=30).raise_for_status()
    r = crm.get("/Organisations")
    assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.3


def test_faulted_requests_change_nothing(crm: httpx.Client, faults: str) -> None:
    httpx.put(faults, json={"error_rate": 1.0}, timeout=30).raise_for_status()
    assert crm.post("/Organisations", json={"OrganisationName": "x"}).status_code in (500, 503)
    httpx.put(faults, json={}, timeout=30).raise_for_status()
    assert crm.get("/Organisations").json() == []


def test_seed_and_reset(crm: httpx.Client, reset_emulator: RunningServer) -> None:
    url = reset_emulator.url
    body = seed(url, 12, products=4, opportunities=6)
    assert body["organisations"] == 12 and body["products"] == 4 and body["opportunities"] == 6
    stats = httpx.get(url + "/_emulator/stats", timeout=30).json()
    assert stats["Organisation"] == 12 and stats["QuotationLine"] == body["quotation_lines"]
    more = httpx.post(url + "/_emulator/seed", json={"n": 3, "reset": False, "products": 0,
                                                    "opportunities": 0}, timeout=30).json()  # fmt: skip
    assert more["organisations"] == 3
    assert httpx.get(url + "/_emulator/stats", timeout=30).json()["Organisation"] == 15
    bad = httpx.post(url + "/_emulator/seed", json={"n": 1, "line_sku_field": "Nope"}, timeout=30)
    assert bad.status_code == 400 and "line_sku_field" in bad.json()["Message"]
    negative = httpx.post(url + "/_emulator/seed", json={"n": -1}, timeout=30)
    assert negative.status_code == 400 and "n (body)" in negative.json()["Message"]
    httpx.post(url + "/_emulator/reset", timeout=30).raise_for_status()
    assert set(httpx.get(url + "/_emulator/stats", timeout=30).json().values()) == {0}
    # Ids start again at 1 after a reset.
    assert crm.post("/Organisations", json={"OrganisationName": "a"}).json() == 1


def _request(client: str, server: str, host_header: str) -> Request:
    scope = {
        "type": "http", "method": "POST", "path": "/_emulator/reset", "query_string": b"",
        "headers": [(b"host", host_header.encode())], "client": (client, 5555),
        "server": (server, 8081), "scheme": "http",
    }  # fmt: skip
    return Request(scope)


def test_controls_answer_only_callers_on_the_servers_own_host() -> None:
    require_local(_request("127.0.0.1", "127.0.0.1", "127.0.0.1:8081"))
    require_local(_request("10.1.2.3", "10.1.2.3", "10.1.2.3:8081"))  # bound to that address
    with pytest.raises(HTTPException) as info:
        require_local(_request("10.9.9.9", "10.1.2.3", "10.1.2.3:8081"))
    assert info.value.status_code == 403
    # The Host header is the caller's choice and must not let a remote caller in.
    with pytest.raises(HTTPException):
        require_local(_request("10.9.9.9", "10.1.2.3", "10.9.9.9"))
