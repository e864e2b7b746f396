"""The service's parts in-process, with fakes: fast, and on a clock only the test moves."""

from __future__ import annotations

import collections
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shopsync.config.model import Config, Datatype, ServeConfig
from shopsync.contract.signature import DELIVERY_HEADER, SIGNATURE_HEADER, sign
from shopsync.engine.report import RunReport
from shopsync.service import hooks_webcrm, hooks_webshop
from shopsync.service.budget import Budget, kind_of
from shopsync.service.metrics import Metrics
from shopsync.service.queue import DEBOUNCE, Key, Work
from shopsync.service.scheduler import Scheduler

# --------------------------------------------------------------------------- config


def test_serve_defaults_and_clear_errors() -> None:
    serve = Config().serve
    assert (serve.listen, serve.public_url, serve.poll_seconds) == ("127.0.0.1:8765", None, 30.0)
    assert (serve.host, serve.port) == ("127.0.0.1", 8765)
    assert ServeConfig(listen="[::1]:9000").host == "::1"
    assert ServeConfig(public_url="https://sync.example.com/").public_url == (
        "https://sync.example.com"
    )
    for bad, said in [
        ({"listen": "8765"}, "is not host:port"),
        ({"listen": "127.0.0.1:99999"}, "outside 1..65535"),
        ({"public_url": "sync.example.com"}, "is not an http(s) URL"),
        ({"poll_seconds": 0}, "greater than or equal to 1"),
    ]:
        with pytest.raises(ValidationError, match=re.escape(said)):
            ServeConfig(**bad)


# --------------------------------------------------------------------------- webCRM hooks
@dataclass
class FakeHooks:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    next_id: int = 100

    def hooks(self, entity: str) -> list[dict[str, Any]]:
        return [dict(h) for h in self.rows.get(entity, [])]

    def create_hook(self, entity: str, hook: dict[str, Any]) -> int:
        self.next_id += 1
        self.rows.setdefault(entity, []).append({**hook, "Id": self.next_id})
        self.calls.append(f"create {entity}")
        return self.next_id

    def update_hook(self, entity: str, id: int, hook: dict[str, Any]) -> None:
        rows = self.rows[entity]
        rows[[h["Id"] for h in rows].index(id)] = {**hook, "Id": id}
        self.calls.append(f"update {entity}")

    def delete_hook(self, entity: str, id: int) -> None:
        self.rows[entity] = [h for h in self.rows[entity] if h["Id"] != id]
        self.calls.append(f"delete {entity}")


def test_registration_creates_once_then_keeps_repairs_and_removes_duplicates() -> None:
    api = FakeHooks()
    other = {"Id": 1, "TargetUrl": "https://erp.example/x", "EventType": "Update",
             "IsEnabled": True, "Filter": ["All"]}  # fmt: skip
    api.rows["Organisation"] = [dict(other)]
    first = hooks_webcrm.register(api, "https://sync.example", "tok")
    assert (first.created, first.kept) == (12, 0)
    again = hooks_webcrm.register(api, "https://sync.example", "tok")
    assert (again.created, again.kept, again.repaired, again.removed) == (0, 12, 0, 0)
    # Broken by hand: one disabled, one duplicated, one left at an old address.
    org = api.rows["Organisation"]
    org[1]["IsEnabled"] = False
    org.append({**org[2], "Id": 999})
    api.rows["Product"][0]["TargetUrl"] = "https://old.example/hooks/webcrm/tok"
    fixed = hooks_webcrm.register(api, "https://sync.example", "tok")
    assert (fixed.repaired, fixed.removed, fixed.created) == (2, 1, 0)
    for entity in hooks_webcrm.ENTITIES:
        mine = [h for h in api.rows[entity] if h["TargetUrl"].endswith("/hooks/webcrm/tok")]
        assert sorted(h["EventType"] for h in mine) == ["Create", "Delete", "Update"]
        assert all(
            h["IsEnabled"] and h["TargetUrl"].startswith("https://sync.example/") for h in mine
        )
    assert other in api.rows["Organisation"]  # another integration's hook is left alone
    assert hooks_webcrm.unregister(api, "https://sync.example", "tok") == 12
    assert api.rows["Organisation"] == [other]


