"""One bad record fails only itself (issue 9): each case reproduced through both servers.

Every test here failed before its fix: a record the live API may send (a name cut inside
an emoji, an unreadable date), a linked record purged without a tombstone, a reference
to a deleted record, and the put-aside bookkeeping around them. The run goes on, the
record is put aside (or handled as the delete it is) with a reason naming it, and the
other records' changes arrive in the same run.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shopsync.config.model import Datatype
from shopsync.store import repo
from tests.engine.conftest import Env, crm_product, customer, org

C, P, ORD = Datatype.customers, Datatype.products, Datatype.orders


def corrupt(env: Env, entity: str, rid: int, body: str) -> None:
    """Have the emulator serve these raw JSON field values (bypassing its checks)."""
    url = f"{env.crm_server.url}/_emulator/corrupt/{entity}/{rid}"
    response = httpx.put(url, content=body, headers={"content-type": "application/json"})
    response.raise_for_status()


def purge(env: Env, collection: str, rid: str) -> None:
    """Remove a webshop record with no tombstone: from now on it answers 404."""
    httpx.delete(f"{env.shop_server.url}/_webshop/purge/{collection}/{rid}").raise_for_status()


def single_requests(env: Env) -> None:
    """Switch the shop's batch endpoint off: a per-path fault then hits one record."""
    httpx.put(f"{env.shop_server.url}/_webshop/batch", json={"enabled": False}).raise_for_status()


def shop_counters(env: Env) -> dict[str, int]:
    return dict(httpx.get(f"{env.shop_server.url}/_webshop/counters").json())


def put_aside(env: Env, dt: Datatype | None = None) -> list[Any]:
    with env.inst.session() as s:
        return list(repo.all_put_aside(s, dt.value if dt else None))


def three_orgs(env: Env) -> list[int]:
    return [
        env.crm_create("Organisation", org(f"Firma {i}", OrganisationVatNumber=f"DK1000000{i}",
                                           OrganisationWww=f"firma{i}.dk"))
        for i in range(3)
    ]  # fmt: skip


# ------------------------------------------------------------------ undecodable values
def test_a_name_cut_inside_an_emoji_fails_only_its_record(env: Env) -> None:
    ids = three_orgs(env)
    corrupt(env, "Organisation", ids[1], '{"OrganisationName": "Caf\\ud83d"}')
    report = env.sync()
    assert report.stats[C].created_in_webshop == 2
    assert report.stats[C].put_aside == 1
    assert env.link(C, webcrm=ids[0]) is not None and env.link(C, webcrm=ids[2]) is not None
    [entry] = put_aside(env)
    assert (entry.system, entry.record_id) == ("webcrm", str(ids[1]))
    assert "OrganisationName" in entry.reason and "surrogate" in entry.reason
    # fixed in webCRM: synced on the next run
    env.crm_update("Organisation", ids[1], OrganisationName="Café ☕")
    report = env.sync()
    assert report.stats[C].created_in_webshop == 1
    link = env.link(C, webcrm=ids[1])
    assert env.shop_get("customers", link.webshop_id)["name"] == "Café ☕"
    assert put_aside(env) == []


def test_an_unreadable_updated_at_fails_only_its_record(env: Env) -> None:
    ids = three_orgs(env)
    corrupt(env, "Organisation", ids[0], '{"OrganisationUpdatedAt": "yesterday"}')
    report = env.sync()
    assert report.stats[C].created_in_webshop == 2
    [entry] = put_aside(env)
    assert entry.record_id == str(ids[0])
    assert "OrganisationUpdatedAt" in entry.reason and "yesterday" in entry.reason
    # the next run does not put it aside a second time, nor fail
    assert env.sync().stats[C].put_aside == 0
    assert len(put_aside(env)) == 1


