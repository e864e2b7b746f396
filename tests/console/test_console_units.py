"""The console's parts without a browser: switches, sign-in rules, search terms, per-day
update counts, the session cookie, and the migration chain."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import insert
from sqlalchemy.orm import Session

from shopsync.config import switches
from shopsync.config.model import Config, Datatype, ServeConfig
from shopsync.service.console import security
from shopsync.service.console.state import catch_up_terms
from shopsync.store import console_queries as cq
from shopsync.store import console_search as cs
from shopsync.store import db
from shopsync.store.models import Link, Run, Snapshot


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A migrated state database: SQLite, and PostgreSQL when a server answers."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = db.make_engine(url)
    db.ensure_current(engine, auto_upgrade=True)
    with Session(engine) as s:
        yield s
    engine.dispose()


def test_stored_switches_win_over_the_file_on_a_copy() -> None:
    config = Config()
    stored = {
        "customers.to_webshop.enabled": False,
        "orders.to_webcrm.full_sync": False,
        switches.WON_ONLY: True,
        "from.a.later_version": True,
    }
    run_config = switches.effective(config, stored)
    assert run_config.datatype(Datatype.customers).to_webshop.enabled is False
    assert run_config.datatype(Datatype.customers).to_webcrm.enabled is True
    assert run_config.datatype(Datatype.orders).to_webcrm.full_sync is False
    assert run_config.selective.only_won_opportunities is True
    assert config.customers.to_webshop.enabled is True  # the file's config is unchanged
    assert switches.effective(config, {}) is config
    shown = {sw.key: sw for sw in switches.listing(config, stored)}
    assert shown["customers.to_webshop.enabled"] == switches.Switch(
        "customers.to_webshop.enabled", False, True, True
    )
    assert shown["products.to_webcrm.enabled"].stored is False
    assert len(shown) == 17


@pytest.mark.parametrize("listen", ["0.0.0.0:8765", "192.168.1.5:80", "[::]:8765", "sync.lan:80"])
def test_a_listen_address_off_loopback_needs_an_admin_token(listen: str) -> None:
    with pytest.raises(ValidationError, match="admin_token"):
        ServeConfig(listen=listen)
    assert ServeConfig(listen=listen, admin_token=SecretStr("x" * 32)).admin_token is not None


@pytest.mark.parametrize("listen", ["127.0.0.1:8765", "127.0.0.2:1", "[::1]:8765", "localhost:80"])
def test_loopback_needs_no_token(listen: str) -> None:
    assert ServeConfig(listen=listen).loopback


def test_a_short_admin_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="16 characters"):
        ServeConfig(admin_token=SecretStr("short"))


def test_search_terms_are_the_label_words_and_the_whole_label() -> None:
    assert cs.terms_of("CON-1 · Konsolbord  Eg") == {"con-1 konsolbord eg", "konsolbord eg", "eg"}
    assert cs.terms_of("  ") == set()


def test_the_session_cookie_is_signed() -> None:
    signer = security.Signer("key")
    session = security.new_session(signed_in=True)
    value = signer.dumps(session)
    back = signer.loads(value)
    assert back is not None and (back.sid, back.csrf, back.signed_in) == (
        session.sid, session.csrf, True,
    )  # fmt: skip
    body, mac = value.rsplit(".", 1)
    forged = body.replace(body[:4], "AAAA") + "." + mac
    assert signer.loads(forged) is None
    assert security.Signer("other key").loads(value) is None
    assert signer.loads("garbage") is None


def _run(s: Session, status: str, finished: datetime | None, updates: int, **kw: Any) -> None:
    stats = {"stats": {"customers": {"updates_to_webshop": updates, "updates_to_webcrm": 1}}}
    s.add(Run(started_at=kw.get("started", finished or datetime.now(UTC)), finished_at=finished,
              status=status, mode="incr", stats=stats if finished else None))  # fmt: skip
    s.commit()


def test_updates_per_day_come_from_the_runs_once_each(session: Session) -> None:
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    _run(session, "ok", yesterday, 3)
    _run(session, "ok", now, 2)
    _run(session, "dry-run", now, 50)
    _run(session, "running", None, 0)  # a run in progress: waited for
    _run(session, "ok", now, 4)
    assert cq.ingest_runs(session) == 3
    session.commit()
    series = cq.daily_updates(session)
    to_shop = dict(series[("customers", "to_webshop")])
    assert to_shop[yesterday.date().isoformat()] == 3
    assert to_shop[now.date().isoformat()] == 2
    assert len(series[("customers", "to_webshop")]) == 30
    # Nothing is counted twice; the run in progress is counted once it has ended.
    assert cq.ingest_runs(session) == 0
    running = session.get(Run, 4)
    assert running is not None
    running.status, running.finished_at = "ok", now
    running.stats = {"stats": {"customers": {"updates_to_webshop": 7}}}
    session.commit()
    assert cq.ingest_runs(session) == 2
    session.commit()
    assert (
        dict(cq.daily_updates(session)[("customers", "to_webshop")])[now.date().isoformat()]
        == 2 + 7 + 4
    )


def test_a_run_killed_long_ago_does_not_hold_the_figures_back(session: Session) -> None:
    now = datetime.now(UTC)
    _run(session, "running", None, 0, started=now - timedelta(days=1))
    _run(session, "ok", now, 5)
    assert cq.ingest_runs(session) == 2


def test_search_finds_by_word_prefix_and_by_id(session: Session) -> None:
    now = datetime.now(UTC)
    rows = [
        {"id": i, "datatype": "products", "webcrm_id": str(i), "webshop_id": f"prd_{i}",
         "created_by": "webcrm", "state": "active", "created_at": now, "updated_at": now}
        for i in range(1, 201)
    ]  # fmt: skip
    session.execute(insert(Link), rows)
    session.execute(
        insert(Snapshot),
        [{"link_id": i, "props": {"sku": {"c": f"SKU-{i}", "s": f"SKU-{i}"},
                                  "name": {"c": f"Stol {i}", "s": f"Stol {i}"}},
          "webcrm_updated_at": now, "webshop_updated_at": now, "webshop_version": 1,
          "updated_at": now} for i in range(1, 201)],
    )  # fmt: skip
    session.commit()
    assert catch_up_terms(session, Config(), 10.0) == 200
    assert catch_up_terms(session, Config(), 10.0) == 0  # caught up
    assert [link.id for link in cs.search(session, "sku-17", None, 50)] == [17, 170, 171, 172,
        173, 174, 175, 176, 177, 178, 179]  # fmt: skip
    assert [link.id for link in cs.search(session, "prd_42", None, 50)] == [42]
    assert [link.id for link in cs.search(session, "STOL 5", "products", 50)] == [5, *range(50, 60)]
    assert len(cs.search(session, "stol", None, 50)) == 50
    assert cs.search(session, "stol", "customers", 50) == []
    page = cq.links_page(session, None, None, 50)
    assert [link.id for link in page][:2] == [200, 199]
    assert cq.links_page(session, "products", 151, 50)[0].id == 150


def test_the_console_migration_is_the_single_head() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db._alembic_config())
    assert len(script.get_heads()) == 1


def test_a_plan_line_is_told_its_link(session: Session) -> None:
    from shopsync.engine.report import PlanLine
    from shopsync.service.console.state import links_of

    now = datetime.now(UTC)
    session.execute(
        insert(Link),
        [{"id": 7, "datatype": "customers", "webcrm_id": "12", "webshop_id": "cus_a",
          "created_by": "webcrm", "state": "active", "created_at": now, "updated_at": now},
         {"id": 8, "datatype": "products", "webcrm_id": "12", "webshop_id": "prd_b",
          "created_by": "webcrm", "state": "active", "created_at": now, "updated_at": now}],
    )  # fmt: skip
    session.commit()
    cases = [
        ("customers", "webshop", "cus_a", 7),  # a bare id of the system written to
        ("customers", "webcrm", "12", 7),
        ("customers", "webshop", "from webcrm:12", 7),
        ("customers", "-", "webcrm:- ⇄ webshop:cus_a", 7),  # a merge or a conflict
        ("customers", "webcrm", "webshop:cus_a", 7),  # put aside: the source's id
        ("customers", "webshop", "from webcrm:99", None),
        ("customers", "-", "webcrm:Organisation", None),
        ("customers", "-", "webcrm:99 ⇄ webshop:cus_a", 7),  # the first that is linked
        ("products", "webcrm", "12", 8),  # the same id, another datatype
        ("products", "webshop", "cus_a", None),
    ]
    lines = [PlanLine(dt, "update", target, record) for dt, target, record, _ in cases]
    assert links_of(session, lines) == [want for *_, want in cases]
    assert links_of(session, []) == []


def test_a_long_plan_becomes_activity_a_chunk_at_a_time(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every plan line becomes one activity row with its link, in plan order, also
    when the plan is longer than a chunk (a first sync plans a line per record)."""
    from shopsync.engine.report import PlanLine
    from shopsync.service.console import state

    now = datetime.now(UTC)
    session.execute(
        insert(Link),
        [{"id": 10 + i, "datatype": "customers", "webcrm_id": str(i), "webshop_id": f"cus_{i}",
          "created_by": "webcrm", "state": "active", "created_at": now, "updated_at": now}
         for i in range(0, 7, 2)],
    )  # fmt: skip
    session.commit()
    monkeypatch.setattr(state, "ACTIVITY_CHUNK", 3)
    plan = [
        PlanLine("customers", "create", "webshop", f"from webcrm:{i}", label=f"L{i}")
        for i in range(7)
    ]
    touched = state.record_activity(session, plan, run_id=5)
    session.commit()
    assert touched == {10, 12, 14, 16}
    rows = sorted(cq.activity(session, limit=100), key=lambda a: a.id)
    assert [(a.record, a.label, a.link_id, a.run_id) for a in rows] == [
        (f"from webcrm:{i}", f"L{i}", 10 + i if i % 2 == 0 else None, 5) for i in range(7)
    ]


def test_activity_is_kept_for_the_retention_period_and_filtered(session: Session) -> None:
    now = datetime.now(UTC)
    rows = [
        {"at": now - timedelta(days=age), "run_id": 1, "datatype": dt, "action": "update",
         "target": target, "record": "1", "detail": "name", "label": "", "link_id": None}
        for age, dt, target in [(40, "customers", "webshop"), (1, "customers", "webshop"),
                                (0, "products", "webcrm"), (0, "customers", "webcrm")]
    ]  # fmt: skip
    cq.add_activity(session, rows)
    session.commit()
    assert cq.prune_activity(session, now - timedelta(days=30)) == 1
    session.commit()
    assert [(a.datatype, a.target) for a in cq.activity(session)] == [
        ("customers", "webcrm"), ("products", "webcrm"), ("customers", "webshop"),
    ]  # fmt: skip
    assert [a.datatype for a in cq.activity(session, target="webcrm")] == ["customers", "products"]
    newest = cq.activity(session, datatype="customers", limit=1)
    assert [a.target for a in newest] == ["webcrm"]
    older = cq.activity(session, datatype="customers", before=newest[0].id)
    assert [a.target for a in older] == ["webshop"]