def test_a_hook_body_is_only_a_hint() -> None:
    hint = hooks_webcrm.hint_from({"EntityType": "Product", "EventType": "Delete", "Id": 5})
    assert (hint.datatypes, hint.record_id, hint.sweep) == ((Datatype.products,), "5", False)
    line = hooks_webcrm.hint_from({"EntityType": "QuotationLine", "QuotationLineId": 7, "Id": 1})
    assert (line.datatypes, line.record_id) == ((Datatype.order_lines,), "7")
    # An id that is no webCRM id is not used: the datatype is read, a delete by a sweep.
    for bad in ("5; DROP", -3, 0, True, "", 1.5, [5]):
        hint = hooks_webcrm.hint_from({"EntityType": "Product", "EventType": "Delete", "Id": bad})
        assert (hint.record_id, hint.sweep) == (None, True), bad
    assert (
        hooks_webcrm.hint_from({"EntityType": "Organisation", "EventType": "Delete"}).sweep is False
    )
    for junk in (None, [], {"EntityType": "Person"}, {"EntityType": 3}):
        assert hooks_webcrm.hint_from(junk).datatypes == tuple(Datatype)


# --------------------------------------------------------------------------- webhooks
def _signed(
    secret: str, at: datetime, event: str = "order.updated"
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"event": event, "id": "ord_1", "occurred_at": at.isoformat()}).encode()
    return body, {SIGNATURE_HEADER: sign(secret, body), DELIVERY_HEADER: "dlv_1"}


def test_verifier_accepts_once_and_refuses_unsigned_stale_and_replayed() -> None:
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    verifier = hooks_webshop.Verifier("s" * 32, now=lambda: now)
    body, headers = _signed("s" * 32, now - timedelta(minutes=3))
    ok = verifier.check(body, headers)
    assert ok.accepted and ok.datatypes == (Datatype.orders,) and ok.record_id == "ord_1"
    assert verifier.check(body, headers).reason.endswith("(a replay)")
    assert not verifier.check(body, {}).accepted
    assert not verifier.check(body, {**headers, SIGNATURE_HEADER: sign("t" * 32, body)}).accepted
    stale, stale_headers = _signed("s" * 32, now - timedelta(minutes=11))
    assert "window" in verifier.check(stale, stale_headers).reason
    future, future_headers = _signed("s" * 32, now + timedelta(minutes=11))
    assert not verifier.check(future, future_headers).accepted
    assert not hooks_webshop.Verifier(None).check(body, headers).accepted
    # A genuine call whose id is no usable record id is still a hint, for the datatype.
    odd = json.dumps({"event": "customer.deleted", "id": "a/b", "occurred_at": now.isoformat()})
    odd_headers = {SIGNATURE_HEADER: sign("s" * 32, odd.encode()), DELIVERY_HEADER: "dlv_2"}
    verdict = verifier.check(odd.encode(), odd_headers)
    assert verdict.accepted and verdict.datatypes == (Datatype.customers,)
    assert verdict.record_id is None


# --------------------------------------------------------------------------- budget
def test_every_request_has_a_budget_kind() -> None:
    assert kind_of("POST /Auth/ApiLogin", "poll") == "auth"
    assert kind_of("POST /Organisations/Hooks", "poll") == "hooks"
    assert kind_of("PATCH /Organisations", "targeted") == "write"
    assert kind_of("GET /Products", "targeted") == "sweep"
    assert kind_of("GET /Queries", "targeted") == "targeted"
    assert kind_of("GET /Queries", "poll") == "poll"


@dataclass
class FakeLimiter:
    limit: int = 250
    free: int = 250

    def headroom(self) -> int:
        return self.free

    def in_window(self) -> int:
        return self.limit - self.free


@dataclass
class FakeClient:
    requests_by_endpoint: collections.Counter[str] = field(default_factory=collections.Counter)
    requests_made: int = 0
    responses_429: int = 0
    limiter: FakeLimiter = field(default_factory=FakeLimiter)

    def login(self) -> None:
        self.requests_by_endpoint["POST /Auth/ApiLogin"] += 1

    def capabilities(self) -> dict[str, Any]:
        return {}


def test_budget_accounts_deltas_by_kind() -> None:
    client = FakeClient()
    budget = Budget(client, client.limiter)
    client.requests_by_endpoint.update({"GET /Queries": 3, "PATCH /Organisations": 1})
    assert budget.account("targeted") == {"targeted": 3, "write": 1}
    client.requests_by_endpoint.update({"GET /Queries": 2})
    assert budget.account("poll") == {"poll": 2}
    assert budget.reserve == 50
    client.limiter.free = 49
    assert not budget.poll_may_start()


