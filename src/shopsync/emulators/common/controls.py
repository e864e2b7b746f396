"""Test and benchmark controls shared by the webCRM emulator and the reference webshop.

Both servers expose, under their own prefix (``/_emulator`` or ``/_webshop``), the same
knobs: request counters per endpoint and fault switches (a share of 500/503 answers,
added latency, forced 429s, dropped connections). The faults are applied by an ASGI
middleware *before* routing, so a faulted request never touches the server's state:
a client that retries it sees exactly what it would see against a flaky real service.
Two knobs are the exception, because a sync must survive them too: ``write_latency_ms``
holds a write before it is done (a request still running on the server when its
client is killed), and ``lost_answer_rate`` does a write, then drops its answer.

The controls need no token, so they only answer callers on the server's own host
(loopback, or the address the server is bound to).
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}

_ID_SEGMENT = re.compile(r"/(?:\d+|[0-9a-fA-F-]{16,}|[A-Za-z]+_[A-Za-z0-9]+)(?=/|$)")


def endpoint_key(method: str, path: str) -> str:
    """Counter key for a request: the method and the path with ids folded to ``{id}``.

    ``GET /Organisations/17`` and ``GET /Organisations/18`` count as one endpoint.
    """
    return f"{method} {_ID_SEGMENT.sub('/{id}', path)}"


class Faults(BaseModel):
    """Fault switches; every share is a probability in 0..1 applied per request."""

    error_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of 500/503 answers")
    latency_ms: int = Field(0, ge=0, le=60_000, description="added to every request")
    force_429: int = Field(0, ge=0, description="the next N requests get 429")
    retry_after: int = Field(1, ge=0, le=3600, description="Retry-After of forced 429s")
    drop_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of dropped connections")
    write_latency_ms: int = Field(
        0, ge=0, le=60_000, description="added before a write (POST/PUT/PATCH/DELETE) is done"
    )
    lost_answer_rate: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="share of writes that are done, then their answer is lost (dropped)",
    )
    fail_paths: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="a request whose path contains one of these always answers 500 "
        "(a server that fails on one record's data)",
    )
    seed: int | None = Field(None, description="seed for the fault dice, for repeatable runs")


@dataclass
class Controls:
    """Mutable control state of one server process (thread-safe)."""

    prefix: str
    too_many: Callable[[int], Response]
    """Builds the server's own 429 answer (its body format differs per server)."""
    faults: Faults = field(default_factory=Faults)
    counters: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(default_factory=random.Random)

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)

    def count(self, key: str) -> None:
        with self._lock:
            self.counters[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)

    def reset_counters(self) -> None:
        with self._lock:
            self.counters.clear()

    def lose_answer(self) -> bool:
        """Whether this write's answer is lost after it was done."""
        with self._lock:
            rate = self.faults.lost_answer_rate
            return bool(rate) and self._rng.random() < rate

    def draw(self, path: str = "") -> str | None:
        """Decide this request's fault: ``"429"``, ``"drop"``, ``"500"``, ``"503"`` or None."""
        with self._lock:
            f = self.faults
            if path and any(part in path for part in f.fail_paths):
                return "500"
            if f.force_429 > 0:
                self.faults = f.model_copy(update={"force_429": f.force_429 - 1})
                return "429"
            if f.drop_rate and self._rng.random() < f.drop_rate:
                return "drop"
            if f.error_rate and self._rng.random() < f.error_rate:
                return self._rng.choice(("500", "503"))
            return None


