"""The reference webshop as a FastAPI app: routes of the contract plus ``/_webshop`` controls.

Handlers read the raw body themselves (rather than letting FastAPI bind models) so
that every error is the contract's problem+json, with the contract's field paths.
Database work runs in the thread pool; the event loop only parses and answers.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from shopsync.contract import contract_json
from shopsync.emulators.common.controls import (
    Controls,
    ControlsMiddleware,
    SeedRequest,
    controls_router,
    require_local,
)

from .batch import ENVELOPE_DEPTH, BatchSettings, batch_controls, batch_response, parse_items
from .listing import Listing
from .problems import FieldError, Problem, invalid, too_many
from .records import RESOURCES, Resource
from .seeding import seed_store
from .service import Records, parse_idempotency_key, parse_if_match
from .store import Store
from .validation import MAX_DEPTH, parse_body
from .webhooks import RetrySettings, Webhooks

log = logging.getLogger(__name__)
PREFIX = "/_webshop"
CLI_SEED = 1
"""The random seed ``--seed N`` uses (the webCRM emulator's default too)."""

_KINDS = {400: "bad-request", 401: "unauthorized", 404: "not-found", 405: "method-not-allowed"}


def _record_response(record: dict[str, Any], status: int = 200, **headers: str) -> Response:
    return JSONResponse(
        record, status_code=status, headers={"ETag": f'"{record["version"]}"', **headers}
    )


def _auth(token: str) -> Callable[[Request], None]:
    expected = token.encode("utf-8")

    def check(request: Request) -> None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Problem(
                401, "unauthorized", "send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": 'Bearer realm="webshop"'},
            )  # fmt: skip
        if not hmac.compare_digest(value.strip().encode("utf-8"), expected):
            raise Problem(
                401, "unauthorized", "the bearer token is not this shop's token",
                headers={"WWW-Authenticate": 'Bearer realm="webshop", error="invalid_token"'},
            )  # fmt: skip

    return check


def no_query(request: Request) -> None:
    """Operations without query parameters refuse any (a typo should not pass silently)."""
    if request.query_params:
        raise invalid(
            [FieldError(name, "unknown query parameter") for name in request.query_params]
        )


def _record_routes(
    router: APIRouter, records: Records, resource: Resource, batching: BatchSettings
) -> None:
    base = f"/{resource.collection}"

    async def list_records(request: Request) -> Response:
        listing = Listing.from_query(request.query_params)
        return JSONResponse(await run_in_threadpool(records.list, resource, listing))

    async def create(request: Request) -> Response:
        key = parse_idempotency_key(request.headers.get("idempotency-key"))
        body = parse_body(await request.body())
        created = await run_in_threadpool(records.create, resource, body, key)
        headers = {"Location": f"{base}/{created.record['id']}"}
        if created.replayed:
            headers["Idempotent-Replayed"] = "true"
        return _record_response(created.record, 201, **headers)

    async def get(record_id: str) -> Response:
        return _record_response(await run_in_threadpool(records.get, resource, record_id))

    async def patch(record_id: str, request: Request) -> Response:
        if_match = parse_if_match(request.headers.get("if-match"))
        body = parse_body(await request.body())
        record = await run_in_threadpool(records.patch, resource, record_id, body, if_match)
        return _record_response(record)

    async def delete(record_id: str, request: Request) -> Response:
        if_match = parse_if_match(request.headers.get("if-match"))
        await run_in_threadpool(records.delete, resource, record_id, if_match)
        return Response(status_code=204)

    async def batch(request: Request) -> Response:
        if not batching.enabled:
            raise Problem(404, "not-found", "this shop offers no batch writes")
        max_items = batching.max_items
        data = parse_body(await request.body(), MAX_DEPTH + ENVELOPE_DEPTH)
        items = parse_items(data, max_items)
        return batch_response(await run_in_threadpool(records.batch, resource, items))

    plain = [Depends(no_query)]
    router.add_api_route(base, list_records, methods=["GET"])
    router.add_api_route(base, create, methods=["POST"], dependencies=plain)
    router.add_api_route(base + "/batch", batch, methods=["POST"], dependencies=plain)
    router.add_api_route(base + "/{record_id}", get, methods=["GET"], dependencies=plain)
    router.add_api_route(base + "/{record_id}", patch, methods=["PATCH"], dependencies=plain)
    router.add_api_route(base + "/{record_id}", delete, methods=["DELETE"], dependencies=plain)