# ------------------------------------------------------------------ vanished records
def test_a_linked_webshop_record_purged_without_a_tombstone_is_unlinked(env: Env) -> None:
    a, b = three_orgs(env)[:2]
    env.sync()
    link_a = env.link(C, webcrm=a)
    purge(env, "customers", link_a.webshop_id)
    env.crm_update("Organisation", a, OrganisationCity="Odense")
    env.crm_update("Organisation", b, OrganisationCity="Vejle")
    report = env.sync()  # used to fail: PATCH /customers/cus_…: HTTP 404
    link_b = env.link(C, webcrm=b)
    assert env.shop_get("customers", link_b.webshop_id)["billing_address"]["city"] == "Vejle"
    assert env.link(C, webcrm=a).state == "webshop_deleted"
    assert any(line.action == "unlink" and link_a.webshop_id in line.record for line in report.plan)
    assert env.sync().stats[C].put_aside == 0


# ------------------------------------------------------------------ deleted references
def test_a_new_opportunity_of_an_organisation_whose_customer_was_deleted_is_put_aside(
    env: Env,
) -> None:
    org_id = env.crm_create("Organisation", org())
    env.sync()
    link = env.link(C, webcrm=org_id)
    env.shop.delete("customers", link.webshop_id)
    env.sync()
    opp = env.crm_create(
        "Opportunity",
        {"OpportunityOrganisationId": org_id, "OpportunityDescription": "Skriveborde",
         "OpportunityNumber": "O-1", "OpportunityCurrencyName": "DKK"},
    )  # fmt: skip
    report = env.sync()
    assert report.stats[ORD].waiting == 0
    [entry] = put_aside(env, ORD)
    assert entry.record_id == str(opp)
    assert "deleted" in entry.reason and link.webshop_id in entry.reason


# ------------------------------------------------------------------ put-aside bookkeeping
def test_a_put_aside_opportunity_without_a_number_is_not_sent_again(env: Env) -> None:
    org_id = env.crm_create("Organisation", org())
    env.sync()
    too_long = "x" * 10_001  # the webshop's notes hold 10,000 characters
    opp = env.crm_create(
        "Opportunity",
        {"OpportunityOrganisationId": org_id, "OpportunityCurrencyName": "DKK",
         "OpportunityDescription": too_long},
    )  # fmt: skip
    assert env.sync().stats[ORD].put_aside == 1
    posts = shop_counters(env).get("POST /orders", 0)
    for _ in range(2):
        assert env.sync(full=False).stats[ORD].put_aside == 0
    assert shop_counters(env).get("POST /orders", 0) == posts
    [entry] = put_aside(env, ORD)
    assert entry.record_id == str(opp)


def test_a_too_long_webshop_city_on_a_linked_pair_is_put_aside_under_the_webshop(
    env: Env,
) -> None:
    shop = env.shop_create("customers", customer())
    env.sync()
    address = {**shop["billing_address"], "city": "Ø" * 60}  # webCRM holds 50
    env.shop_update("customers", shop["id"], billing_address=address)
    assert env.sync().stats[C].put_aside == 1
    [entry] = put_aside(env)
    assert (entry.system, entry.record_id) == ("webshop", shop["id"])
    assert "OrganisationCity" in entry.reason


def test_a_product_deleted_and_created_again_with_its_sku_takes_back_the_webshop_product(
    env: Env,
) -> None:
    old = env.crm_create("Product", crm_product("SKU-7", "Reol"))
    env.sync()
    shop_id = env.link(P, webcrm=old).webshop_id
    env.crm.delete("Product", old)
    env.sync(sweep=True)
    assert env.shop_get("products", shop_id)["active"] is False
    new = env.crm_create("Product", crm_product("SKU-7", "Reol, ny", ProductPrice=99.0))
    report = env.sync()
    assert report.stats[P].put_aside == 0, [e.reason for e in put_aside(env)]
    link = env.link(P, webcrm=new)
    assert link is not None and link.webshop_id == shop_id
    product = env.shop_get("products", shop_id)
    assert (product["active"], product["name"], product["unit_price"]) == (
        True,
        "Reol, ny",
        "99.00",
    )
    assert env.sync().writes == 0


