"""The console's pages and buttons (docs/console.md).

Server-rendered Jinja2 pages; every filter is a query parameter, so a page is a
bookmark. htmx (vendored in ``static/``) only refreshes the overview's figures in place.
Every button is a form POST with the session's CSRF token that answers with a redirect
back to the page (POST/redirect/GET), so a reload never repeats an action and the
result shows at once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from shopsync.config import switches
from shopsync.config.model import Datatype
from shopsync.engine.labels import record_label, snapshot_label
from shopsync.engine.streams import STREAMS
from shopsync.service.console import security
from shopsync.service.console.state import Console
from shopsync.store import console_queries as cq
from shopsync.store import console_search as cs

HERE = Path(__file__).parent
PAGE = 50
"""Rows per page of a listing."""
SOURCE = {"to_webshop": "webcrm", "to_webcrm": "webshop"}
"""A direction's source system: waiting and put-aside records are counted under it."""
DIRECTION_OF_TARGET = {"webshop": "to_webshop", "webcrm": "to_webcrm"}
TARGET_OF_DIRECTION = {v: k for k, v in DIRECTION_OF_TARGET.items()}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes Chromium send `Origin: null`
    "Cache-Control": "no-store",
}
REAUTH = (
    "webCRM refused the application token, so nothing is synced. Create a new token in "
    "webCRM under Configuration › Integration › API, put it in SHOPSYNC_WEBCRM_AUTH_CODE "
    "(or [webcrm] auth_code in the configuration file) and restart shopsync serve."
)


def _ago(epoch: float | None) -> str:
    if not epoch:
        return "never"
    seconds = max(time.time() - epoch, 0)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "never"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        parsed = value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _ago(parsed.timestamp())


def _bars(series: list[tuple[str, int]]) -> dict[str, Any]:
    """Geometry of a small bar chart: 30 bars of 4 px in a 150 × 32 box."""
    top = max((n for _, n in series), default=0) or 1
    bars = []
    for i, (day, n) in enumerate(series):
        h = 0 if n == 0 else max(round(30 * n / top), 1)
        bars.append({"x": i * 5, "y": 31 - h, "h": h, "day": day, "n": n})
    return {"bars": bars, "total": sum(n for _, n in series), "top": top}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _datatype(value: str | None) -> str | None:
    return value if value in {dt.value for dt in Datatype} else None