# --------------------------------------------------------------------------- scheduler
class FakeInstallation:
    """``Installation`` as the scheduler uses it; each run reports what ``answer`` says."""

    def __init__(self) -> None:
        self.webcrm = FakeClient()
        self.webshop = FakeClient()
        self.runs: list[tuple[list[Datatype] | None, bool]] = []
        self.records: list[Any] = []
        self.answer: list[RunReport] = []

    def sync(
        self, only: list[Datatype] | None, *, sweep: bool, on_progress: Any, records: Any = None
    ) -> RunReport:
        self.runs.append((None if only is None else list(only), sweep))
        self.records.append(records)
        return self.answer.pop(0) if self.answer else RunReport()

    @contextmanager
    def session(self) -> Any:
        yield FakeSession()


class FakeSession:
    def execute(self, *_a: Any) -> Any:
        return self

    def all(self) -> list[Any]:
        return []


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _scheduler(poll: float = 30.0) -> tuple[Scheduler, FakeInstallation, Clock]:
    inst, clock = FakeInstallation(), Clock()
    client = inst.webcrm
    sched = Scheduler(
        inst, ServeConfig(poll_seconds=poll), Metrics(), Budget(client, client.limiter),  # type: ignore[arg-type]
        clock=clock,
    )  # fmt: skip
    return sched, inst, clock


def _step(sched: Scheduler) -> bool:
    """One pass of the loop's decision: run what is due now, if anything."""
    chosen = sched._take_due(sched._clock())
    if chosen:
        sched._execute(chosen)
    return bool(chosen)


def test_hints_are_debounced_coalesced_and_run_in_dependency_order(monkeypatch: Any) -> None:
    import shopsync.service.scheduler as mod

    monkeypatch.setattr(mod.repo, "inbox_counts", lambda s: {})
    sched, inst, clock = _scheduler()
    sched.hint([Datatype.orders], source="webshop")
    clock.now += DEBOUNCE / 2
    sched.hint([Datatype.customers], source="webcrm")
    sched.hint([Datatype.orders], source="webcrm", sweep=False)
    assert not _step(sched)  # nothing due yet: the first hint waits DEBOUNCE
    clock.now += DEBOUNCE / 2
    # Orders are due; customers are not yet, but an order depends on its customer: the
    # customers' hook work goes along, and the engine works through them first.
    assert _step(sched)
    clock.now += DEBOUNCE
    assert not _step(sched)
    assert inst.runs == [([Datatype.customers, Datatype.orders], False)]
    # A steady stream of hints cannot postpone the work: its due time is the first one's.
    hinted = clock.now
    sched.hint([Datatype.products], source="webcrm", sweep=True)
    for _ in range(10):
        clock.now += DEBOUNCE / 5
        sched.hint([Datatype.products], source="webcrm")
        if _step(sched):
            break
    assert inst.runs[-1] == ([Datatype.products], True)
    assert clock.now - hinted <= DEBOUNCE + DEBOUNCE / 5 + 1e-9


def test_hook_work_goes_before_polls_and_polls_wait_for_the_reserve(monkeypatch: Any) -> None:
    import shopsync.service.scheduler as mod

    monkeypatch.setattr(mod.repo, "inbox_counts", lambda s: {})
    sched, inst, clock = _scheduler()
    sched._add([Key(dt) for dt in Datatype], Work("poll", clock.now))
    sched.hint([Datatype.customers], source="webcrm")
    clock.now += DEBOUNCE
    assert _step(sched)
    assert inst.runs == [([Datatype.customers], False)]  # the hook's datatype, first
    inst.webcrm.limiter.free = 10  # less than the reserve (50): the poll waits
    assert not _step(sched)
    inst.webcrm.limiter.free = 200
    clock.now += 1.0
    assert _step(sched)
    assert inst.runs[-1] == ([Datatype.products, Datatype.orders, Datatype.order_lines], False)
    inst.webcrm.limiter.free = 10  # hook work starts whatever the headroom
    sched.hint([Datatype.orders], source="webshop")
    clock.now += DEBOUNCE
    assert _step(sched)