def test_a_shop_order_of_a_deleted_customer_is_put_aside_not_left_waiting(env: Env) -> None:
    org_id = env.crm_create("Organisation", org())
    env.sync()
    customer_id = env.link(C, webcrm=org_id).webshop_id
    order = env.shop_create(
        "orders",
        {"order_number": "W-1", "customer_id": customer_id, "status": "pending",
         "currency": "DKK", "discount_percent": "0", "lines": []},
    )  # fmt: skip
    env.shop.delete("customers", customer_id)
    report = env.sync()
    assert env.link(C, webcrm=org_id).state == "webshop_deleted"
    assert report.stats[ORD].waiting == 0
    [entry] = put_aside(env, ORD)
    assert (entry.system, entry.record_id) == ("webshop", order["id"])
    assert "deleted in the webshop" in entry.reason and customer_id in entry.reason


# ------------------------------------------------------------------ unexpected answers
def test_a_webshop_that_fails_on_one_record_fails_only_that_record(env: Env) -> None:
    ids = three_orgs(env)
    single_requests(env)
    env.sync()
    broken = env.link(C, webcrm=ids[1]).webshop_id
    httpx.put(
        f"{env.shop_server.url}/_webshop/faults", json={"fail_paths": [broken]}
    ).raise_for_status()
    for rid in ids:
        env.crm_update("Organisation", rid, OrganisationCity="Kolding")
    report = env.sync()
    assert report.stats[C].updated_in_webshop == 2 and report.stats[C].put_aside == 1
    [entry] = put_aside(env)
    assert entry.record_id == str(ids[1]) and "HTTP 500" in entry.reason
    # a server error is retried on the next run, although the record did not change
    httpx.put(f"{env.shop_server.url}/_webshop/faults", json={}).raise_for_status()
    report = env.sync()
    assert report.stats[C].updated_in_webshop == 1
    assert env.shop_get("customers", broken)["billing_address"]["city"] == "Kolding"
    assert put_aside(env) == []


def test_a_webshop_failing_for_every_record_stops_the_run(env: Env) -> None:
    from shopsync.connectors.webshop.client import WebshopUnavailable

    ids = [
        env.crm_create("Organisation", org(f"Firma {i}", OrganisationVatNumber=f"DK2000000{i}",
                                           OrganisationWww=f"f{i}.dk"))
        for i in range(8)
    ]  # fmt: skip
    single_requests(env)
    env.sync()
    httpx.put(
        f"{env.shop_server.url}/_webshop/faults", json={"fail_paths": ["/customers/"]}
    ).raise_for_status()
    for rid in ids:
        env.crm_update("Organisation", rid, OrganisationCity="Kolding")
    try:
        env.sync()
    except WebshopUnavailable as exc:
        assert "HTTP 500" in str(exc)
    else:
        raise AssertionError("a shop down for every record must stop the run")
    finally:
        httpx.put(f"{env.shop_server.url}/_webshop/faults", json={}).raise_for_status()
    assert len(put_aside(env)) <= 5
    env.sync()
    assert put_aside(env) == []


def test_a_number_that_is_nan_fails_only_its_record_and_is_never_stored(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's JSON parser accepts ``NaN`` (the emulator cannot serve it: its own JSON
    writer refuses it, so the client's pages are doctored here): such a record is put
    aside naming the field, before anything stores it (PostgreSQL's JSON refuses it),
    and the others go on."""
    ids = three_orgs(env)
    read = env.crm.iter_updated_since

    def with_nan(entity: str, since: Any, **kw: Any) -> Any:
        for page in read(entity, since, **kw):
            yield [
                {**r, "OrganisationName": float("nan")} if r.get("OrganisationId") == ids[2] else r
                for r in page
            ]

    monkeypatch.setattr(env.crm, "iter_updated_since", with_nan)
    report = env.sync()
    assert report.stats[C].created_in_webshop == 2
    [entry] = put_aside(env)
    assert entry.record_id == str(ids[2])
    assert entry.reason.startswith("OrganisationName:") and "not a number" in entry.reason
    # kept as read, its null fields too (the staged form of a record drops them)
    as_read = next(
        r for page in read("Organisation", None) for r in page if r["OrganisationId"] == ids[2]
    )
    assert entry.data is not None and set(entry.data) == set(as_read)
    assert env.sync(full=True).stats[C].put_aside == 0  # read again unchanged: not reported
    monkeypatch.undo()
    env.crm_update("Organisation", ids[2], OrganisationName="Firma 2 A/S")
    assert env.sync().stats[C].created_in_webshop == 1
    assert put_aside(env) == []