def _webhook_routes(router: APIRouter, webhooks: Webhooks) -> None:
    async def list_hooks() -> Response:
        return JSONResponse({"items": await run_in_threadpool(webhooks.all)})

    async def create_hook(request: Request) -> Response:
        body = parse_body(await request.body())
        return JSONResponse(await run_in_threadpool(webhooks.create, body), status_code=201)

    async def get_hook(hook_id: str) -> Response:
        return JSONResponse(await run_in_threadpool(webhooks.get, hook_id))

    async def delete_hook(hook_id: str) -> Response:
        await run_in_threadpool(webhooks.delete, hook_id)
        return Response(status_code=204)

    plain = [Depends(no_query)]
    router.add_api_route("/webhooks", list_hooks, methods=["GET"], dependencies=plain)
    router.add_api_route("/webhooks", create_hook, methods=["POST"], dependencies=plain)
    router.add_api_route("/webhooks/{hook_id}", get_hook, methods=["GET"], dependencies=plain)
    router.add_api_route("/webhooks/{hook_id}", delete_hook, methods=["DELETE"], dependencies=plain)


def _extra_controls(webhooks: Webhooks, records: Records) -> APIRouter:
    """Controls beyond the shared ones: the webhook outbox and its retry policy, purge."""
    router = APIRouter(prefix=PREFIX, tags=["controls"])

    @router.delete("/purge/{collection}/{record_id}")
    async def purge(collection: str, record_id: str, request: Request) -> dict[str, str]:
        """Remove a record without a tombstone: its id answers 404 from now on."""
        require_local(request)
        resource = RESOURCES.get(collection)
        if resource is None:
            raise Problem(404, "not-found", f"no collection {collection!r}")
        await run_in_threadpool(records.purge, resource, record_id)
        return {"purged": record_id}

    @router.get("/deliveries")
    async def deliveries(request: Request) -> dict[str, Any]:
        require_local(request)
        return {"items": await run_in_threadpool(webhooks.deliveries)}

    @router.get("/webhook-settings")
    async def get_settings(request: Request) -> RetrySettings:
        require_local(request)
        return webhooks.settings

    @router.put("/webhook-settings")
    async def put_settings(request: Request, body: RetrySettings) -> RetrySettings:
        require_local(request)
        webhooks.settings = body
        return body

    return router


def _handlers(app: FastAPI) -> None:
    async def on_problem(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return exc.response()

    async def on_http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        kind = _KINDS.get(exc.status_code, "error")
        return Problem(
            exc.status_code, kind, str(exc.detail), headers=dict(exc.headers or {})
        ).response()

    async def on_request_validation(_: Request, exc: Exception) -> Response:
        return Problem(422, "validation", str(exc)).response()

    async def on_error(_: Request, exc: Exception) -> Response:
        log.error("unhandled %s", exc.__class__.__name__, exc_info=exc)
        return Problem(500, "internal", "the server failed; see its log").response()

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(Exception, on_error)


def create_app(db: str, token: str, *, seed: int | None = None) -> FastAPI:
    """The reference webshop over ``db`` (SQLite path or database URL)."""
    if not token:
        raise ValueError("the webshop token must not be empty")
    store = Store(db)
    webhooks = Webhooks(store)
    records = Records(store, webhooks)
    batching = BatchSettings()
    controls = Controls(prefix=PREFIX, too_many=too_many)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(store.start)
        if seed is not None and await run_in_threadpool(store.is_empty):
            await run_in_threadpool(seed_store, store, CLI_SEED, seed)
        webhooks.start()
        try:
            yield
        finally:
            webhooks.stop()
            store.close()

    async def reset() -> None:
        await run_in_threadpool(store.reset)
        webhooks.settings = RetrySettings()
        batching.restore()

    async def seed_endpoint(body: SeedRequest) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            if body.reset:
                store.reset()
            return {"seed": body.seed, "n": body.n, **seed_store(store, body.seed, body.n)}

        return await run_in_threadpool(work)

    app = FastAPI(
        title="shopsync reference webshop",
        openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan,
    )  # fmt: skip
    app.add_middleware(ControlsMiddleware, controls=controls)
    _handlers(app)
    app.include_router(controls_router(controls, reset=reset, seed=seed_endpoint))
    app.include_router(_extra_controls(webhooks, records))
    app.include_router(batch_controls(PREFIX, batching))

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> Response:
        return Response(contract_json(), media_type="application/json")

    api = APIRouter(dependencies=[Depends(_auth(token))])

    async def capabilities() -> Response:
        if not batching.capabilities:
            raise Problem(404, "not-found", "no capabilities document (no optional features)")
        return JSONResponse(batching.document())

    api.add_api_route(
        "/capabilities", capabilities, methods=["GET"], dependencies=[Depends(no_query)]
    )
    for resource in RESOURCES.values():
        _record_routes(api, records, resource, batching)
    _webhook_routes(api, webhooks)
    app.include_router(api)
    app.state.store = store
    app.state.webhooks = webhooks
    app.state.batching = batching
    return app