def test_waiting_records_are_retried_right_after_their_upstream_was_written(
    monkeypatch: Any,
) -> None:
    import shopsync.service.scheduler as mod

    monkeypatch.setattr(mod.repo, "inbox_counts", lambda s: {})
    sched, inst, clock = _scheduler()
    report = RunReport()
    report.stats[Datatype.customers].created_in_webcrm = 1
    report.stats[Datatype.customers].updates_to_webcrm = 1
    report.stats[Datatype.orders].waiting = 1
    inst.answer = [report]
    sched.hint([Datatype.customers], source="webshop")
    clock.now += DEBOUNCE
    assert _step(sched)
    assert _step(sched)  # the follow-up is due at once
    assert inst.runs == [([Datatype.customers], False), ([Datatype.orders], False)]
    assert not _step(sched)  # it wrote nothing: no further follow-up


def test_a_failed_run_is_retried_with_its_hints(monkeypatch: Any) -> None:
    import shopsync.service.scheduler as mod
    from shopsync.connectors.webcrm.client import WebcrmAuthError

    monkeypatch.setattr(mod.repo, "inbox_counts", lambda s: {})
    sched, inst, clock = _scheduler()

    def refused(*_a: Any, **_k: Any) -> RunReport:
        raise WebcrmAuthError("login refused; re-authorise: create a new token")

    monkeypatch.setattr(inst, "sync", refused)
    sched.hint([Datatype.customers], source="webcrm")
    clock.now += DEBOUNCE
    assert _step(sched)
    assert "re-authorise" in sched.systems["webcrm"].reason and sched.systems["webcrm"].ok is False
    assert Datatype.customers in sched.pending()
    assert not _step(sched)  # backing off
    clock.now += 2.0
    assert _step(sched)


def test_a_webhook_secret_of_the_wrong_length_is_named_without_its_value(tmp_path: Any) -> None:
    from shopsync.config.loader import ConfigError, load_config

    path = tmp_path / "shopsync.toml"
    path.write_text('[webshop]\nwebhook_secret = "short-one"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert "webshop.webhook_secret" in str(info.value) and "16 to 256" in str(info.value)
    assert "short-one" not in str(info.value)


@dataclass
class FakeShopHooks:
    subs: list[dict[str, Any]] | None = field(default_factory=list)
    n: int = 0

    def webhooks(self) -> list[dict[str, Any]] | None:
        return None if self.subs is None else [dict(s) for s in self.subs]

    def subscribe_webhook(self, url: str, events: Any, secret: str) -> dict[str, Any]:
        assert self.subs is not None
        self.n += 1
        sub = {"id": f"whk_{self.n}", "url": url, "events": list(events)}
        self.subs.append(sub)
        return sub

    def delete_webhook(self, id: str) -> None:
        assert self.subs is not None
        self.subs = [s for s in self.subs if s["id"] != id]


def test_the_shop_subscription_is_kept_while_its_secret_is_known_else_replaced() -> None:
    api = FakeShopHooks()
    stored: list[str] = []
    kw: dict[str, Any] = {"before_subscribing": stored.append}
    first = hooks_webshop.subscribe(
        api, "https://sync.example", "tok", known_id=None, known_secret=None, new_secret="a" * 20,
        **kw,
    )  # fmt: skip
    assert (first.kept, first.secret, stored) == (False, "a" * 20, ["a" * 20])
    again = hooks_webshop.subscribe(
        api, "https://sync.example", "tok", known_id=first.subscription_id,
        known_secret="a" * 20, new_secret="b" * 20, **kw,
    )  # fmt: skip
    assert (again.kept, again.secret, stored) == (True, "a" * 20, ["a" * 20])
    # Someone deleted it in the shop: a new one, whose secret is stored first.
    api.subs = []
    gone = hooks_webshop.subscribe(
        api, "https://sync.example", "tok", known_id=first.subscription_id,
        known_secret="a" * 20, new_secret="c" * 20, **kw,
    )  # fmt: skip
    assert (gone.kept, gone.secret, stored[-1]) == (False, "c" * 20, "c" * 20)
    # The secret was lost (a new state database): the old subscription is replaced.
    lost = hooks_webshop.subscribe(
        api, "https://sync.example", "tok", known_id=None, known_secret=None,
        new_secret="d" * 20, **kw,
    )  # fmt: skip
    assert (lost.removed, len(api.subs or [])) == (1, 1)
    assert hooks_webshop.unsubscribe(api, "https://sync.example", "tok") == 1
    none = FakeShopHooks(subs=None)
    assert not hooks_webshop.subscribe(
        none, "https://sync.example", "tok", known_id=None, known_secret=None, new_secret="e" * 20
    ).offered
