"""Property-based test of the engine's invariants against the real servers.

Hypothesis drives random creates, edits and deletes on both sides, interleaved with
syncs, against the webCRM emulator and the reference webshop (real HTTP, real state
database). After every sync:

* links are one-to-one (each webCRM id and each webshop id in at most one link);
* every live record of either side is linked (nothing lost, nothing duplicated);
* both sides agree, under the mapping, on every two-way property of every active link;
* a repeated sync writes nothing (no echoes).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from shopsync.config.model import Datatype
from shopsync.engine.binder import Binder
from shopsync.engine.mapping import mappings
from shopsync.store import repo
from tests.engine.conftest import Env, customer, org

NAMES = st.sampled_from(
    ["Ærø ApS", "Straße GmbH", "Øster Hus", "Åkerlund AB", "Smith Ltd", "Bøg & Co"]
)
CITIES = st.sampled_from(["Aarhus", "München", "Göteborg", "Tromsø", "London", None])
PHONES = st.sampled_from(["+45 11 22 33 44", "+49 30 1", "555", None])
COUNTRIES_CRM = st.sampled_from(["Danmark", "Denmark", "Sverige", "Germany", None])
COUNTRIES_SHOP = st.sampled_from(["DK", "SE", "DE", "NO", None])
counter = itertools.count()


class SyncMachine(RuleBasedStateMachine):
    env: Env

    def __init__(self) -> None:
        super().__init__()
        self.crm_ids: list[int] = []
        self.shop_ids: list[str] = []
        self.synced = False
        self.steps_since_sync = 0

    @initialize()
    def start(self) -> None:
        import httpx  # the servers are shared; each example starts from empty systems

        httpx.post(self.env.crm_server.url + "/_emulator/reset", timeout=30).raise_for_status()
        httpx.post(self.env.shop_server.url + "/_webshop/reset", timeout=30).raise_for_status()
        self.env.fresh_state()
        # a small world on both sides, already synced once, so edits have targets
        for name in ("Ærø ApS", "Straße GmbH"):
            self.crm_create(name, "Aarhus", "555", "Danmark")
            self.shop_create(name, "Malmö", None, "SE")
        self.sync()

    # --------------------------------------------------------------- webCRM side
    @rule(name=NAMES, city=CITIES, phone=PHONES, country=COUNTRIES_CRM)
    def crm_create(
        self, name: str, city: str | None, phone: str | None, country: str | None
    ) -> None:
        n = next(counter)
        rid = self.env.crm_create(
            "Organisation",
            org(f"{name} {n}", OrganisationCity=city, OrganisationTelephone=phone,
                OrganisationCountry=country, OrganisationVatNumber=f"DK{10000000 + n}",
                OrganisationWww=None, OrganisationPostCode=str(1000 + n)),
        )  # fmt: skip
        self.crm_ids.append(rid)

    @precondition(lambda self: bool(self.crm_ids))
    @rule(data=st.data(), city=CITIES, phone=PHONES, country=COUNTRIES_CRM)
    def crm_edit(
        self, data: st.DataObject, city: str | None, phone: str | None, country: str | None
    ) -> None:
        rid = data.draw(st.sampled_from(self.crm_ids))
        self.env.crm_update(
            "Organisation", rid, OrganisationCity=city, OrganisationTelephone=phone,
            OrganisationCountry=country,
        )  # fmt: skip

    # -------------------------------------------------------------- webshop side
    @rule(name=NAMES, city=CITIES, phone=PHONES, country=COUNTRIES_SHOP)
    def shop_create(
        self, name: str, city: str | None, phone: str | None, country: str | None
    ) -> None:
        n = next(counter)
        rec = self.env.shop_create(
            "customers",
            customer(f"{name} {n}", phone=phone, vat_number=f"SE{500000000000 + n}", website=None,
                     billing_address={"line1": "Gatan 1", "postal_code": str(2000 + n),
                                      "city": city, "country": country}),
        )  # fmt: skip
        self.shop_ids.append(rec["id"])

    @precondition(lambda self: bool(self.shop_ids))
    @rule(data=st.data(), name=NAMES, phone=PHONES)
    def shop_edit(self, data: st.DataObject, name: str, phone: str | None) -> None:
        rid = data.draw(st.sampled_from(self.shop_ids))
        self.env.shop_update("customers", rid, name=f"{name} {next(counter)}", phone=phone)

    @precondition(lambda self: bool(self.shop_ids))
    @rule(data=st.data())
    def shop_delete(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(self.shop_ids))
        self.env.shop.delete("customers", rid)
        self.shop_ids.remove(rid)

    # ----------------------------------------------------------------------- sync
    @rule()
    def sync(self) -> None:
        self.steps_since_sync = 0
        self.env.sync()
        self.synced = True
        again = self.env.sync()
        assert again.writes == 0, [p for p in again.plan if p.action not in ("wait",)]
        self.check_agreement()

    def check_agreement(self) -> None:
        env = self.env
        mapping = mappings(env.inst.config)[Datatype.customers]
        crm_live = {str(r["OrganisationId"]): r for r in env.crm_all("Organisation")}
        shop_live = {r["id"]: r for r in env.shop_all("customers")}
        with env.inst.session() as s:
            binder = Binder(s, env.inst.config)
            links = list(repo.active_links(s, Datatype.customers.value))
            webcrm_ids = [ln.webcrm_id for ln in links]
            webshop_ids = [ln.webshop_id for ln in links]
            assert len(set(webcrm_ids)) == len(webcrm_ids)
            assert len(set(webshop_ids)) == len(webshop_ids)
            all_links = {
                ln.webcrm_id: ln for ln in s.scalars(repo.select_links(Datatype.customers.value))
            }
            all_shop = {ln.webshop_id for ln in all_links.values()}
            # nothing lost: every live record is linked (actively or as a deleted pair)
            assert set(crm_live) <= set(all_links), set(crm_live) - set(all_links)
            assert set(shop_live) <= all_shop, set(shop_live) - all_shop
            for ln in links:
                c, w = crm_live.get(ln.webcrm_id), shop_live.get(ln.webshop_id)
                assert c is not None and w is not None
                for f in mapping.fields:
                    if f.webcrm and f.direction.value == "⇄":
                        want = f.conversion.norm_webshop(
                            f.conversion.to_webshop(f.raw_webcrm(c), binder)
                        )
                        assert want == f.webshop_value(w), (f.name, c, w)

    def teardown(self) -> None:
        self.sync()

    @invariant()
    def one_to_one(self) -> None:
        with self.env.inst.session() as s:
            links = list(s.scalars(repo.select_links(Datatype.customers.value)))
        assert len({ln.webcrm_id for ln in links}) == len(links)
        assert len({ln.webshop_id for ln in links}) == len(links)


@pytest.mark.slow
def test_random_edits_on_both_sides_converge(env: Env) -> None:
    SyncMachine.env = env
    run_state_machine_as_test(
        SyncMachine,
        settings=settings(
            max_examples=5,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
