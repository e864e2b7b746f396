"""One sync at a time, with real processes (issue 8): a run longer than its lease keeps
the lock, a second sync beside it refuses cleanly (also when the first one's lease was
moved into the past), and two syncs started together never duplicate anything."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from shopsync.store import repo
from shopsync.store.models import Lock
from tests.engine.conftest import Env
from tests.engine.test_crash import assert_consistent, converge, seed, write_config

LEASE = 1.0


def _config(env: Env, tmp_path: Path) -> Path:
    config = tmp_path / "shopsync.toml"
    write_config(config, env.crm_server, env.shop_server, env.inst.config.state.url or "")
    with config.open("a", encoding="utf-8") as f:
        f.write(f"lock_lease_seconds = {LEASE}\n")  # [state] is the last table
    return config


def _sync(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shopsync", "sync", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _holder(env: Env) -> str | None:
    with env.inst.session() as s:
        return repo.lock_owner(s, "sync")


def _refused(proc: subprocess.Popen[str]) -> None:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (proc.returncode, out, err)
    assert "holds the 'sync' lock" in err or "is writing the state database" in err, err
    assert "Traceback" not in err and len(err.splitlines()) < 10, err


@pytest.mark.slow
def test_a_sync_longer_than_its_lease_keeps_the_lock(env: Env, tmp_path: Path) -> None:
    seed(env)
    # every webCRM write takes a second longer: the run lasts many leases (tens of them)
    httpx.put(
        env.crm_server.url + "/_emulator/faults",
        json={"latency_ms": 20, "write_latency_ms": 1000},
        timeout=10,
    ).raise_for_status()
    config = _config(env, tmp_path)
    first = _sync(config)
    deadline = time.monotonic() + 60
    while _holder(env) is None:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(3 * LEASE)  # well past the first lease: renewed since
    assert first.poll() is None, "the first sync ended too soon to test anything"
    _refused(_sync(config))
    # the lease moved into the past behind the holder's back: still refused (it lives)
    with env.inst.session() as s:
        s.execute(update(Lock).values(expires_at=repo.now()))
        s.commit()
    _refused(_sync(config))
    assert first.poll() is None, "the first sync ended too soon: the refusals proved nothing"
    _out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    httpx.put(env.crm_server.url + "/_emulator/faults", json={}, timeout=10).raise_for_status()
    converge(env, config)
    assert_consistent(env)


@pytest.mark.slow
def test_two_syncs_started_together_one_refuses_cleanly(env: Env, tmp_path: Path) -> None:
    seed(env, seed=3)
    config = _config(env, tmp_path)
    for _ in range(3):
        procs = [_sync(config), _sync(config)]
        results = [(p.wait(timeout=300), *p.communicate(timeout=30)) for p in procs]
        codes = sorted(code for code, _, _ in results)
        assert codes[0] == 0, results
        assert codes[1] in (0, 1), results
        for code, _out, err in results:
            assert "Traceback" not in err, err
            if code == 1:
                assert "holds the 'sync' lock" in err or "writing the state database" in err
    converge(env, config)
    assert_consistent(env)
