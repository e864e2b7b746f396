"""The shopsync command line as a user runs it: real processes, real servers.

Covers `sync` (incl. --dry-run, --only, --json), `status`, `links`, `problems`, `retry`,
`db upgrade`, clean errors for bad input, and that no secret reaches the output even at
debug log level.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shopsync.emulators.launch import RunningServer
from tests.conftest import AUTH_CODE, WEBSHOP_TOKEN


def shopsync(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shopsync", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def config(reset_emulator: RunningServer, reset_webshop: RunningServer, tmp_path: Path) -> Path:
    httpx.post(
        reset_emulator.url + "/_emulator/seed", json={"n": 12, "seed": 5}, timeout=60
    ).raise_for_status()
    httpx.post(
        reset_webshop.url + "/_webshop/seed", json={"n": 6, "seed": 5}, timeout=60
    ).raise_for_status()
    path = tmp_path / "shopsync.toml"
    path.write_text(
        f"""
[webcrm]
base_url = "{reset_emulator.url}"
rate_limit = 10000

[webshop]
base_url = "{reset_webshop.url}"

[state]
url = "sqlite:///{tmp_path / "state.sqlite"}"
""",
        encoding="utf-8",
    )
    return path


SECRETS = {"SHOPSYNC_WEBCRM_AUTH_CODE": AUTH_CODE, "SHOPSYNC_WEBSHOP_TOKEN": WEBSHOP_TOKEN}


def test_sync_status_links_problems_and_secrets(config: Path) -> None:
    plan = shopsync(
        "--log-level", "debug", "sync", "--config", str(config), "--dry-run", env=SECRETS
    )
    assert plan.returncode == 0, plan.stderr
    assert "dry run (nothing written)" in plan.stdout and "create" in plan.stdout
    status = shopsync("status", "--config", str(config), env=SECRETS)
    assert status.returncode == 0, status.stderr
    assert "recent runs" in status.stdout and "dry-run" not in status.stdout  # wrote nothing

    run = shopsync("--log-level", "debug", "sync", "--config", str(config), "--json", env=SECRETS)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout[run.stdout.index("{") :])
    assert report["writes"] > 0
    again = shopsync("sync", "--config", str(config), "--json", env=SECRETS)
    assert json.loads(again.stdout[again.stdout.index("{") :])["writes"] == 0

    for out in (plan, run, again):
        for secret in SECRETS.values():
            assert secret not in out.stdout and secret not in out.stderr

    links = shopsync("links", "customers", "--config", str(config), env=SECRETS)
    assert links.returncode == 0 and "cus_" in links.stdout
    one = shopsync("links", "customers", "1", "--config", str(config), env=SECRETS)
    assert one.returncode == 0, one.stderr
    assert "billing_address.city" in one.stdout
    missing = shopsync("links", "customers", "999999", "--config", str(config), env=SECRETS)
    assert missing.returncode == 1 and "no customers link" in missing.stderr

    problems = shopsync("problems", "--config", str(config), env=SECRETS)
    assert problems.returncode == 0
    retry = shopsync("retry", "--config", str(config), env=SECRETS)
    assert retry.returncode == 0, retry.stderr
    assert "re-queued 0" in retry.stdout

    only = shopsync("sync", "--config", str(config), "--only", "products", "--json", env=SECRETS)
    assert only.returncode == 0, only.stderr


def test_db_upgrade_and_refusing_a_newer_schema(tmp_path: Path) -> None:
    cfg = tmp_path / "shopsync.toml"
    cfg.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "s.sqlite"}"\n', encoding="utf-8")
    first = shopsync("db", "upgrade", "--config", str(cfg))
    assert first.returncode == 0 and "upgraded (empty) →" in first.stdout, first.stderr
    second = shopsync("db", "upgrade", "--config", str(cfg))
    assert "already at revision" in second.stdout
    import sqlite3

    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    newer = shopsync("status", "--config", str(cfg))
    assert newer.returncode == 2
    assert "does not know" in newer.stderr and "upgrade shopsync" in newer.stderr


def test_bad_input_gets_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "shopsync.toml"
    cfg.write_text('[webcrm]\nrate_limit = "fast"\n', encoding="utf-8")
    bad = shopsync("sync", "--config", str(cfg))
    assert bad.returncode == 2
    assert "rate_limit" in bad.stderr and "shopsync.toml" in bad.stderr and "line 2" in bad.stderr
    absent = shopsync("sync", "--config", str(tmp_path / "nope.toml"))
    assert absent.returncode == 2 and "shopsync init" in absent.stderr
    wrong_type = shopsync("links", "spaceships", "--config", str(cfg))
    assert wrong_type.returncode == 2 and "spaceships" in wrong_type.stderr
    level = shopsync("--log-level", "loud", "status", "--config", str(cfg))
    assert level.returncode == 2 and "loud" in level.stderr


def test_refused_application_token_says_how_to_reauthorise(config: Path) -> None:
    run = shopsync(
        "sync",
        "--config",
        str(config),
        env={**SECRETS, "SHOPSYNC_WEBCRM_AUTH_CODE": "wrong-token-123"},
    )
    assert run.returncode == 3  # credentials refused, as for `shopsync check`
    assert "re-authorise" in run.stderr
    assert "wrong-token-123" not in run.stderr + run.stdout


@pytest.mark.slow
def test_demo_runs_clean() -> None:
    demo = shopsync("demo", timeout=600)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "Demo finished" in demo.stdout