class Pages:
    """The routes, bound to one :class:`Console`."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.service = console.service
        serve = console.file_config.serve
        self.admin_token = serve.admin_token.get_secret_value() if serve.admin_token else None
        from shopsync.service import secrets_store

        self.signer = security.Signer(
            secrets_store.get_or_create(console.inst, "console:session_key")
        )
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(ago=_ago, when=_when, datatypes=[dt.value for dt in Datatype])

    # ---------------------------------------------------------------- plumbing
    def _session(self, request: Request) -> security.Session:
        found = self.signer.loads(request.cookies.get(security.COOKIE))
        return found or security.new_session()

    def _gate(self, request: Request) -> tuple[security.Session, Response | None]:
        """The visitor's session, or the answer when they may not see the page."""
        session = self._session(request)
        if not security.host_allowed(request, loopback_only=self.admin_token is None):
            return session, self._plain("This console answers only to 127.0.0.1.", 403)
        if self.admin_token is not None and not session.signed_in:
            if request.method != "GET":
                return session, self._plain("Sign in first.", 403)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return session, self._cookie(
                RedirectResponse("/login?" + urlencode({"next": target}), status_code=303),
                session,
                request,
            )
        return session, None

    async def _checked_form(
        self, request: Request
    ) -> tuple[security.Session, dict[str, str], Response | None]:
        session, refused = self._gate(request)
        form = {k: str(v) for k, v in (await request.form()).items()}
        if refused is not None:
            return session, form, refused
        if session.fresh or not security.same_origin(request):
            return session, form, self._plain("Refused: not sent from this console.", 403)
        if not security.token_matches(form.get("csrf", ""), session.csrf):
            return session, form, self._plain("Refused: the form's token does not match.", 403)
        return session, form, None

    def _cookie(
        self, response: Response, session: security.Session, request: Request | None = None
    ) -> Response:
        if session.fresh:
            https = request is not None and (
                request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
            )
            response.set_cookie(
                security.COOKIE,
                self.signer.dumps(session),
                httponly=True,
                samesite="strict",
                secure=https,  # behind a TLS proxy: never sent over plain HTTP
                path="/",
            )
        for k, v in HEADERS.items():
            response.headers[k] = v
        return response

    def _plain(self, text: str, status: int) -> Response:
        response = HTMLResponse(f"<!doctype html><title>shopsync</title><p>{text}</p>", status)
        for k, v in HEADERS.items():
            response.headers[k] = v
        return response

    def _render(
        self, request: Request, session: security.Session, template: str, **ctx: Any
    ) -> Response:
        systems = self.service.scheduler.systems
        webcrm = systems["webcrm"]
        refused = webcrm.ok is False and webcrm.reason.startswith("refused")
        html = self.env.get_template(template).render(
            request=request,
            path=request.url.path,
            csrf=session.csrf,
            signed_in=session.signed_in and self.admin_token is not None,
            reauth=REAUTH if refused else None,
            msg=request.query_params.get("msg", "")[:300],
            **ctx,
        )
        return self._cookie(HTMLResponse(html), session, request)

    @staticmethod
    def _back(request: Request, form: dict[str, str], msg: str) -> Response:
        """Redirect to the page the form came from (only a path of this console)."""
        back = form.get("back") or "/"
        parts = urlsplit(back)
        if parts.scheme or parts.netloc or not back.startswith("/"):
            back = "/"
        query = [(k, v) for k, v in _pairs(parts.query) if k != "msg"] + [("msg", msg)]
        return RedirectResponse(f"{parts.path}?{urlencode(query)}", status_code=303)

    # ---------------------------------------------------------------- overview
    def overview_data(self) -> dict[str, Any]:
        console, service = self.console, self.service
        scheduler = service.scheduler
        if self._runs_to_ingest():
            with console.writer() as w:
                cq.ingest_runs(w)
                w.commit()
        with console.inst.session() as s:
            counts = cq.counts(s, console.link_counts(s))
            daily = cq.daily_updates(s)
            stored = cq.switches(s)
            runs = cq.last_runs(s, 1)
            sweeps = cq.meta_values(s, [f"sweep:{dt.value}" for dt in Datatype])
        config = switches.effective(console.file_config, stored)
        pending = scheduler.pending()
        now_mono = time.monotonic()
        last_db_run = runs[0].finished_at if runs else None
        rows = []
        for dt in Datatype:
            linked = counts.links.get((dt.value, "active"), 0)
            unlinked = sum(
                n for (d, st), n in counts.links.items() if d == dt.value and st != "active"
            )
            work = pending.get(dt)
            if work is not None:
                nxt = f"queued ({work.kind}), in {max(work.due - now_mono, 0):.0f} s"
            else:
                nxt = f"at the next poll (every {console.file_config.serve.poll_seconds:g} s)"
            last = console.last_run.get(dt.value)
            directions = []
            for direction in switches.DIRECTIONS:
                source = SOURCE[direction]
                share = getattr(config.datatype(dt), direction)
                directions.append(
                    {
                        "name": direction,
                        "label": "webCRM → webshop"
                        if direction == "to_webshop"
                        else "webshop → webCRM",
                        "enabled": share.enabled,
                        "full_sync": share.full_sync,
                        "waiting": counts.inbox.get((dt.value, source, True), 0),
                        "put_aside": counts.put_aside.get((dt.value, source), 0),
                        "updates": counts.updates.get((dt.value, direction), 0),
                        "chart": _bars(daily.get((dt.value, direction)) or cq.no_updates()),
                    }
                )
            sweep = sweeps.get(f"sweep:{dt.value}") if STREAMS[dt].webcrm_full_scan else None
            rows.append(
                {
                    "dt": dt.value,
                    "linked": linked,
                    "unlinked": unlinked,
                    "last_run": _ago(last) if last else _when(last_db_run),
                    "next_run": nxt,
                    "directions": directions,
                    "sweep": _when(sweep) if STREAMS[dt].webcrm_full_scan else None,
                }
            )
        budget = service.budget
        return {
            "rows": rows,
            "budget_used": budget.in_window(),
            "budget_limit": budget.limiter.limit,
            "budget_reserve": budget.reserve,
            "systems": [
                {"name": name, "ok": st.ok, "reason": st.reason, "at": st.at}
                for name, st in scheduler.systems.items()
            ],
            "poll_seconds": console.file_config.serve.poll_seconds,
            "hooks": dict(service.hooks_state),
            "runs_done": scheduler.runs,
            "running": bool(service.metrics.registry.get_sample_value("shopsync_run_in_progress")),
            "stopping": scheduler.stopping,
            "console_error": console.last_error,
        }

    def _runs_to_ingest(self) -> bool:
        with self.console.inst.session() as s:
            return cq.runs_to_ingest(s)

    def overview(self, request: Request) -> Response:
        session, refused = self._gate(request)
        if refused is not None:
            return refused
        with self.console.inst.session() as s:
            stored = cq.switches(s)
        return self._render(
            request,
            session,
            "overview.html",
            title="Overview",
            o=self.overview_data(),
            switches=switches.listing(self.console.file_config, stored),
        )

    def overview_fragment(self, request: Request) -> Response:
        session, refused = self._gate(request)
        if refused is not None:
            return refused
        return self._render(request, session, "_overview.html", o=self.overview_data())

    async def set_switch(self, request: Request) -> Response:
        _session, form, refused = await self._checked_form(request)
        if refused is not None:
            return refused
        key, value = form.get("key", ""), form.get("value", "")
        if key not in switches.KEYS or value not in ("on", "off", "file"):
            return self._plain("No such switch.", 400)
        with self.console.writer() as s:
            cq.set_switch(s, key, None if value == "file" else value == "on")
            s.commit()
        shown = {"on": "on", "off": "off", "file": "the configuration file's value"}[value]
        return self._back(request, form, f"{key} set to {shown}; the next run uses it")

    async def sync_now(self, request: Request) -> Response:
        _session, form, refused = await self._checked_form(request)
        if refused is not None:
            return refused
        self.console.request_run(list(Datatype))
        return self._back(request, form, "a run queued for every link")

    # ---------------------------------------------------------------- activity
    def activity(self, request: Request) -> Response:
        session, refused = self._gate(request)
        if refused is not None:
            return refused
        q = request.query_params
        dt = _datatype(q.get("datatype"))
        direction = q.get("direction") if q.get("direction") in TARGET_OF_DIRECTION else None
        before = _int(q.get("before"))
        with self.console.inst.session() as s:
            rows = cq.activity(
                s,
                datatype=dt,
                target=TARGET_OF_DIRECTION.get(direction or ""),
                before=before,
                limit=PAGE,
            )
        more = rows[-1].id if len(rows) == PAGE else None
        return self._render(
            request, session, "activity.html", title="Activity", rows=rows,
            datatype=dt or "", direction=direction or "",
            older=_query(datatype=dt, direction=direction, before=more) if more else None,
        )  # fmt: skip

    # ---------------------------------------------------------------- problems
    def problems(self, request: Request) -> Response:
        session, refused = self._gate(request)
        if refused is not None:
            return refused
        q = request.query_params
        dt = _datatype(q.get("datatype"))
        show_ignored = q.get("ignored") == "1"
        after_a, after_w = _int(q.get("after_aside")) or 0, _int(q.get("after_waiting")) or 0
        cfg = self.console.file_config
        with self.console.inst.session() as s:
            ignored = cq.ignored(s)
            aside = cq.put_aside_page(s, dt, after_a, PAGE)
            waiting = cq.waiting_page(s, dt, after_w, PAGE)
            others: dict[tuple[str, str, str], Any] = {}
            for rows in (aside, waiting):
                keys = {(r.datatype, r.system) for r in rows}
                for d, system in keys:
                    found = cq.links_of(
                        s,
                        d,
                        system,
                        [r.record_id for r in rows if (r.datatype, r.system) == (d, system)],
                    )
                    for rid, link in found.items():
                        others[(d, system, rid)] = link

        def item(r: Any, reason: str) -> dict[str, Any]:
            key = (r.datatype, r.system, r.record_id)
            link = others.get(key)
            other = None
            if link is not None:
                other = link.webshop_id if r.system == "webcrm" else link.webcrm_id
            return {
                "datatype": r.datatype, "system": r.system, "record_id": r.record_id,
                "other_system": "webshop" if r.system == "webcrm" else "webcrm",
                "other_id": other, "label": record_label(cfg, r.datatype, r.system, r.data),
                "reason": reason, "attempts": r.attempts, "ignored": key in ignored,
            }  # fmt: skip

        aside_items = [item(r, r.reason) for r in aside]
        waiting_items = [item(r, r.waiting_reason or "") for r in waiting]
        hidden = sum(1 for i in aside_items + waiting_items if i["ignored"])
        if not show_ignored:
            aside_items = [i for i in aside_items if not i["ignored"]]
            waiting_items = [i for i in waiting_items if not i["ignored"]]
        return self._render(
            request, session, "problems.html", title="Problems",
            aside=aside_items, waiting=waiting_items, datatype=dt or "",
            show_ignored=show_ignored, hidden=hidden,
            more_aside=_query(datatype=dt, after_aside=aside[-1].id) if len(aside) == PAGE else None,
            more_waiting=(
                _query(datatype=dt, after_waiting=waiting[-1].id) if len(waiting) == PAGE else None
            ),
        )  # fmt: skip

    async def retry(self, request: Request) -> Response:
        _session, form, refused = await self._checked_form(request)
        if refused is not None:
            return refused
        dt = _datatype(form.get("datatype"))
        system = form.get("system")
        if dt is None or system not in ("webcrm", "webshop") or not form.get("record_id"):
            return self._plain("No such record.", 400)
        try:
            msg = self.console.retry_one(Datatype(dt), system, form["record_id"])
        except Exception as exc:  # a system refused or is unreachable: say so
            msg = _could_not("read the record again", exc)
        return self._back(request, form, msg)

    async def retry_all(self, request: Request) -> Response:
        _session, form, refused = await self._checked_form(request)
        if refused is not None:
            return refused
        try:
            n = self.console.retry_all()
            msg = f"{n} put-aside record(s) read again and queued for a run"
        except Exception as exc:
            msg = _could_not("read the records again", exc)
        return self._back(request, form, msg)

    async def ignore(self, request: Request) -> Response:
        _session, form, refused = await self._checked_form(request)
        if refused is not None:
            return refused
        dt = _datatype(form.get("datatype"))
        system = form.get("system")
        if dt is None or system not in ("webcrm", "webshop") or not form.get("record_id"):
            return self._plain("No such record.", 400)
        on = form.get("on", "1") == "1"
        with self.console.writer() as s:
            cq.set_ignored(s, dt, system, form["record_id"][:128], on)
            s.commit()
        word = "ignored" if on else "shown again"
        return self._back(request, form, f"{dt} {system}:{form['record_id']} {word}")

    # ---------------------------------------------------------------- links
    def links(self, request: Request) -> Response:
        session, refused = self._gate(request)
        if refused is not None:
            return refused
        q = request.query_params
        dt = _datatype(q.get("datatype"))
        needle = (q.get("q") or "").strip()[:200]
        before = _int(q.get("before"))
        cfg = self.console.file_config
        with self.console.inst.session() as s:
            found = (
                cs.search(s, needle, dt, PAGE)
                if needle
                else list(cq.links_page(s, dt, before, PAGE))
            )
            snaps = cq.snapshots(s, [link.id for link in found])
        rows = [
            {
                "link": link,
                "label": snapshot_label(
                    cfg, Datatype(link.datatype), snaps[link.id].props if link.id in snaps else None
                ),
            }
            for link in found
        ]
        older = None
        if not needle and len(found) == PAGE:
            older = _query(datatype=dt, before=found[-1].id)
        return self._render(
            request, session, "links.html", title="Links", rows=rows, q=needle,
            datatype=dt or "", older=older,
        )  # fmt: skip

    def link(self, request: Request, link_id: int) -> Response:
        session, refused = self._gate(request)
        if refused is not None:
            return refused
        from shopsync.store.models import Link

        cfg = self.console.file_config
        with self.console.inst.session() as s:
            link = s.get(Link, link_id)
            if link is None:
                return self._render(
                    request, session, "link.html", title="Link not found", link=None
                )
            snap = cq.snapshots(s, [link.id]).get(link.id)
            acts = cq.activity(s, link_id=link.id, limit=PAGE)
        props = snap.props if snap else {}
        values = [
            {"prop": prop, "c": _shown(pair.get("c")), "s": _shown(pair.get("s"))}
            for prop, pair in sorted(props.items())
            if isinstance(pair, dict)
        ]
        return self._render(
            request, session, "link.html", title=f"Link {link.id}", link=link,
            label=snapshot_label(cfg, Datatype(link.datatype), props), values=values,
            activity=acts, snap=snap,
        )  # fmt: skip

    # ---------------------------------------------------------------- sign-in
    def login_form(self, request: Request) -> Response:
        session = self._session(request)
        return self._render(
            request, session, "login.html", title="Sign in", next=_safe_next(request.query_params.get("next")),
            error=None, token_required=self.admin_token is not None,
        )  # fmt: skip

    async def login(self, request: Request) -> Response:
        session = self._session(request)
        form = {k: str(v) for k, v in (await request.form()).items()}
        if session.fresh or not security.same_origin(request):
            return self._plain("Refused: not sent from this console.", 403)
        if not security.token_matches(form.get("csrf", ""), session.csrf):
            return self._plain("Refused: the form's token does not match.", 403)
        if self.admin_token is None:
            return RedirectResponse("/", status_code=303)
        if not security.token_matches(form.get("token", ""), self.admin_token):
            response = self._render(
                request, session, "login.html", title="Sign in", next=_safe_next(form.get("next")),
                error="That is not the admin token.", token_required=True,
            )  # fmt: skip
            response.status_code = 403
            return response
        fresh = security.new_session(signed_in=True)  # a new id after sign-in
        return self._cookie(
            RedirectResponse(_safe_next(form.get("next")), status_code=303), fresh, request
        )

    async def logout(self, request: Request) -> Response:
        _session, _form, refused = await self._checked_form(request)
        if refused is not None:
            return refused
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(security.COOKIE, path="/")
        return response


