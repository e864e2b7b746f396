"""``shopsync serve``: the HTTP endpoints, the scheduler thread, start and stop.

One process: uvicorn serves hooks, health and metrics on the event loop, and one
scheduler thread does every sync run (:mod:`.scheduler`). A hook handler only verifies
the call and queues a hint, so it answers in microseconds whatever a run is doing.

Stopping (SIGTERM or SIGINT): new hook calls are answered 503 (both senders retry), the
run in flight may finish for :data:`GRACE` seconds and is then interrupted at its next
progress point (safe: docs/sync-engine.md, "Exactly once"), and the process exits
within :data:`DEADLINE` seconds of the signal whatever a request to either system is
doing.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import FrameType
from typing import Any

import structlog
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from shopsync.config.model import Config
from shopsync.logs import register_secret
from shopsync.runtime import Installation
from shopsync.service import console, hooks_webcrm, hooks_webshop, secrets_store
from shopsync.service.budget import Budget
from shopsync.service.health import readiness
from shopsync.service.metrics import Metrics
from shopsync.service.scheduler import Scheduler

log = structlog.get_logger("shopsync.serve")

GRACE = 5.0
"""Seconds the run in flight may go on after a stop signal before it is interrupted."""
DEADLINE = 9.0
"""Seconds after a stop signal by which the process has exited, whatever happens."""
MAX_HOOK_BODY = 64 * 1024
"""A hook call is a hint of a few hundred bytes; anything larger is refused unread."""


class Service:
    """Everything one ``shopsync serve`` process holds."""

    def __init__(self, inst: Installation) -> None:
        self.inst = inst
        self.config: Config = inst.config
        self.public_url = self.config.serve.public_url
        self.metrics = Metrics()
        self.budget = Budget(inst.webcrm, inst.webcrm.limiter)
        self.token = secrets_store.get_or_create(inst, secrets_store.HOOK_TOKEN)
        self.verifier = hooks_webshop.Verifier(
            secrets_store.get(inst, secrets_store.WEBSHOP_SECRET) if self.public_url else None
        )
        self.scheduler = Scheduler(
            inst,
            self.config.serve,
            self.metrics,
            self.budget,
            setup=self.register_hooks if self.public_url else None,
        )
        self.stop_requested_at: float | None = None
        self._webcrm_registered = False
        pending = "not registered yet" if self.public_url else "none: polling only (no public_url)"
        self.hooks_state: dict[str, str] = {"webcrm": pending, "webshop": pending}
        """What :meth:`register_hooks` achieved per system, for the console."""

    def register_hooks(self) -> None:
        """Hooks in webCRM and a webhook subscription in the shop (idempotent). A part
        that succeeded is not redone when the other fails and setup is retried."""
        assert self.public_url is not None
        if not self._webcrm_registered:
            done = hooks_webcrm.register(self.inst.webcrm, self.public_url, self.token)
            self._webcrm_registered = True
            self.hooks_state["webcrm"] = "registered"
            log.info(
                "serve.webcrm_hooks",
                kept=done.kept, created=done.created, repaired=done.repaired,
                removed=done.removed,
            )  # fmt: skip
        configured = self.config.webshop.webhook_secret
        known = secrets_store.get(self.inst, secrets_store.WEBSHOP_SECRET)
        if configured is not None and configured.get_secret_value() != known:
            known = None  # the operator set another secret: subscribe again with it
        fresh = (
            configured.get_secret_value() if configured is not None else secrets_store.new_secret()
        )
        register_secret(fresh)

        def before_subscribing(secret: str) -> None:
            # Stored and in use before the shop can first call with it.
            secrets_store.put(self.inst, secrets_store.WEBSHOP_SECRET, secret)
            self.verifier.use_secret(secret)

        sub = hooks_webshop.subscribe(
            self.inst.webshop,
            self.public_url,
            self.token,
            known_id=secrets_store.get(self.inst, secrets_store.WEBSHOP_SUBSCRIPTION),
            known_secret=known,
            new_secret=fresh,
            before_subscribing=before_subscribing,
        )
        if not sub.offered:
            self.hooks_state["webshop"] = "not offered by the shop: polling only"
            self.verifier.use_secret(None)
            log.info(
                "serve.webshop_webhooks_unsupported", polling_seconds=self.config.serve.poll_seconds
            )
            return
        assert sub.subscription_id is not None and sub.secret is not None
        self.verifier.use_secret(sub.secret)
        secrets_store.put(self.inst, secrets_store.WEBSHOP_SUBSCRIPTION, sub.subscription_id)
        self.hooks_state["webshop"] = "subscribed"
        log.info("serve.webshop_webhook", kept=sub.kept, removed=sub.removed)

    def stop(self) -> None:
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()
            log.info("serve.stopping")
            self.scheduler.request_stop()


def create_app(service: Service) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.scheduler.start()
        log.info(
            "serve.started",
            listen=service.config.serve.listen,
            public_url=service.public_url,
            poll_seconds=service.config.serve.poll_seconds,
        )
        yield
        service.stop()
        since = time.monotonic() - (service.stop_requested_at or time.monotonic())
        done = await asyncio.to_thread(
            service.scheduler.shutdown, max(GRACE - since, 0.0), max(DEADLINE - 1.0 - since, 0.0)
        )
        if not done:
            log.error("serve.run_still_busy_at_exit")

    app = FastAPI(title="shopsync", lifespan=lifespan, docs_url=None, redoc_url=None)
    console.mount(app, service)  # the console's pages (docs/console.md)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        ready, body = readiness(service.inst, service.scheduler)
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/hooks/webcrm/{token}")
    async def webcrm_hook(token: str, request: Request) -> Response:
        turned_away = _turn_away(service, "webcrm", token)
        if turned_away is not None:
            return turned_away
        body = await _body(request)
        try:
            parsed: Any = json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        hint = hooks_webcrm.hint_from(parsed)
        service.scheduler.hint(
            hint.datatypes,
            source="webcrm",
            sweep=hint.sweep,
            record=None if hint.record_id is None else ("webcrm", hint.record_id),
            deleted=hint.deleted,
        )
        service.metrics.hooks.labels("webcrm", "accepted").inc()
        log.debug(
            "serve.hook", source="webcrm", entity=hint.entity, hook_event=hint.event,
            record_id=hint.record_id,
        )  # fmt: skip
        return Response(status_code=202)

    @app.post("/hooks/webshop/{token}")
    async def webshop_hook(token: str, request: Request) -> Response:
        turned_away = _turn_away(service, "webshop", token)
        if turned_away is not None:
            return turned_away
        verdict = service.verifier.check(await _body(request), request.headers)
        if not verdict.accepted:
            service.metrics.hooks.labels("webshop", "refused").inc()
            log.warning("serve.webhook_refused", reason=verdict.reason)
            return JSONResponse({"detail": verdict.reason}, status_code=401)
        service.scheduler.hint(
            verdict.datatypes,
            source="webshop",
            record=None if verdict.record_id is None else ("webshop", verdict.record_id),
            deleted=verdict.deleted,
        )
        service.metrics.hooks.labels("webshop", "accepted").inc()
        log.debug(
            "serve.hook", source="webshop", hook_event=verdict.event, record_id=verdict.record_id
        )
        return Response(status_code=202)

    return app


def _turn_away(service: Service, source: str, token: str) -> Response | None:
    """The answer for a hook call that must not be taken: an unknown token (404, as if
    the address did not exist) or a service stopping (503: the caller tries again)."""
    if not hmac.compare_digest(token.encode(), service.token.encode()):
        service.metrics.hooks.labels(source, "refused").inc()
        return JSONResponse({"detail": "not found"}, status_code=404)
    if service.scheduler.stopping:
        return JSONResponse({"detail": "stopping; call again"}, status_code=503)
    return None


async def _body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_HOOK_BODY:
            break
        chunks.append(chunk)
    return b"".join(chunks)


class _Server(uvicorn.Server):
    """uvicorn, with our own signal handling: the first SIGTERM/SIGINT stops the
    service gracefully; a watchdog ends the process at :data:`DEADLINE` regardless; the
    exit status stays 0 (uvicorn would re-raise the signal after shutting down)."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        if self.should_exit:
            self.force_exit = True
            return
        self.should_exit = True
        self.service.stop()
        watchdog = threading.Timer(DEADLINE, _exit_now)
        watchdog.daemon = True
        watchdog.start()


