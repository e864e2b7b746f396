"""Tokens (401, expiry, refresh) and the rate limit (429), against an emulator process
started with ``--rate-limit 5 --token-ttl 2``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from shopsync.emulators.launch import RunningServer, start_webcrm_emulator
from shopsync.emulators.webcrm import ratelimit as emulator_ratelimit
from shopsync.emulators.webcrm.ratelimit import RateLimiter

from .conftest import AUTH_CODE, login

LIMIT = 5
TTL = 2


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    d: Path = tmp_path_factory.mktemp("strict")
    with start_webcrm_emulator(
        d / "strict.sqlite",
        auth_code=AUTH_CODE,
        rate_limit=LIMIT,
        token_ttl=TTL,
        log_path=d / "strict.log",
    ) as server:
        yield server


@pytest.fixture
def fresh(strict: RunningServer) -> RunningServer:
    """Empty windows and the configured limit for each test."""
    r = httpx.put(strict.url + "/_emulator/rate-limit", json={"limit": LIMIT}, timeout=30)
    assert r.status_code == 200 and r.json()["limit"] == LIMIT
    return strict


def _get(url: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(url + "/Organisations", headers=headers, timeout=30)


def _token(url: str) -> str:
    """A new access token per request: tokens live only TTL seconds here, and logins
    are not counted, so this keeps slow (loaded) test machines from seeing 401s."""
    token: str = login(url)["AccessToken"]
    return token


def test_missing_wrong_or_malformed_token_gets_401(fresh: RunningServer) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic " + login(fresh.url)["AccessToken"]},
        {"Authorization": "Bearer"},
    ):
        r = httpx.get(fresh.url + "/Organisations", headers=headers, timeout=30)
        assert r.status_code == 401, headers
        assert r.json()["Message"] == "Authorization has been denied for this request."
        assert r.headers["WWW-Authenticate"] == "Bearer"
    # Unauthenticated calls do not use up the application's quota.
    assert all(_get(fresh.url, _token(fresh.url)).status_code == 200 for _ in range(LIMIT))


def test_wrong_auth_code_is_an_error_token_answer(fresh: RunningServer) -> None:
    for data in ({"authCode": "nope"}, {}):
        r = httpx.post(fresh.url + "/Auth/ApiLogin", data=data, timeout=30)
        assert r.status_code == 401
        body = r.json()
        assert body["IsError"] is True and body["AccessToken"] is None and body["Error"]
        assert AUTH_CODE not in r.text


def test_access_tokens_expire_and_refresh_gives_a_new_pair(fresh: RunningServer) -> None:
    first = login(fresh.url)
    assert first["ExpiresIn"] == TTL
    assert _get(fresh.url, first["AccessToken"]).status_code == 200
    time.sleep(TTL + 0.3)
    assert _get(fresh.url, first["AccessToken"]).status_code == 401

    r = httpx.post(
        fresh.url + "/Auth/ApiRefresh", headers={"refreshToken": first["RefreshToken"]}, timeout=30
    )
    assert r.status_code == 200 and r.json()["IsError"] is False
    second = r.json()
    assert _get(fresh.url, second["AccessToken"]).status_code == 200
    # The spent refresh token is refused; the new one works (here sent as a form field).
    again = httpx.post(
        fresh.url + "/Auth/ApiRefresh",
        headers={"refreshToken": first["RefreshToken"]},
        timeout=30,
    )
    assert again.status_code == 401 and again.json()["IsError"] is True
    third = httpx.post(
        fresh.url + "/Auth/ApiRefresh",
        data={"refreshToken": second["RefreshToken"]},
        timeout=30,
    )
    assert (
        third.status_code == 200 and _get(fresh.url, third.json()["AccessToken"]).status_code == 200
    )


def test_expire_tokens_control(fresh: RunningServer) -> None:
    token = login(fresh.url)["AccessToken"]
    assert _get(fresh.url, token).status_code == 200
    assert httpx.post(fresh.url + "/_emulator/expire-tokens", timeout=30).json()["expired"] >= 1
    assert _get(fresh.url, token).status_code == 401


def test_auth_code_control_revokes_every_token_and_restores_the_configured_code(
    fresh: RunningServer,
) -> None:
    control = fresh.url + "/_emulator/auth-code"
    first = login(fresh.url)
    other = "another-application-token"
    assert httpx.put(control, json={"auth_code": other}, timeout=30).status_code == 200
    try:
        assert _get(fresh.url, first["AccessToken"]).status_code == 401  # revoked
        refreshed = httpx.post(
            fresh.url + "/Auth/ApiRefresh",
            headers={"refreshToken": first["RefreshToken"]},
            timeout=30,
        )
        assert refreshed.status_code == 401  # refresh tokens too
        old = httpx.post(fresh.url + "/Auth/ApiLogin", data={"authCode": AUTH_CODE}, timeout=30)
        assert old.status_code == 401
        assert _get(fresh.url, login(fresh.url, other)["AccessToken"]).status_code == 200
        bad = httpx.put(control, json={"auth_code": ""}, timeout=30)
        assert bad.status_code == 400  # the emulator answers validation errors as webCRM: 400
    finally:
        assert httpx.put(control, json={"auth_code": None}, timeout=30).status_code == 200
    assert _get(fresh.url, _token(fresh.url)).status_code == 200
    # reset accepts the configured code again, too
    httpx.put(control, json={"auth_code": other}, timeout=30)
    httpx.post(fresh.url + "/_emulator/reset", timeout=30).raise_for_status()
    assert _get(fresh.url, _token(fresh.url)).status_code == 200


def test_rate_limit_is_shared_by_all_tokens_of_an_application(fresh: RunningServer) -> None:
    answers = [_get(fresh.url, _token(fresh.url)).status_code for _ in range(LIMIT)]
    assert answers == [200] * LIMIT
    for _ in range(3):
        r = _get(fresh.url, _token(fresh.url))
        assert r.status_code == 429
        retry = int(r.headers["Retry-After"])
        assert 1 <= retry <= 60
        body = r.json()
        assert body == {
            "RetryAfterSeconds": retry,
            "Message": f"API calls quota exceeded! maximum admitted {LIMIT} per 1m.",
            "Type": "TooManyRequestsException",
        }
    # The auth endpoints and the controls are outside the limit.
    assert (
        httpx.post(
            fresh.url + "/Auth/ApiLogin", data={"authCode": AUTH_CODE}, timeout=30
        ).status_code
        == 200
    )
    assert httpx.get(fresh.url + "/_emulator/counters", timeout=30).status_code == 200
    # Every kind of API call counts: a write is refused too.
    r = httpx.post(
        fresh.url + "/Organisations",
        json={"OrganisationName": "x"},
        headers={"Authorization": f"Bearer {_token(fresh.url)}"},
        timeout=30,
    )
    assert r.status_code == 429


def test_sliding_window_frees_places_as_requests_age(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit level with a short window, on a simulated clock: a refused request takes no
    place in it."""
    now = [100.0]
    monkeypatch.setattr(emulator_ratelimit, "time", SimpleNamespace(monotonic=lambda: now[0]))
    limiter = RateLimiter(3, window=0.4)
    assert [limiter.acquire("a") for _ in range(3)] == [None, None, None]
    assert limiter.acquire("a") == 1  # refused; Retry-After never below 1 s
    assert limiter.acquire("b") is None  # another application has its own window
    for _ in range(20):
        now[0] += 0.01
        assert limiter.acquire("a") is not None  # hammering while limited ...
    now[0] = 100.39
    assert limiter.acquire("a") is not None
    now[0] = 100.4  # ... does not extend the wait: the first three have aged out
    assert [limiter.acquire("a") for _ in range(3)] == [None, None, None]
    assert limiter.acquire("a") is not None
    assert limiter.used("a") == 3
    off = RateLimiter(0)
    assert all(off.acquire("a") is None for _ in range(1000))
