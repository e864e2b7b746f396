"""``shopsync serve`` as a real process, beside the emulator and the reference webshop.

Every part is a real process speaking HTTP, as in production: the webCRM emulator and
the reference webshop (session-wide, reset per test, ``tests/conftest.py``) and the
service itself (``python -m shopsync serve``, one per test, its own state database).
Nothing waits a fixed time: every wait polls for a condition with a generous deadline.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from shopsync.connectors.webcrm.client import WebcrmClient
from shopsync.connectors.webshop.client import WebshopClient
from shopsync.emulators.launch import RunningServer, free_port
from tests.conftest import AUTH_CODE, WEBSHOP_TOKEN

DEADLINE = 60.0
"""Seconds any awaited condition may take (generous: the machine is shared)."""
T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None], what: str, timeout: float = DEADLINE, every: float = 0.05
) -> T:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = condition()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what} (last: {last!r})")
        time.sleep(every)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def parse_metrics(text: str) -> dict[str, float]:
    """``{'name{label="v",…}': value}`` from the Prometheus text format."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and not line.startswith("#"):
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


@dataclass
class Service:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    config_path: Path
    state_url: str
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def metrics(self) -> dict[str, float]:
        return parse_metrics(self.client.get("/metrics").text)

    def metric(self, name: str) -> float:
        return self.metrics().get(name, 0.0)

    def runs(self, outcome: str = "ok") -> float:
        return sum(
            v
            for k, v in self.metrics().items()
            if k.startswith("shopsync_runs_total{") and f'outcome="{outcome}"' in k
        )

    def wait_idle(self, *, after_runs: float | None = None, timeout: float = DEADLINE) -> None:
        """Until no run is in progress, nothing is queued (and ``after_runs`` runs are done)."""

        def idle() -> bool:
            m = self.metrics()
            busy = m.get("shopsync_run_in_progress", 0) or any(
                v for k, v in m.items() if k.startswith("shopsync_pending_work{")
            )
            done = sum(v for k, v in m.items() if k.startswith("shopsync_runs_total{"))
            return not busy and (after_runs is None or done >= after_runs)

        wait_for(idle, "the service idle", timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 15) -> float:
        """SIGTERM; the seconds until the process was gone."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise AssertionError(
                    f"serve did not exit within {timeout}s\n{self.log()[-3000:]}"
                ) from None
        self.client.close()
        return time.monotonic() - started


def write_config(
    path: Path,
    crm: RunningServer,
    shop: RunningServer,
    state_url: str,
    *,
    port: int,
    public: bool = True,
    poll_seconds: float = 3600,
    auth_code: str = AUTH_CODE,
    extra: str = "",
) -> Path:
    public_line = f'public_url = "http://127.0.0.1:{port}"\n' if public else ""
    path.write_text(
        f'[webcrm]\nbase_url = "{crm.url}"\nauth_code = "{auth_code}"\nmax_retries = 2\n'
        f"timeout_seconds = 10\n"
        f'[webshop]\nbase_url = "{shop.url}"\ntoken = "{WEBSHOP_TOKEN}"\nmax_retries = 2\n'
        f'[state]\nurl = "{state_url}"\n'
        f'[serve]\nlisten = "127.0.0.1:{port}"\n{public_line}poll_seconds = {poll_seconds}\n'
        f"{extra}",
        encoding="utf-8",
    )
    return path


def start_service(config: Path, state_url: str, port: int, log_path: Path) -> Service:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSYNC_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["SHOPSYNC_LOG_LEVEL"] = "debug"
    out = open(log_path, "ab")  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen(
        [sys.executable, "-m", "shopsync", "serve", "--config", str(config)],
        stdout=out, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    out.close()
    service = Service(f"http://127.0.0.1:{port}", proc, log_path, config, state_url)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}\n{service.log()[-3000:]}")
        return httpx.get(service.url + "/healthz", timeout=2).status_code == 200

    wait_for(up, "serve answering /healthz")
    return service


@dataclass
class World:
    crm_server: RunningServer
    shop_server: RunningServer
    tmp: Path
    crm: WebcrmClient
    shop: WebshopClient
    services: list[Service] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    state_url: str = ""

    def __post_init__(self) -> None:
        self.state_url = f"sqlite:///{self.tmp / 'state.sqlite'}"

    def serve(self, **config: Any) -> Service:
        path = write_config(
            self.tmp / "shopsync.toml", self.crm_server, self.shop_server, self.state_url,
            port=self.port, **config,
        )  # fmt: skip
        service = start_service(
            path, self.state_url, self.port, self.tmp / f"serve-{len(self.services)}.log"
        )
        self.services.append(service)
        return service

    def serve_started(self, **config: Any) -> Service:
        """A service whose start-up run has finished."""
        service = self.serve(**config)
        wait_for(lambda: service.runs("ok") >= 1, "the start-up run finished")
        return service

    # --- acting on each side, as a person's tools would
    def crm_create(self, entity: str, record: dict[str, Any]) -> int:
        result = self.crm.upsert(entity, [record])[0]
        assert result.error is None, result.error
        return int(result.id)

    def crm_update(self, entity: str, record_id: int, **fields: Any) -> None:
        result = self.crm.upsert(entity, [{f"{entity}Id": record_id, **fields}])[0]
        assert result.error is None, result.error

    def shop_all(self, collection: str) -> list[dict[str, Any]]:
        return [i for p in self.shop.iter_changes(collection, None) for i in p.items]

    def crm_all(self, entity: str) -> list[dict[str, Any]]:
        return [r for page in self.crm.iter_all(entity) for r in page]


@pytest.fixture
def world(
    reset_emulator: RunningServer, reset_webshop: RunningServer, tmp_path: Path
) -> Iterator[World]:
    crm = WebcrmClient(reset_emulator.url, AUTH_CODE, rate_limit=10_000, max_retries=2)
    shop = WebshopClient(reset_webshop.url, WEBSHOP_TOKEN, max_retries=2)
    w = World(reset_emulator, reset_webshop, tmp_path, crm, shop)
    try:
        yield w
    finally:
        for service in w.services:
            if service.process.poll() is None:
                service.process.kill()
                service.process.wait(10)
        crm.close()
        shop.close()
