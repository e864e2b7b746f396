"""An engine fit to run all day (issue 10, item 1): idle cost at the floor, deletes on a
schedule, and a line deleted with an edit of its opportunity seen at once."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select

from shopsync.config.model import Datatype, DeletesConfig
from shopsync.engine.streams import parse_time
from shopsync.store import repo
from tests.engine.conftest import Env, crm_product, org
from tests.engine.test_crash import seed
from tests.engine.test_lines import qline, shop_line
from tests.engine.test_orders import opportunity

P, L = Datatype.products, Datatype.order_lines


def count_staged_pages(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, int]]:
    """From now on, each page staged: ``(datatype, system, records in it)``."""
    staged: list[tuple[str, str, int]] = []
    stage_page = repo.stage_page

    def counting(s: Any, datatype: str, system: str, records: Any) -> None:
        staged.append((datatype, system, len(records)))
        stage_page(s, datatype, system, records)

    monkeypatch.setattr(repo, "stage_page", counting)
    return staged


def orgs(env: Env, stem: str, vat: str, n: int) -> list[int]:
    """``n`` organisations ``stem 0``… with VAT numbers ``vat`` + a digit."""
    return [
        env.crm_create("Organisation", org(f"{stem} {i}", OrganisationVatNumber=f"{vat}{i}",
                                           OrganisationWww=f"{stem.lower()}{i}.dk"))
        for i in range(n)
    ]  # fmt: skip


def order_with_two_lines(env: Env) -> tuple[int, int, int, str]:
    """A synced opportunity with lines SKU-1 and SKU-2: (opportunity, line 1, line 2,
    the shop order's id)."""
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    first = env.crm_create("QuotationLine", qline(opp_id, "SKU-1"))
    second = env.crm_create("QuotationLine", qline(opp_id, "SKU-2", QuotationLineSortOrder=2))
    env.sync()
    return opp_id, first, second, env.link(Datatype.orders, webcrm=opp_id).webshop_id


def test_a_converged_run_costs_one_request_per_datatype_and_side(env: Env) -> None:
    seed(env, seed=3)
    env.sync()
    env.sync()  # reads back our own writes
    report = env.sync()
    assert report.writes == 0
    # webCRM: one read per datatype (the token is cached; a fresh process adds a login)
    assert report.webcrm_requests <= 4, report.webcrm_requests
    # webshop: one change page per collection, and its capabilities
    assert report.webshop_requests <= 4, report.webshop_requests


def test_a_webcrm_product_delete_waits_for_the_sweep(env: Env) -> None:
    product = env.crm_create("Product", crm_product())
    env.sync()
    shop_id = env.link(P, webcrm=product).webshop_id
    env.crm.delete("Product", product)
    assert env.sync().stats[P].deleted == 0
    assert env.shop_get("products", shop_id)["active"] is True
    report = env.sync(sweep=True)
    assert report.stats[P].deleted == 1
    assert env.shop_get("products", shop_id)["active"] is False
    with env.inst.session() as s:
        assert repo.get_meta(s, "sweep:products") is not None


def test_an_interval_of_zero_sweeps_every_run(env: Env) -> None:
    env.reconfigure(deletes=DeletesConfig(sweep_interval_minutes=0))
    product = env.crm_create("Product", crm_product())
    env.sync()
    env.crm.delete("Product", product)
    assert env.sync().stats[P].deleted == 1


def test_a_line_deleted_with_an_edit_of_its_opportunity_is_seen_at_once(env: Env) -> None:
    opp_id, keep, gone, order_id = order_with_two_lines(env)
    assert len(env.shop_get("orders", order_id)["lines"]) == 2
    env.crm.delete("QuotationLine", gone)
    env.crm_update("Opportunity", opp_id, OpportunityDescription="uden skuffer")
    report = env.sync()  # no sweep: the opportunity's lines are read
    assert report.stats[L].deleted == 1
    lines = env.shop_get("orders", order_id)["lines"]
    assert [line["sku"] for line in lines] == ["SKU-1"]
    assert env.link(L, webcrm=keep).state == "active"


def test_our_own_writes_read_back_are_dropped_before_staging(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = orgs(env, "Firma", "DK3000000", 5)
    env.sync()
    for rid in ids:  # the webshop's answer moved the webCRM record? no: an edit to read back
        env.crm_update("Organisation", rid, OrganisationCity="Vejle")
    env.sync()
    staged = count_staged_pages(monkeypatch)
    report = env.sync()  # reads the cities written to the webshop back: all unchanged
    assert report.writes == 0 and report.stats[Datatype.customers].unchanged >= 5
    assert [n for dt, _, n in staged if dt == "customers"] == [], staged
    with env.inst.session() as s:
        assert repo.inbox_record_ids(s, Datatype.customers.value, "webcrm") == []
        assert repo.inbox_record_ids(s, Datatype.customers.value, "webshop") == []
    # a real change right after is still seen
    env.crm_update("Organisation", ids[0], OrganisationCity="Kolding")
    assert env.sync().stats[Datatype.customers].updated_in_webshop == 1


def test_quotation_lines_written_by_us_and_read_back_are_dropped_before_staging(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The echo of line writes costs no inbox rows and no order read (the fast path
    covers webCRM quotation lines too); a real line edit right after still goes."""
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    line_ids = [env.crm_create("QuotationLine", qline(opp_id, f"SKU-{i}")) for i in range(3)]
    env.sync()
    order_id = env.link(Datatype.orders, webcrm=opp_id).webshop_id
    lines = env.shop_get("orders", order_id)["lines"]
    env.shop_update("orders", order_id, lines=[{**x, "quantity": "7"} for x in lines])
    assert env.sync().stats[L].updated_in_webcrm == 3
    staged = count_staged_pages(monkeypatch)
    report = env.sync()  # reads the three quantities written to webCRM back
    assert report.writes == 0 and report.stats[L].unchanged >= 3
    assert [n for dt, _, n in staged if dt == L.value] == [], staged
    env.crm_update("QuotationLine", line_ids[0], QuotationLineQuantity=9.0)
    assert env.sync().stats[L].updated_in_webshop == 1
    assert shop_line(env, order_id, env.link(L, webcrm=line_ids[0]).webshop_id)["quantity"] == "9"


def test_unchanged_is_decided_by_fingerprint_and_without_one_value_by_value(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record read back with the values of its snapshot is dropped by its fingerprint
    alone (the snapshot's JSON is not read); a snapshot without fingerprints (written
    before they existed) is compared value by value and gives the same verdict."""
    from sqlalchemy import update

    from shopsync.store.models import Snapshot

    ids = orgs(env, "Aftryk", "DK4100000", 4)
    env.sync()
    env.sync()  # the echo of the creates
    for rid in ids:
        env.crm_update("Organisation", rid, OrganisationCity="Horsens")
    env.sync()
    with env.inst.session() as s:
        snaps = list(s.scalars(select(Snapshot)))
        assert snaps and all(x.webcrm_fp and x.webshop_fp for x in snaps)

    def no_json(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the snapshot's props were read: the fingerprint did not decide")

    with monkeypatch.context() as m:
        m.setattr(repo, "agreed_values", no_json)
        report = env.sync(full=False)  # reads the cities written to the shop back
    assert report.writes == 0 and report.stats[Datatype.customers].unchanged >= 4
    # Without fingerprints: the same values written again (webCRM's UpdatedAt moves, so
    # they are read since the cursor) are compared value by value, and dropped.
    with env.inst.session() as s:
        s.execute(update(Snapshot).values(webcrm_fp=None, webshop_fp=None))
        s.commit()
    for rid in ids:
        env.crm_update("Organisation", rid, OrganisationCity="Horsens")
    staged = count_staged_pages(monkeypatch)
    again = env.sync()
    assert again.writes == 0 and again.stats[Datatype.customers].unchanged >= 4
    assert [n for dt, _, n in staged if dt == "customers"] == [], staged
    # Found unchanged value by value, they got their fingerprints back.
    assert webcrm_fingerprints(env, ids) == current_fingerprints(env, ids)
    # A fingerprint in either form older releases stored (json's text, non-ASCII
    # escaped; orjson's text without the form's mark) is compared value by value once,
    # then rewritten in the current form.
    for form, city in ((0, "Århus"), (1, "Ærøskøbing")):
        for rid in ids:
            env.crm_update("Organisation", rid, OrganisationCity=city)
        assert env.sync().stats[Datatype.customers].updated_in_webshop == 4
        env.sync()  # the echo
        with env.inst.session() as s:
            for snap in s.scalars(select(Snapshot)):
                older = repo.older_values_fingerprints(repo.side_values(snap.props, "c"))[form]
                assert older != snap.webcrm_fp
                snap.webcrm_fp = older
            s.commit()
        for rid in ids:
            env.crm_update("Organisation", rid, OrganisationCity=city)
        assert env.sync().writes == 0
        assert webcrm_fingerprints(env, ids) == current_fingerprints(env, ids)
    # A real change is still seen, and against a fingerprint in the current form it is
    # decided without reading the snapshot's values.
    env.crm_update("Organisation", ids[0], OrganisationCity="Kolding")
    with monkeypatch.context() as m:
        m.setattr(repo, "agreed_values", no_json)
        assert env.sync().stats[Datatype.customers].updated_in_webshop == 1


def webcrm_fingerprints(env: Env, ids: list[int]) -> dict[str, str | None]:
    with env.inst.session() as s:
        found = repo.agreed_fingerprints(s, "customers", "webcrm", [str(i) for i in ids])
    assert len(found) == len(ids)
    return found


def current_fingerprints(env: Env, ids: list[int]) -> dict[str, str]:
    """Each organisation's webCRM values as read now, fingerprinted."""
    from shopsync.engine.mapping import mappings

    mapping = mappings(env.inst.config)[Datatype.customers]
    return {
        str(rid): repo.values_fingerprint(mapping.webcrm_values(env.crm_get("Organisation", rid)))
        for rid in ids
    }


def test_a_webshop_order_read_back_with_its_lines_unchanged_is_dropped_before_staging(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our own order create read back from the shop's change feed (its lines inside it,
    exactly the linked ones with their agreed values) costs no inbox row and no line
    reconciliation; an order whose line was edited, added or removed in the shop still
    goes the full way."""
    opp_id, first, _second, order_id = order_with_two_lines(env)
    staged = count_staged_pages(monkeypatch)
    report = env.sync()  # the shop's change feed returns the order we created
    assert report.writes == 0 and report.stats[Datatype.orders].unchanged >= 1
    assert [(dt, n) for dt, system, n in staged if system == "webshop"] == [], staged
    with env.inst.session() as s:
        assert repo.inbox_record_ids(s, L.value, "webshop") == []
    lines = env.shop_get("orders", order_id)["lines"]
    line_1 = env.link(L, webcrm=first).webshop_id
    edited = [{**x, "quantity": "5"} if x["id"] == line_1 else x for x in lines]
    env.shop_update("orders", order_id, lines=edited)
    assert env.sync().stats[L].updated_in_webcrm == 1
    assert env.crm_get("QuotationLine", first)["QuotationLineQuantity"] == 5
    env.sync()  # the echo of that line write
    lines = env.shop_get("orders", order_id)["lines"]
    env.shop_update("orders", order_id, lines=[x for x in lines if x["id"] != line_1])
    assert env.sync().stats[L].deleted == 1
    assert first not in [x["QuotationLineId"] for x in env.crm_all("QuotationLine")]
    assert env.link(Datatype.orders, webcrm=opp_id).webshop_id == order_id


def test_a_record_waiting_in_the_inbox_is_replaced_by_its_unchanged_re_read(env: Env) -> None:
    """A record read back with its agreed values is still staged when an older version
    of it waits in the inbox: the newer read must replace that row, not leave the older
    version to be written later."""
    from shopsync.store.models import InboxRecord

    (rid,) = orgs(env, "Venter", "DK4300000", 1)
    env.sync()
    env.sync()  # the echo of the create
    shop_id = env.link(Datatype.customers, webcrm=rid).webshop_id
    agreed = env.crm_get("Organisation", rid)["OrganisationCity"]
    env.crm_update("Organisation", rid, OrganisationCity="Forældet")
    older = env.crm_get("Organisation", rid)
    time.sleep(0.01)
    env.crm_update("Organisation", rid, OrganisationCity=agreed)  # edited back
    with env.inst.session() as s:  # the older version, left waiting by an earlier run
        repo.stage(s, "customers", "webcrm", str(rid),
                   updated_at=repo.as_utc(parse_time(older["OrganisationUpdatedAt"])),
                   data=older)  # fmt: skip
        s.flush()
        row = s.scalars(select(InboxRecord)).one()
        row.waiting_reason = "waiting for a test"
        s.commit()
    report = env.sync()
    assert report.writes == 0, report.plan
    assert "Forældet" not in str(env.shop_get("customers", shop_id))
    with env.inst.session() as s:
        assert repo.inbox_record_ids(s, "customers", "webcrm") == []


def test_a_run_that_grows_the_tables_has_them_analysed_as_it_goes(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staging analyses the inbox and the merge keys, creating analyses the links and
    snapshots, each time the rows added double (here from 4); a run that adds fewer
    analyses nothing, and edits that leave every merge key as it was grow the inbox
    alone."""
    from shopsync.store import statistics

    done: list[tuple[str, ...]] = []
    monkeypatch.setattr(statistics, "FIRST", 4)
    monkeypatch.setattr(statistics, "analyze", lambda _s, tables: done.append(tuple(tables)))
    ids = orgs(env, "Vokser", "DK4400000", 10)
    env.sync()
    for tables in (("inbox",), ("merge_keys",), ("links", "snapshots")):
        assert done.count(tables) >= 1, done
    assert len(done) <= 9, done  # doubling: a few per run, not one per page
    env.sync()  # the echo of the creates
    done.clear()
    env.crm_update("Organisation", ids[0], OrganisationCity="Vejle")
    env.sync()
    assert done == []
    for i, rid in enumerate(ids):  # a new city each: no merge key changes
        env.crm_update("Organisation", rid, OrganisationCity=f"Vejle {i}")
    env.sync()
    assert ("inbox",) in done and ("merge_keys",) not in done, done


def test_matching_a_batch_reads_the_merge_keys_and_their_variants_at_once(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New records with VAT numbers are matched from the holders read for the whole
    batch, a VAT number's variant (without its country) included: no key is looked up
    on its own. A shop customer with the same VAT number is still found."""
    from tests.engine.conftest import customer

    asked: list[str] = []
    real = repo.find_by_merge_key
    monkeypatch.setattr(
        repo,
        "find_by_merge_key",
        lambda s, dt, system, key: asked.append(key) or real(s, dt, system, key),
    )
    orgs(env, "Nøgle", "DK4600000", 6)
    env.shop_create("customers", customer("Nøgle 0 ApS", vat_number="DK46000000"))
    report = env.sync()
    assert asked == []
    assert report.stats[Datatype.customers].linked_by_merge == 1, report.stats[Datatype.customers]


def test_an_order_echo_is_dropped_with_line_fingerprints_of_older_releases(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line's fingerprint is not rewritten when its order is found unchanged, so the
    forms older releases stored (json's text; orjson's text without the mark) still
    count as agreed: an upgraded shop's order echo costs no inbox row either."""
    from shopsync.store.models import Link, Snapshot

    order_with_two_lines(env)
    with env.inst.session() as s:
        rows = s.execute(
            select(Snapshot).join(Link, Link.id == Snapshot.link_id).where(Link.datatype == L.value)
        ).scalars()
        snaps = sorted(rows, key=lambda x: x.link_id)
        assert len(snaps) == 2
        for form, snap in enumerate(snaps):
            older = repo.older_values_fingerprints(repo.side_values(snap.props, "s"))[form]
            assert older != snap.webshop_fp
            snap.webshop_fp = older
        s.commit()
    staged = count_staged_pages(monkeypatch)
    report = env.sync()  # the shop's change feed returns the order we created
    assert report.writes == 0 and report.stats[Datatype.orders].unchanged >= 1
    assert [(dt, n) for dt, system, n in staged if system == "webshop"] == [], staged


def test_the_read_overlap_does_not_re_read_a_burst_of_writes_long_settled(env: Env) -> None:
    """A cursor left behind by a burst of writes costs one short page per run once the
    burst is older than twice the overlap when a run begins; a record edited later is
    still read, and so is one whose change time lies inside the window of a run that
    began too soon for it to have settled."""
    from shopsync.config.model import WebcrmConfig

    webcrm = env.inst.config.webcrm.model_dump()
    # Twice the overlap (4 s) is far more than the two runs after the burst take even
    # on a loaded machine (a 0.4 s overlap once let the echo begin too late under load)
    overlap = 2.0
    env.reconfigure(webcrm=WebcrmConfig(**{**webcrm, "overlap_seconds": overlap}))
    ids = orgs(env, "Skur", "DK4200000", 6)
    env.sync()
    env.sync()  # the echo of the creates
    customers = Datatype.customers
    soon = env.sync()  # within 2 x overlap of the burst: the overlap window is read again
    assert soon.stats[customers].received_webcrm >= 6
    time.sleep(2 * overlap + 0.2)
    env.sync()  # began after the burst settled: from now on the window starts at it
    settled = env.sync()
    assert settled.writes == 0
    assert settled.stats[customers].received_webcrm <= 1, settled.stats[customers]
    env.crm_update("Organisation", ids[2], OrganisationCity="Silkeborg")
    report = env.sync()
    assert report.stats[customers].updated_in_webshop == 1
    shop_id = env.link(customers, webcrm=ids[2]).webshop_id
    assert "Silkeborg" in str(env.shop_get("customers", shop_id))
