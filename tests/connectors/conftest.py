"""Helpers for the connector tests: seed, faults and counters of the real servers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shopsync.connectors.webcrm.client import WebcrmClient
from shopsync.connectors.webcrm.ratelimit import SlidingWindowLimiter
from shopsync.emulators.launch import RunningServer
from tests.conftest import AUTH_CODE


def control(server: RunningServer, method: str, path: str, **body: Any) -> Any:
    response = httpx.request(
        method,
        server.url + server.controls_prefix + path,
        json=body if (body or method in ("PUT", "POST")) else None,
        timeout=120,
    )
    response.raise_for_status()
    return response.json()


def seed_organisations(server: RunningServer, n: int, seed: int = 1) -> None:
    control(server, "POST", "/seed", n=n, seed=seed, products=0, opportunities=0, reset=True)


def faults(server: RunningServer, **settings: Any) -> None:
    control(server, "PUT", "/faults", **settings)


def server_count(server: RunningServer, endpoint: str) -> int:
    counters = control(server, "GET", "/counters")["endpoints"]
    return int(counters.get(endpoint, 0))


def make_client(server: RunningServer, **kw: Any) -> WebcrmClient:
    """A client with its own limiter (tests must not share budgets through the registry)."""
    kw.setdefault("limiter", SlidingWindowLimiter(limit=kw.pop("rate_limit", 250)))
    kw.setdefault("backoff_max", 0.2)
    return WebcrmClient(server.url, kw.pop("auth_code", AUTH_CODE), **kw)


@pytest.fixture
def crm(reset_emulator: RunningServer) -> Iterator[RunningServer]:
    """The session emulator, empty, faults off; faults are switched off again afterwards."""
    yield reset_emulator
    faults(reset_emulator)