def _shown(value: Any) -> str:
    from shopsync.engine.labels import text

    return text(value)


def _safe_next(value: str | None) -> str:
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    return value


def _pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=False)


def _query(**params: Any) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def mount(app: FastAPI, console: Console) -> None:
    """Add the console's routes and static files to the service's app."""
    pages = Pages(console)
    router = APIRouter(include_in_schema=False)
    router.add_api_route("/", pages.overview, methods=["GET"])
    router.add_api_route("/fragments/overview", pages.overview_fragment, methods=["GET"])
    router.add_api_route("/switches", pages.set_switch, methods=["POST"])
    router.add_api_route("/sync", pages.sync_now, methods=["POST"])
    router.add_api_route("/activity", pages.activity, methods=["GET"])
    router.add_api_route("/problems", pages.problems, methods=["GET"])
    router.add_api_route("/problems/retry", pages.retry, methods=["POST"])
    router.add_api_route("/problems/retry-all", pages.retry_all, methods=["POST"])
    router.add_api_route("/problems/ignore", pages.ignore, methods=["POST"])
    router.add_api_route("/links", pages.links, methods=["GET"])
    router.add_api_route("/links/{link_id}", pages.link, methods=["GET"])
    router.add_api_route("/login", pages.login_form, methods=["GET"])
    router.add_api_route("/login", pages.login, methods=["POST"])
    router.add_api_route("/logout", pages.logout, methods=["POST"])
    app.include_router(router)
    app.mount("/console-static", StaticFiles(directory=HERE / "static"), name="console-static")


def _could_not(what: str, exc: Exception) -> str:
    """A failure to show on the page: what failed and why, secrets masked."""
    from shopsync.logs import scrub

    return f"could not {what}: {scrub(str(exc))[:200]}"
