"""A sharing switch changed in the console applies to every run, ``shopsync sync`` by
hand included (``Installation.run_config``), and the file's value again once reset."""

from __future__ import annotations

from shopsync.config.model import Datatype
from shopsync.store import console_queries as cq
from tests.engine.conftest import Env, org


def test_a_switch_stored_by_the_console_applies_to_a_sync_by_hand(env: Env) -> None:
    with env.inst.session() as s:
        cq.set_switch(s, "customers.to_webshop.enabled", False)
        s.commit()
    org_id = env.crm_create("Organisation", org())
    report = env.sync()
    assert report.stats[Datatype.customers].created_in_webshop == 0
    assert env.shop_all("customers") == []
    with env.inst.session() as s:
        cq.set_switch(s, "customers.to_webshop.enabled", None)  # back to the file's value
        s.commit()
    env.crm_update("Organisation", org_id, OrganisationCity="Vejle")
    assert env.sync().stats[Datatype.customers].created_in_webshop == 1
    assert [c["name"] for c in env.shop_all("customers")] == [org()["OrganisationName"]]


def test_a_sync_by_hand_keeps_its_actions_for_the_consoles_activity_page(env: Env) -> None:
    """``shopsync sync`` records its plan lines as activity, like the service's runs."""
    from shopsync.service.console.state import keep_activity

    org_id = env.crm_create("Organisation", org())
    report = env.sync()
    keep_activity(env.inst, report)
    link = env.link(Datatype.customers, webcrm=org_id)
    with env.inst.session() as s:
        rows = cq.activity(s, datatype=Datatype.customers.value)
        created = [r for r in rows if r.action == "create" and r.target == "webshop"]
        assert len(created) == 1 and created[0].link_id == link.id
