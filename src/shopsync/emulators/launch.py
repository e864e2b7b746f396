"""Start the emulator and the reference webshop as real child processes.

Used by ``shopsync demo``, by the end-to-end tests and by the benchmarks, so all of them
talk to the servers over real HTTP between processes, exactly as a user's installation
would talk to webCRM and to their shop.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RunningServer:
    """A server child process and where to reach it."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None
    controls_prefix: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _spawn(
    name: str,
    args: list[str],
    *,
    port: int,
    host: str,
    health_path: str,
    log_path: Path | None,
    timeout: float,
) -> RunningServer:
    cmd = [sys.executable, "-m", "shopsync", *args]
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://{host}:{port}"
    server = RunningServer(name=name, url=url, process=proc, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{name} exited with code {proc.returncode} while starting\n{server.log_tail()}"
            )
        try:
            if httpx.get(url + health_path, timeout=1.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not answer {url}{health_path} within {timeout}s")


def start_webcrm_emulator(
    db: Path,
    *,
    auth_code: str,
    port: int | None = None,
    host: str = "127.0.0.1",
    rate_limit: int = 250,
    token_ttl: int = 3600,
    seed: int | None = None,
    log_path: Path | None = None,
    timeout: float = 30.0,
) -> RunningServer:
    """Start ``shopsync webcrm-emulator`` and wait until it answers."""
    port = port or free_port(host)
    args = [
        "webcrm-emulator",
        "--host", host, "--port", str(port), "--db", str(db),
        "--auth-code", auth_code, "--rate-limit", str(rate_limit),
        "--token-ttl", str(token_ttl),
    ]  # fmt: skip
    if seed is not None:
        args += ["--seed", str(seed)]
    server = _spawn(
        "webcrm-emulator", args, port=port, host=host,
        health_path="/_emulator/health", log_path=log_path, timeout=timeout,
    )  # fmt: skip
    server.controls_prefix = "/_emulator"
    return server


def start_webshop_server(
    db: str,
    *,
    token: str,
    port: int | None = None,
    host: str = "127.0.0.1",
    seed: int | None = None,
    log_path: Path | None = None,
    timeout: float = 30.0,
) -> RunningServer:
    """Start ``shopsync webshop-server`` (``db`` is a path or a database URL)."""
    port = port or free_port(host)
    args = ["webshop-server", "--host", host, "--port", str(port), "--db", db, "--token", token]
    if seed is not None:
        args += ["--seed", str(seed)]
    server = _spawn(
        "webshop-server", args, port=port, host=host,
        health_path="/_webshop/health", log_path=log_path, timeout=timeout,
    )  # fmt: skip
    server.controls_prefix = "/_webshop"
    return server
