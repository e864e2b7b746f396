"""``shopsync check-webshop`` against the reference server (SQLite, PostgreSQL) and a broken one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from shopsync.conformance.checks import (
    CHECKS,
    NOT_OFFERED,
    Check,
    check_batch_items,
    check_batch_orders,
    check_batch_refusals,
    check_cursor_stability,
    check_decimals,
    check_products,
    check_tombstones,
)
from shopsync.conformance.runner import Result, render, run_checks, summary
from shopsync.conformance.shop import CheckFailed, Shop
from shopsync.emulators.launch import RunningServer, free_port, start_webshop_server
from tests.conftest import WEBSHOP_TOKEN

EXAMPLES = 3
"""Schemathesis examples per operation in the tests (the command's default is 10)."""
BROKEN = Path(__file__).with_name("broken_shop.py")


def failures(results: list[Result]) -> dict[str, str]:
    return {r.name: r.detail for r in results if r.status == "fail"}


def assert_all_pass(results: list[Result]) -> None:
    assert failures(results) == {}
    assert len(results) == len(CHECKS) + 3  # the gate, the checks, two schemathesis passes
    assert [r.status for r in results].count("pass") == len(results)


def leftovers(url: str, token: str, since: str) -> list[str]:
    """Live records changed since ``since``: the suite must have deleted what it made."""
    headers = {"Authorization": f"Bearer {token}"}
    found = []
    for collection in ("customers", "products", "orders"):
        page = httpx.get(
            f"{url}/{collection}",
            params={"updated_since": since, "limit": "1000"},
            headers=headers,
            timeout=30,
        ).json()
        found += [f"{collection}/{r['id']}" for r in page["items"]]
    return found


def check_webshop(url: str, token: str, examples: int) -> subprocess.CompletedProcess[str]:
    """``shopsync check-webshop`` as a user runs it (a wide terminal, so rows stay whole)."""
    env = {
        **os.environ,
        "SHOPSYNC_CHECK_EXAMPLES": str(examples),
        "COLUMNS": "400",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "shopsync", "check-webshop", url, "--token", token],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def table_rows(out: str) -> dict[str, str]:
    return {line.split("│")[2].strip(): line for line in out.splitlines() if line.count("│") >= 5}


def test_check_webshop_passes_the_reference_server_on_sqlite(reset_webshop: RunningServer) -> None:
    marker = httpx.post(
        reset_webshop.url + "/customers",
        json={"name": "before the run"},
        headers={"Authorization": f"Bearer {WEBSHOP_TOKEN}"},
        timeout=30,
    ).json()
    done = check_webshop(reset_webshop.url, WEBSHOP_TOKEN, EXAMPLES)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = table_rows(done.stdout)
    assert len(rows) == len(CHECKS) + 3  # the gate, the checks, two schemathesis passes
    assert all("PASS" in row for row in rows.values()), done.stdout
    assert f"{len(rows)} passed, 0 failed, 0 skipped" in done.stdout
    assert "the shop conforms" in done.stdout
    assert WEBSHOP_TOKEN not in done.stdout
    # Everything the suite created is deleted again; the shop's own record is untouched.
    assert leftovers(reset_webshop.url, WEBSHOP_TOKEN, marker["updated_at"]) == [
        f"customers/{marker['id']}"
    ]


@pytest.mark.postgres
def test_reference_server_on_postgresql_passes(pg_url: str, tmp_path: Path) -> None:
    with start_webshop_server(pg_url, token="pg-token", log_path=tmp_path / "pg.log") as server:
        results = run_checks(server.url, "pg-token", examples=EXAMPLES)
    assert_all_pass(results)
    fuzz = [r.detail for r in results if r.name.startswith("schemathesis")]
    assert len(fuzz) == 2 and "2xx" in fuzz[0] and "(4xx: " in fuzz[1]


@pytest.fixture(scope="module")
def broken_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("broken")
    port = free_port()
    log = open(tmp_path / "broken.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, str(BROKEN), "--port", str(port), "--db", str(tmp_path / "b.sqlite"),
         "--token", "broken-token"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "broken.log").read_text()
            try:
                if httpx.get(url + "/_webshop/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the broken shop did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def breaking(url: str, *breaks: str) -> str:
    httpx.put(url + "/_broken", json={"breaks": list(breaks)}, timeout=30).raise_for_status()
    return url


def test_check_webshop_fails_a_broken_server_with_reasons(broken_server: str) -> None:
    broken_shop = breaking(broken_server, "idempotency", "if-match", "batch-atomic")
    done = check_webshop(broken_shop, "broken-token", 2)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    rows = table_rows(out)
    idem = rows["idempotent create (Idempotency-Key)"]
    assert "FAIL" in idem
    assert "same Idempotency-Key must return the first answer (201, customer" in idem
    conditional = rows["conditional update (If-Match → 412)"]
    assert "FAIL" in conditional and "expected 412" in conditional
    batch = rows["batch: per-item results in order, partial failure (optional)"]
    assert "FAIL" in batch and "items[0] of POST /customers/batch (create) answered 422" in batch
    # The rules the broken server still keeps pass.
    for name in ("customers: create, read, merge-patch, delete", "tombstones with include_deleted",
                 "cursor paging stable while records change"):  # fmt: skip
        assert "PASS" in rows[name], rows[name]
    assert "failed" in out.splitlines()[-1] and "does not conform" in out
    assert "broken-token" not in out


@pytest.mark.parametrize(
    ("breaks", "check", "reason"),
    [
        (("cursor",), check_cursor_stability, "must be listed again later (seen 1×)"),
        (("tombstones",), check_tombstones, "must list once with include_deleted=true, found 0"),
        (("floats",), check_decimals, "decimals must be JSON strings"),
        (("floats",), check_products, "was sent as '1249.5' but came back as 1249.5"),
        (("batch-atomic",), check_batch_items, "(create) answered 422, expected 201"),
        (("batch-atomic",), check_batch_orders, "(an order with two lines) answered 422"),
        (("batch-keys",), check_batch_items, "(the same key and body again) answered 409"),
        (
            ("batch-keys",),
            check_batch_orders,
            "(the first create again (same key, same body)) answered 409",
        ),
        ((), check_cursor_stability, None),
        ((), check_batch_items, None),
        ((), check_batch_orders, None),
        ((), check_batch_refusals, None),
    ],
)
def test_each_broken_rule_is_caught_with_its_reason(
    broken_server: str, breaks: tuple[str, ...], check: Check, reason: str | None
) -> None:
    shop = Shop(breaking(broken_server, *breaks), "broken-token")
    try:
        if reason is None:  # the control: with nothing broken, the same check passes
            check(shop)
            return
        with pytest.raises(CheckFailed) as failed:
            check(shop)
        assert reason in str(failed.value)
    finally:
        breaking(broken_server)
        shop.cleanup()
        shop.close()


@pytest.mark.parametrize(
    "settings", [{"enabled": False}, {"capabilities": False}], ids=["no batch", "no capabilities"]
)
def test_batch_rows_pass_as_not_offered_without_batches(
    reset_webshop: RunningServer, settings: dict[str, bool]
) -> None:
    httpx.put(reset_webshop.url + "/_webshop/batch", json=settings, timeout=30).raise_for_status()
    shop = Shop(reset_webshop.url, WEBSHOP_TOKEN)
    try:
        for check in (check_batch_items, check_batch_orders, check_batch_refusals):
            assert check(shop) == NOT_OFFERED
        assert shop.created == []  # nothing was tried
    finally:
        shop.close()


def test_a_small_max_items_splits_the_batches(reset_webshop: RunningServer) -> None:
    httpx.put(reset_webshop.url + "/_webshop/batch", json={"max_items": 1}, timeout=30)
    shop = Shop(reset_webshop.url, WEBSHOP_TOKEN)
    try:  # max_items 1: every batch goes one item at a time, and still passes
        assert "max_items 1" in check_batch_items(shop)
        assert "2 items (max_items + 1)" in check_batch_refusals(shop)
    finally:
        shop.cleanup()
        shop.close()


def test_the_table_and_summary_read_well() -> None:
    results = [
        Result("a check", "pass", "fine", 0.1),
        Result("another", "fail", "expected 412: PATCH /customers/x → 200 {}", 0.2),
        Result("optional", "skip", "not implemented", 0.0),
    ]
    console = Console(record=True, width=160, color_system=None)
    render(results, "http://shop.test", console)
    text = console.export_text()
    assert "PASS" in text and "FAIL" in text and "SKIP" in text and "expected 412" in text
    assert summary(results) == "1 passed, 1 failed, 1 skipped"


def test_unreachable_server_fails_once_and_skips_the_rest() -> None:
    results = run_checks(f"http://127.0.0.1:{free_port()}", "t", examples=1)
    assert results[0].status == "fail" and "no answer" in results[0].detail
    assert {r.status for r in results[1:]} == {"skip"}