def _exit_now() -> None:
    log.error("serve.forced_exit", after_seconds=DEADLINE)
    os._exit(0)


def run(inst: Installation) -> int:
    """Serve until stopped; the exit status (0 after a stop signal)."""
    service = Service(inst)
    serve = inst.config.serve
    config = uvicorn.Config(
        create_app(service),
        host=serve.host,
        port=serve.port,
        log_config=None,
        access_log=False,  # the hook paths carry the token
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = _Server(config, service)
    server.run()
    return 0 if server.started else 1


def unregister(inst: Installation) -> tuple[int, int]:
    """Remove this installation's hooks from webCRM and its webhook from the shop."""
    token = secrets_store.get(inst, secrets_store.HOOK_TOKEN)
    public_url = inst.config.serve.public_url
    if token is None and public_url is None:
        return 0, 0
    crm = hooks_webcrm.unregister(inst.webcrm, public_url, token)
    shop = hooks_webshop.unsubscribe(inst.webshop, public_url, token)
    with inst.session() as s:
        from shopsync.store.models import Meta

        for key in (secrets_store.WEBSHOP_SUBSCRIPTION, secrets_store.WEBSHOP_SECRET):
            row = s.get(Meta, key)
            if row is not None:
                s.delete(row)
        s.commit()
    log.info("serve.unregistered", webcrm_hooks=crm, webshop_webhooks=shop)
    return crm, shop