class ControlsMiddleware:
    """Counts every non-control request and applies the fault switches to it."""

    def __init__(self, app: ASGIApp, controls: Controls) -> None:
        self.app = app
        self.controls = controls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.controls.prefix):
            await self.app(scope, receive, send)
            return
        self.controls.count(endpoint_key(scope["method"], scope["path"]))
        latency = self.controls.faults.latency_ms
        if latency:
            await asyncio.sleep(latency / 1000)
        fault = self.controls.draw(scope["path"])
        write = scope["method"] in WRITE_METHODS
        if fault is None and write and self.controls.faults.write_latency_ms:
            # the request has fully arrived: it is done after the wait even if its
            # client is gone by then (as a server busy with it would)
            receive = await _buffered(receive)
            await asyncio.sleep(self.controls.faults.write_latency_ms / 1000)
        if fault is None and write and self.controls.lose_answer():
            await self.app(scope, receive, _swallow)  # the write happens ...
            await _drop(send)  # ... and its answer never arrives
        elif fault is None:
            await self.app(scope, receive, send)
        elif fault == "429":
            await self.controls.too_many(self.controls.faults.retry_after)(scope, receive, send)
        elif fault == "drop":
            await _drop(send)
        else:
            body = b'{"Message": "injected fault"}'
            await Response(body, status_code=int(fault), media_type="application/json")(
                scope, receive, send
            )


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def _buffered(receive: Receive) -> Receive:
    """Read the whole request body now; the returned ``receive`` replays it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return replay


async def _swallow(message: Message) -> None:
    """An ASGI ``send`` that discards the answer."""


class DroppedConnection(Exception):
    """Raised mid-response so the server closes the connection without finishing it."""


async def _drop(send: Send) -> None:
    """Promise a body, send part of it, then abort: the client sees a broken connection."""
    start: Message = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
    }
    await send(start)
    await send({"type": "http.response.body", "body": b'{"trunc', "more_body": True})
    raise DroppedConnection("fault switch: connection dropped")


def require_local(request: Request) -> None:
    """Refuse control calls that do not come from this server's own host.

    "Own host" is the address the server socket is bound to (the ASGI ``server`` tuple),
    never the ``Host`` header: that header is chosen by the caller, so a remote client
    could otherwise name its own address there and pass.
    """
    client = request.client.host if request.client else None
    server = request.scope.get("server")
    own = server[0] if server else None
    if client not in LOOPBACK and client != own:
        raise HTTPException(status_code=403, detail="controls answer only on the server's own host")


class SeedRequest(BaseModel):
    n: int = Field(100, ge=0, le=1_000_000, description="how many top-level records to create")
    seed: int = Field(1, description="random seed; the same seed gives the same data")
    reset: bool = Field(True, description="empty the store first")


def controls_router(
    controls: Controls,
    *,
    reset: Callable[[], Awaitable[None] | None],
    seed: Callable[[Any], Awaitable[dict[str, Any]] | dict[str, Any]],
    seed_model: type[SeedRequest] = SeedRequest,
) -> APIRouter:
    """The ``{prefix}/…`` endpoints: health, reset, seed, counters, faults.

    ``seed_model`` lets a server accept more seed knobs than ``n``, ``seed`` and
    ``reset`` (a subclass of :class:`SeedRequest`); ``seed`` then receives that model.
    """
    router = APIRouter(prefix=controls.prefix, tags=["controls"])

    async def _maybe(value: Any) -> Any:
        return await value if asyncio.iscoroutine(value) else value

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.post("/reset")
    async def do_reset(request: Request) -> dict[str, str]:
        require_local(request)
        await _maybe(reset())
        controls.reset_counters()
        controls.set_faults(Faults())
        return {"status": "reset"}

    async def do_seed(request: Request, body: SeedRequest) -> dict[str, Any]:
        require_local(request)
        result: dict[str, Any] = await _maybe(seed(body))
        return result

    # The body model is chosen at run time; FastAPI reads it from the annotations.
    do_seed.__annotations__["body"] = seed_model
    router.post("/seed")(do_seed)

    @router.get("/counters")
    async def get_counters(request: Request) -> dict[str, Any]:
        require_local(request)
        counts = controls.snapshot()
        return {"total": sum(counts.values()), "endpoints": counts}

    @router.delete("/counters")
    async def clear_counters(request: Request) -> dict[str, str]:
        require_local(request)
        controls.reset_counters()
        return {"status": "cleared"}

    @router.get("/faults")
    async def get_faults(request: Request) -> Faults:
        require_local(request)
        return controls.faults

    @router.put("/faults")
    async def put_faults(request: Request, body: Faults) -> Faults:
        require_local(request)
        controls.set_faults(body)
        return controls.faults

    return router
