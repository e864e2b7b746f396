"""The webCRM API emulator as a FastAPI application.

Routes are generated per datatype from ``schema.py``, so the four datatypes behave the
same way: list/get/create/replace/bulk-upsert, ``DELETE`` only for QuotationLines and
Products (the live API has no DELETE for organisations and opportunities, so those get
405), hooks per datatype. ``docs/emulator.md`` lists every behaviour and assumption.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from shopsync.connectors.webcrm.fieldspec import EntitySpec
from shopsync.connectors.webcrm.schema import ENTITIES, OPPORTUNITY, ORGANISATION, QUOTATIONLINE
from shopsync.emulators.common.controls import (
    Controls,
    ControlsMiddleware,
    SeedRequest,
    controls_router,
    require_local,
)
from shopsync.emulators.common.urls import http_url_host
from shopsync.emulators.webcrm.auth import TokenStore
from shopsync.emulators.webcrm.errors import (
    ApiError,
    bad_request,
    json_response,
    not_found,
    raw_json_response,
    too_many_requests,
    unauthorized,
)
from shopsync.emulators.webcrm.hooks import HookDispatcher
from shopsync.emulators.webcrm.openapi import (
    HOOK_EVENTS,
    answers,
    finish,
    form_body,
    json_body,
    ref,
)
from shopsync.emulators.webcrm.queries import QueryError, compile_script
from shopsync.emulators.webcrm.ratelimit import RateLimiter
from shopsync.emulators.webcrm.seed import SeedPlan, seed_store
from shopsync.emulators.webcrm.store import PATCH_LIMIT, NotFound, Store, q
from shopsync.emulators.webcrm.timeutil import OutOfRange, format_ts, parse_ts
from shopsync.emulators.webcrm.timing import ServerTimingMiddleware
from shopsync.emulators.webcrm.validation import INT32_MAX, INT32_MIN, FieldError

CONTROLS_PREFIX = "/_emulator"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
DELETABLE = {"QuotationLine", "Product"}
"""The datatypes the live API can delete (``DELETE /QuotationLines/{id}``, ``/Products/{id}``)."""


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclass
class EmulatorConfig:
    db: Path
    auth_code: str
    rate_limit: int = 250
    token_ttl: int = 3600
    seed_organisations: int | None = None
    seed: int = 1
    hook_backoff: float = 0.5
    hook_attempts: int = 5


class WebcrmSeedRequest(SeedRequest):
    """``POST /_emulator/seed``: ``n`` organisations plus the knobs of :class:`SeedPlan`."""

    products: int | None = Field(None, ge=0, le=1_000_000, description="default n/5")
    opportunities: int | None = Field(None, ge=0, le=1_000_000, description="default n/2")
    product_sku_field: str = "ProductCustom1"
    product_name_field: str = "ProductCustom2"
    line_sku_field: str = "QuotationLineData1"
    line_description_field: str = "QuotationLineData2"
    organisation_email_field: str | None = None


class HookRetrySetting(BaseModel):
    """``PUT /_emulator/hook-retry``: delay before the first retry (doubling) and attempts."""

    backoff: float = Field(..., gt=0, le=600)
    max_attempts: int = Field(..., ge=1, le=20)


class AuthCodeSetting(BaseModel):
    """``PUT /_emulator/auth-code``: the application token accepted from now on."""

    auth_code: str | None = Field(None, min_length=1, max_length=200)
    """None: the one the emulator was started with."""


class RateLimitSetting(BaseModel):
    """``PUT /_emulator/rate-limit``: requests per 60 s per application token, 0 = off."""

    limit: int = Field(..., ge=0, le=1_000_000)


@dataclass
class Emulator:
    """Everything one emulator process holds."""

    config: EmulatorConfig
    store: Store
    tokens: TokenStore
    limiter: RateLimiter
    hooks: HookDispatcher
    controls: Controls

    def reset(self) -> None:
        self.store.reset()
        self.hooks.clear()
        self.hooks.backoff = self.config.hook_backoff
        self.hooks.max_attempts = self.config.hook_attempts
        self.hooks.set_hooks([])
        self.limiter.clear()
        self.tokens.restore_auth_code()

    def seed(self, body: WebcrmSeedRequest) -> dict[str, Any]:
        try:
            plan = SeedPlan(
                organisations=body.n,
                seed=body.seed,
                products=body.products,
                opportunities=body.opportunities,
                product_sku_field=body.product_sku_field,
                product_name_field=body.product_name_field,
                line_sku_field=body.line_sku_field,
                line_description_field=body.line_description_field,
                organisation_email_field=body.organisation_email_field,
            )
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        if body.reset:
            self.reset()
        counts = seed_store(self.store, plan)
        return {"status": "seeded", "seed": body.seed, **counts}


# --------------------------------------------------------------------------- helpers
async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise bad_request("the request body is empty; expected JSON")
    try:
        return orjson.loads(raw)  # strict: NaN/Infinity and bad UTF-8 are refused
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None


Page = Annotated[int, Query(alias="Page", ge=1, le=10_000_000, description="1-based page")]
Size = Annotated[
    int,
    Query(alias="Size", ge=1, le=MAX_PAGE_SIZE, description=f"rows per page, ≤ {MAX_PAGE_SIZE}"),
]
# The definition's path ids: int32 for records, int64 for hooks. A value outside is a 400
# naming ``id`` (as for one that is not a number), never a number SQLite cannot bind.
RecordId = Annotated[
    int, PathParam(ge=INT32_MIN, le=INT32_MAX, description="the record's id (int32)")
]
HookId = Annotated[int, PathParam(ge=-(2**63), le=2**63 - 1, description="the hook's id (int64)")]
DateParam = Annotated[
    str,
    PathParam(
        description="an ISO-8601 date or date-time (2026-05-01, 2026-05-01T10:00:00+02:00)",
        json_schema_extra={"format": "date-time"},
    ),
]


def _field_error(exc: FieldError) -> ApiError:
    return bad_request(str(exc), field=exc.field)


# --------------------------------------------------------------------------- app
def create_app(config: EmulatorConfig) -> FastAPI:
    """Build the emulator app (state opened now, hook threads stopped at shutdown)."""
    store = Store(config.db)
    controls = Controls(
        prefix=CONTROLS_PREFIX,
        too_many=lambda seconds: too_many_requests(seconds),
    )
    emu = Emulator(
        config=config,
        store=store,
        tokens=TokenStore(config.auth_code, config.token_ttl),
        limiter=RateLimiter(config.rate_limit),
        hooks=HookDispatcher(backoff=config.hook_backoff, max_attempts=config.hook_attempts),
        controls=controls,
    )
    emu.hooks.set_hooks(store.hooks())
    if config.seed_organisations is not None and store.count(ORGANISATION.name) == 0:
        seed_store(store, SeedPlan(config.seed_organisations, seed=config.seed))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        emu.hooks.stop()
        store.close()

    app = FastAPI(
        title="webCRM API emulator (shopsync)",
        description="A faithful stand-in for webCRM REST API v1; see docs/emulator.md.",
        version="1",
        lifespan=lifespan,
    )
    app.state.emulator = emu
    app.add_middleware(ControlsMiddleware, controls=controls)
    # Added last, so outermost: it times faults and latency too, as a client sees them.
    app.add_middleware(ServerTimingMiddleware)
    _install_error_handlers(app, emu)

    def openapi() -> dict[str, Any]:
        """FastAPI's document, completed with the bodies and errors it cannot see."""
        if app.openapi_schema is None:
            app.openapi_schema = finish(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes,
            ), CONTROLS_PREFIX)  # fmt: skip
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    async def guard(request: Request) -> str:
        """Bearer token → application; then the application's rate limit."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        app_name = emu.tokens.app_for(token.strip()) if scheme.lower() == "bearer" else None
        if app_name is None:
            raise unauthorized()
        wait = emu.limiter.acquire(app_name)
        if wait is not None:
            raise RateLimited(wait)
        return app_name

    api = APIRouter(dependencies=[Depends(guard)])
    app.include_router(_auth_router(emu))
    for entity in ENTITIES.values():
        _entity_routes(api, emu, entity)
    _extra_routes(api, emu)
    app.include_router(api)
    app.include_router(
        controls_router(
            controls,
            reset=emu.reset,
            seed=emu.seed,
            seed_model=WebcrmSeedRequest,
        )
    )
    app.include_router(_emulator_controls(emu))
    return app


def _install_error_handlers(app: FastAPI, emu: Emulator) -> None:
    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def rate_limited(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RateLimited)
        return too_many_requests(exc.retry_after, emu.limiter.limit)

    async def validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ())]
            where = f"{loc[-1]} ({loc[0]})" if len(loc) >= 2 else ".".join(loc)
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return ApiError(400, "; ".join(problems) or "invalid request").response()

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        kind = {404: "NotFoundException", 405: "MethodNotAllowedException"}.get(
            exc.status_code, "HttpException"
        )
        headers = dict(exc.headers) if exc.headers else None
        err = ApiError(exc.status_code, str(exc.detail), kind=kind, headers=headers)
        return err.response()

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RateLimited, rate_limited)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)


# --------------------------------------------------------------------------- /Auth
def _auth_router(emu: Emulator) -> APIRouter:
    router = APIRouter(prefix="/Auth", tags=["Auth"])

    def token_answer(pair: tuple[str, str] | None, error: str) -> Response:
        if pair is None:
            return json_response(
                {
                    "AccessToken": None,
                    "RefreshToken": None,
                    "Error": "invalid_grant",
                    "ErrorDescription": error,
                    "IsError": True,
                    "ExpiresIn": None,
                    "TokenType": None,
                },
                401,
            )
        return json_response(
            {
                "AccessToken": pair[0],
                "RefreshToken": pair[1],
                "Error": None,
                "ErrorDescription": None,
                "IsError": False,
                "ExpiresIn": emu.tokens.ttl,
                "TokenType": "Bearer",
            }
        )

    tokens = answers(ref("TokenResponseDto"), "a token pair (401 with IsError for a bad one)")
    tokens[401] = {
        "description": "not a valid application token or refresh token",
        "content": {"application/json": {"schema": ref("TokenResponseDto")}},
    }

    @router.post(
        "/ApiLogin",
        responses=tokens,
        openapi_extra=form_body({"authCode": "the application token"}, "urlencoded form"),
    )
    async def api_login(request: Request) -> Response:
        """Form field ``authCode`` (the application token) → a token pair."""
        form = await request.form()
        code = form.get("authCode")
        app_name = emu.tokens.check_auth_code(code if isinstance(code, str) else None)
        pair = emu.tokens.issue(app_name) if app_name else None
        return token_answer(pair, "the application token (authCode) is not valid")

    @router.post(
        "/ApiRefresh",
        responses=tokens,
        openapi_extra={
            **form_body({"refreshToken": "the refresh token"}, "or the header refreshToken"),
            "parameters": [
                {
                    "name": "refreshToken",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "the refresh token (or the form field)",
                }
            ],
        },
    )
    async def api_refresh(request: Request) -> Response:
        """Header (or form field) ``refreshToken`` → a new pair; the old one is spent."""
        token = request.headers.get("refreshToken")
        if not token:
            form = await request.form()
            value = form.get("refreshToken")
            token = value if isinstance(value, str) else None
        pair = emu.tokens.refresh(token)
        return token_answer(pair, "the refresh token is not valid or was already used")

    return router


# --------------------------------------------------------------------------- datatypes
def _entity_routes(router: APIRouter, emu: Emulator, entity: EntitySpec) -> None:
    coll, name = entity.collection, entity.name
    store = emu.store
    _hook_routes(router, emu, entity)
    dto, many = ref(entity.dto), {"type": "array", "items": ref(entity.dto)}

    if name == ORGANISATION.name:

        @router.get(
            f"/{coll}/FindByUpdateDates/{{startDate}}/{{endDate}}",
            tags=[coll],
            responses=answers(many, "the organisations updated in [startDate, endDate)", 400),
        )
        async def find_by_update_dates(
            startDate: DateParam,
            endDate: DateParam,
            page: Page = 1,
            size: Size = DEFAULT_PAGE_SIZE,
        ) -> Response:
            """Organisations with ``startDate <= OrganisationUpdatedAt < endDate``."""
            bounds = []
            for label, text in (("startDate", startDate), ("endDate", endDate)):
                try:
                    bounds.append(format_ts(parse_ts(text)))
                except OutOfRange as exc:
                    raise bad_request(f"{label}: {exc}", label) from None
                except ValueError:
                    raise bad_request(f"{label}: {text!r} is not a date-time", label) from None
            col = q(entity.updated_at_field)
            rows = store.page_json(
                name, page, size, where=f"{col} >= ? AND {col} < ?", params=bounds
            )
            return raw_json_response(rows)

    if name == OPPORTUNITY.name:
        lines = {"type": "array", "items": ref(QUOTATIONLINE.dto)}

        @router.get(
            f"/{coll}/{{id}}/QuotationLines",
            tags=[coll],
            responses=answers(lines, "the opportunity's lines, by line id", 400, 404),
        )
        async def opportunity_lines(
            id: RecordId, page: Page = 1, size: Size = DEFAULT_PAGE_SIZE
        ) -> Response:
            """The quotation lines of one opportunity, by line id."""
            if not store.exists(name, id):
                raise not_found(f"{name} {id} does not exist")
            rows = store.page_json(
                QUOTATIONLINE.name,
                page,
                size,
                where=f"{q('QuotationLineOpportunityId')} = ?",
                params=(id,),
            )
            return raw_json_response(rows)

    @router.get(f"/{coll}", tags=[coll], responses=answers(many, "one page, by id", 400))
    async def list_records(page: Page = 1, size: Size = DEFAULT_PAGE_SIZE) -> Response:
        """One page of records, by id ascending; an empty array past the end."""
        return raw_json_response(store.page_json(name, page, size))

    @router.get(f"/{coll}/{{id}}", tags=[coll], responses=answers(dto, "the record", 400, 404))
    async def get_record(id: RecordId) -> Response:
        row = store.get_json(name, id)
        if row is None:
            raise not_found(f"{name} {id} does not exist")
        return raw_json_response(row)

    @router.post(
        f"/{coll}",
        tags=[coll],
        responses=answers({"type": "integer"}, "the new record's id", 400),
        openapi_extra=json_body(ref(f"{entity.dto}Write"), f"one {entity.dto}"),
    )
    async def create_record(request: Request) -> Response:
        """Insert one record; answers its new id."""
        raw = await read_json(request)
        try:
            rid, change = store.create(name, raw)
        except FieldError as exc:
            raise _field_error(exc) from None
        emu.hooks.notify([change])
        return json_response(rid)

    @router.put(
        f"/{coll}/{{id}}",
        tags=[coll],
        responses=answers(None, "replaced (no body)", 400, 404),
        openapi_extra=json_body(ref(f"{entity.dto}Write"), "the whole record"),
    )
    async def replace_record(id: RecordId, request: Request) -> Response:
        """Replace one record: fields not given become null."""
        raw = await read_json(request)
        try:
            change = store.replace(name, id, raw)
        except FieldError as exc:
            raise _field_error(exc) from None
        except NotFound as exc:
            raise not_found(str(exc)) from None
        emu.hooks.notify([change])
        return Response(status_code=200)

    upserts = {"type": "array", "items": ref(f"{entity.dto}Upsert"), "maxItems": PATCH_LIMIT}
    results = {
        "type": "array",
        "items": {"type": "string"},
        "description": 'per record, in order: its id, or "Error: …" (that record only failed)',
    }

    @router.patch(
        f"/{coll}",
        tags=[coll],
        responses=answers(results, "one id or error per record", 400),
        openapi_extra=json_body(upserts, f"up to {PATCH_LIMIT} records"),
    )
    async def upsert_records(request: Request) -> Response:
        """Bulk upsert; one id-or-error string per record, in order."""
        raw = await read_json(request)
        if not isinstance(raw, list):
            raise bad_request(f"PATCH /{coll} takes a JSON array of {entity.dto} objects")
        if len(raw) > PATCH_LIMIT:
            raise bad_request(
                f"PATCH /{coll} accepts at most {PATCH_LIMIT} records per call; got {len(raw)}"
            )
        results, changes = store.patch(name, raw)
        emu.hooks.notify(changes)
        return json_response(results)

    if name in DELETABLE:

        @router.delete(
            f"/{coll}/{{id}}", tags=[coll], responses=answers(None, "deleted (no body)", 400, 404)
        )
        async def delete_record(id: RecordId) -> Response:
            try:
                change = store.delete(name, id)
            except NotFound as exc:
                raise not_found(str(exc)) from None
            emu.hooks.notify([change])
            return Response(status_code=200)


# --------------------------------------------------------------------------- hooks


def _check_hook(entity: EntitySpec, raw: Any) -> tuple[str, str | None, bool, list[str]]:
    """Validate a ``{Entity}HookDto``: an http(s) ``TargetUrl``, known event and filters."""
    dto = f"{entity.name}HookDto"
    if not isinstance(raw, dict):
        raise bad_request(f"expected a {dto} object", dto)
    url = raw.get("TargetUrl")
    if not isinstance(url, str) or not url:
        raise bad_request("TargetUrl: required, an absolute http(s) URL", "TargetUrl")
    if http_url_host(url) is None:
        raise bad_request(f"TargetUrl: {url!r} is not an absolute http(s) URL", "TargetUrl")
    event = raw.get("EventType")
    if event is not None and event not in HOOK_EVENTS:
        raise bad_request(
            f"EventType: {event!r} is not one of {', '.join(HOOK_EVENTS)}", "EventType"
        )
    enabled = raw.get("IsEnabled", True)
    if not isinstance(enabled, bool):
        raise bad_request("IsEnabled: expected true or false", "IsEnabled")
    filters = raw.get("Filter")
    if filters is None:
        filters = ["All"]
    if not isinstance(filters, list) or not all(isinstance(f, str) for f in filters):
        raise bad_request("Filter: expected an array of strings", "Filter")
    for f in filters:
        if f not in entity.hook_filters:
            raise bad_request(
                f"Filter: {f!r} is not one of {', '.join(entity.hook_filters)}", "Filter"
            )
    return url, event, enabled, list(filters)


def _hook_routes(router: APIRouter, emu: Emulator, entity: EntitySpec) -> None:
    coll, name = entity.collection, entity.name
    store = emu.store
    tag = f"{coll} hooks"
    hook, body = ref(f"{name}HookDto"), json_body(ref(f"{name}HookDtoWrite"), f"a {name}HookDto")

    def refresh() -> None:
        emu.hooks.set_hooks(store.hooks())

    @router.get(
        f"/{coll}/Hooks",
        tags=[tag],
        responses=answers({"type": "array", "items": hook}, "one page of hooks", 400),
    )
    async def list_hooks(page: Page = 1, size: Size = DEFAULT_PAGE_SIZE) -> Response:
        hooks = store.hooks(name)
        return json_response(hooks[(page - 1) * size : page * size])

    @router.post(
        f"/{coll}/Hooks",
        tags=[tag],
        responses=answers({"type": "integer", "format": "int64"}, "the new hook's id", 400),
        openapi_extra=body,
    )
    async def create_hook(request: Request) -> Response:
        url, event, enabled, filters = _check_hook(entity, await read_json(request))
        hid = store.save_hook(name, None, url, event, enabled, filters)
        refresh()
        return json_response(hid)

    @router.get(f"/{coll}/Hooks/{{id}}", tags=[tag], responses=answers(hook, "the hook", 400, 404))
    async def get_hook(id: HookId) -> Response:
        hook = store.hook(name, id)
        if hook is None:
            raise not_found(f"{name} hook {id} does not exist")
        return json_response(hook)

    @router.put(
        f"/{coll}/Hooks/{{id}}",
        tags=[tag],
        responses=answers(None, "replaced (no body)", 400, 404),
        openapi_extra=body,
    )
    async def update_hook(id: HookId, request: Request) -> Response:
        url, event, enabled, filters = _check_hook(entity, await read_json(request))
        try:
            store.save_hook(name, id, url, event, enabled, filters)
        except NotFound as exc:
            raise not_found(str(exc)) from None
        refresh()
        return Response(status_code=200)

    @router.delete(
        f"/{coll}/Hooks/{{id}}", tags=[tag], responses=answers(None, "deleted (no body)", 400, 404)
    )
    async def delete_hook(id: HookId) -> Response:
        try:
            store.delete_hook(name, id)
        except NotFound as exc:
            raise not_found(str(exc)) from None
        refresh()
        return Response(status_code=200)


# --------------------------------------------------------------------------- /Queries
def _extra_routes(router: APIRouter, emu: Emulator) -> None:
    rows = {"type": "array", "items": {"anyOf": [ref(e.dto) for e in ENTITIES.values()]}}

    @router.get(
        "/Queries", tags=["Queries"], responses=answers(rows, "one page of rows of one table", 400)
    )
    async def run_query(
        script: Annotated[str, Query(description="SELECT * FROM <table> [WHERE …] [ORDER BY …]")],
        page: Page = 1,
        size: Size = DEFAULT_PAGE_SIZE,
    ) -> Response:
        """A read-only SELECT over one table (see ``queries.py`` for what is accepted)."""
        try:
            query = compile_script(script)
        except QueryError as exc:
            raise bad_request(f"script: {exc}", "script") from None
        rows = emu.store.page_json(
            query.entity.name, page, size, where=query.where, params=query.params, order=query.order
        )
        return raw_json_response(rows)


# --------------------------------------------------------------------------- controls
def _emulator_controls(emu: Emulator) -> APIRouter:
    """Emulator-only controls beside the shared ones (same prefix, same host check)."""
    router = APIRouter(prefix=CONTROLS_PREFIX, tags=["controls"])

    @router.get("/hook-deliveries")
    async def hook_deliveries(request: Request) -> Response:
        """Every delivery attempt (newest last) and how many wait for a (re)try."""
        require_local(request)
        return json_response({"pending": emu.hooks.pending(), "attempts": emu.hooks.deliveries()})

    @router.put("/hook-retry")
    async def put_hook_retry(request: Request, body: HookRetrySetting) -> Response:
        """Tune delivery retries (tests shorten the wait); reset restores the defaults."""
        require_local(request)
        emu.hooks.backoff = body.backoff
        emu.hooks.max_attempts = body.max_attempts
        return json_response(body.model_dump())

    @router.put("/corrupt/{entity}/{rid}")
    async def corrupt(entity: str, rid: int, request: Request) -> Response:
        """Serve these field values in the record's JSON as they are, bypassing every check.

        Plays a live API that answers malformed data (``"yesterday"`` as a date, a
        name cut inside an emoji); the next write of the record undoes it.
        """
        require_local(request)
        if entity not in ENTITIES:
            raise not_found(f"no datatype {entity!r}")
        try:  # the standard library, unlike orjson, reads a lone surrogate
            fields = json.loads(await request.body())
        except ValueError as exc:
            raise bad_request(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(fields, dict):
            raise bad_request("the body must be an object of field values")
        try:
            emu.store.corrupt(entity, rid, fields)
        except FieldError as exc:
            raise _field_error(exc) from None
        except NotFound as exc:
            raise not_found(str(exc)) from None
        return json_response({"corrupted": sorted(fields)})

    @router.get("/rate-limit")
    async def get_rate_limit(request: Request) -> Response:
        require_local(request)
        return json_response({"limit": emu.limiter.limit, "window_seconds": emu.limiter.window})

    @router.put("/rate-limit")
    async def put_rate_limit(request: Request, body: RateLimitSetting) -> Response:
        """Change the limit at run time (0 = off); every window starts empty."""
        require_local(request)
        emu.limiter.set_limit(body.limit)
        return json_response({"limit": emu.limiter.limit, "window_seconds": emu.limiter.window})

    @router.put("/auth-code")
    async def put_auth_code(request: Request, body: AuthCodeSetting) -> Response:
        """Accept another application token and revoke every token issued so far (a
        revoked token in webCRM); ``null`` restores the configured one."""
        require_local(request)
        emu.tokens.replace_auth_code(body.auth_code)
        return json_response({"revoked": True})

    @router.post("/expire-tokens")
    async def expire_tokens(request: Request) -> Response:
        """Expire every access token now (refresh tokens stay valid)."""
        require_local(request)
        return json_response({"expired": emu.tokens.expire_all()})

    @router.get("/stats")
    async def stats(request: Request) -> Response:
        """Rows per table (benchmarks check the seed with it)."""
        require_local(request)
        return json_response({name: emu.store.count(name) for name in ENTITIES})

    return router
