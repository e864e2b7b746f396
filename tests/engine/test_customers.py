"""Organisations ⇄ Customer, end to end over real HTTP (dataflow.md table 1, rules 1–3)."""

from __future__ import annotations

from typing import Any

import pytest

from shopsync.config.model import Datatype, FieldsConfig
from tests.engine.conftest import Env, customer, org

C = Datatype.customers

# (webCRM field, webshop path, a new webCRM value, the webshop value it becomes,
#  a new webshop value, the webCRM value it becomes)
ROWS: list[tuple[str, str, Any, Any, Any, Any]] = [
    (
        "OrganisationName",
        "name",
        "Ærø Møbler ApS",
        "Ærø Møbler ApS",
        "Straße & Söhne GmbH",
        "Straße & Söhne GmbH",
    ),
    (
        "OrganisationAddress",
        "billing_address.line1",
        "Østergade 1",
        "Østergade 1",
        "Königsallee 9",
        "Königsallee 9",
    ),
    ("OrganisationPostCode", "billing_address.postal_code", "2100", "2100", "40212", "40212"),
    (
        "OrganisationCity",
        "billing_address.city",
        "København Ø",
        "København Ø",
        "Düsseldorf",
        "Düsseldorf",
    ),
    (
        "OrganisationState",
        "billing_address.region",
        "Hovedstaden",
        "Hovedstaden",
        "Bayern",
        "Bayern",
    ),
    ("OrganisationCountry", "billing_address.country", "Sverige", "SE", "NO", "Norway"),
    (
        "OrganisationDeliveryAddress",
        "shipping_address.line1",
        "Lagervej 3",
        "Lagervej 3",
        "Hafen 2",
        "Hafen 2",
    ),
    (
        "OrganisationDeliveryPostCode",
        "shipping_address.postal_code",
        "7100",
        "7100",
        "20457",
        "20457",
    ),
    ("OrganisationDeliveryCity", "shipping_address.city", "Vejle", "Vejle", "Hamburg", "Hamburg"),
    (
        "OrganisationTelephone",
        "phone",
        "+45 11 22 33 44",
        "+45 11 22 33 44",
        "+49 40 999",
        "+49 40 999",
    ),
    ("OrganisationWww", "website", "www.ny.dk", "www.ny.dk", "https://neu.de", "https://neu.de"),
    (
        "OrganisationVatNumber",
        "vat_number",
        "DK87654321",
        "DK87654321",
        "DE999999999",
        "DE999999999",
    ),
]


def get_path(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for step in path.split("."):
        value = (value or {}).get(step)
    return value


def patch_for(path: str, value: Any) -> dict[str, Any]:
    if "." in path:
        head, tail = path.split(".", 1)
        return {head: {tail: value}}
    return {path: value}


@pytest.fixture
def linked(env: Env) -> tuple[Env, int, str]:
    org_id = env.crm_create("Organisation", org())
    env.sync()
    link = env.link(C, webcrm=org_id)
    assert link is not None
    return env, org_id, link.webshop_id


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_webcrm_edit_flows_to_webshop(linked: tuple[Env, int, str], row: tuple[Any, ...]) -> None:
    env, org_id, shop_id = linked
    field, path, crm_value, shop_expected, _, _ = row
    env.crm_update("Organisation", org_id, **{field: crm_value})
    report = env.sync()
    assert report.stats[C].updated_in_webshop == 1
    assert get_path(env.shop_get("customers", shop_id), path) == shop_expected
    assert env.sync().writes == 0


@pytest.mark.parametrize("row", ROWS, ids=[r[1] for r in ROWS])
def test_webshop_edit_flows_to_webcrm(linked: tuple[Env, int, str], row: tuple[Any, ...]) -> None:
    env, org_id, shop_id = linked
    field, path, _, _, shop_value, crm_expected = row
    current = env.shop_get("customers", shop_id)
    patch = patch_for(path, shop_value)
    if "." in path:  # addresses are replaced as a whole object by a merge patch's value
        head = path.split(".")[0]
        patch = {head: {**(current.get(head) or {}), **patch[head]}}
    env.shop_update("customers", shop_id, **patch)
    report = env.sync()
    assert report.stats[C].updated_in_webcrm == 1
    assert env.crm_get("Organisation", org_id)[field] == crm_expected
    assert env.sync().writes == 0


def test_new_organisation_creates_customer_with_every_field(env: Env) -> None:
    org_id = env.crm_create(
        "Organisation",
        org(OrganisationState="Midtjylland", OrganisationDeliveryAddress="Lagervej 3",
            OrganisationDeliveryPostCode="7100", OrganisationDeliveryCity="Vejle"),
    )  # fmt: skip
    report = env.sync()
    assert report.stats[C].created_in_webshop == 1
    assert report.stats[C].updates_to_webshop == 1  # rule 9: a create is one update
    link = env.link(C, webcrm=org_id)
    shop = env.shop_get("customers", link.webshop_id)
    assert shop["name"] == "Nørre Æble ApS"
    assert shop["billing_address"]["line1"] == "Åboulevarden 12"
    assert shop["billing_address"]["country"] == "DK"
    assert shop["billing_address"]["region"] == "Midtjylland"
    assert shop["shipping_address"]["city"] == "Vejle"
    assert shop["vat_number"] == "DK12345678"
    assert shop["website"] == "www.aeble.dk"
    assert env.sync().writes == 0


def test_new_customer_creates_organisation(env: Env) -> None:
    created = env.shop_create("customers", customer())
    report = env.sync()
    assert report.stats[C].created_in_webcrm == 1
    link = env.link(C, webshop=created["id"])
    rec = env.crm_get("Organisation", link.webcrm_id)
    assert rec["OrganisationName"] == "Straße GmbH"
    assert rec["OrganisationCity"] == "Berlin"
    assert rec["OrganisationCountry"] in ("Germany", "Deutschland")
    assert rec["OrganisationVatNumber"] == "DE123456789"
    assert env.sync().writes == 0


@pytest.mark.parametrize(
    ("crm_fields", "shop_fields"),
    [
        # 1. VAT normalized: spaces/dots/dashes, case, a country prefix equal to the country
        (
            {"OrganisationVatNumber": "dk 12.34-56.78"},
            {
                "vat_number": "12345678",
                "website": None,
                "billing_address": {"line1": None, "country": "DK"},
            },
        ),
        # 2. website host without www.
        (
            {"OrganisationVatNumber": None, "OrganisationWww": "http://www.Aeble.dk/om"},
            {"vat_number": None, "website": "https://aeble.dk"},
        ),
        # 3. normalized name with postal code
        (
            {
                "OrganisationVatNumber": None,
                "OrganisationWww": None,
                "OrganisationName": "Nørre  Æble ApS",
            },
            {
                "vat_number": None,
                "website": None,
                "name": "nørre æble aps",
                "billing_address": {"postal_code": "8000", "country": "DK"},
            },
        ),
    ],
    ids=["vat", "website", "name+postcode"],
)
def test_onboarding_merge_links_instead_of_duplicating(
    env: Env, crm_fields: dict[str, Any], shop_fields: dict[str, Any]
) -> None:
    org_id = env.crm_create("Organisation", org(**crm_fields))
    shop = env.shop_create("customers", customer(**{"name": "Nørre Æble ApS", **shop_fields}))
    report = env.sync()
    assert report.stats[C].linked_by_merge == 1
    assert report.stats[C].created_in_webshop == 0 and report.stats[C].created_in_webcrm == 0
    link = env.link(C, webcrm=org_id)
    assert link is not None and link.webshop_id == shop["id"]
    assert len(env.shop_all("customers")) == 1
    assert len(env.crm_all("Organisation")) == 1
    assert env.sync().writes == 0


def test_merge_never_overwrites_with_an_empty_value(env: Env) -> None:
    org_id = env.crm_create(
        "Organisation", org(OrganisationTelephone=None, OrganisationCity="Aarhus C")
    )
    shop = env.shop_create(
        "customers",
        customer(name="Nørre Æble ApS", vat_number="DK12345678", phone="+45 99 99 99 99",
                 billing_address={"city": None, "country": "DK"}),
    )  # fmt: skip
    env.sync()
    assert env.crm_get("Organisation", org_id)["OrganisationTelephone"] == "+45 99 99 99 99"
    assert env.shop_get("customers", shop["id"])["billing_address"]["city"] == "Aarhus C"


def test_link_survives_a_change_of_merge_criteria(linked: tuple[Env, int, str]) -> None:
    env, org_id, shop_id = linked
    env.crm_update("Organisation", org_id, OrganisationVatNumber="DK00000001", OrganisationWww=None)
    env.sync()
    env.shop_update("customers", shop_id, name="Helt Nyt Navn A/S")
    env.sync()
    assert env.crm_get("Organisation", org_id)["OrganisationName"] == "Helt Nyt Navn A/S"
    assert len(env.shop_all("customers")) == 1 and len(env.crm_all("Organisation")) == 1


def test_conflict_most_recently_updated_side_wins(linked: tuple[Env, int, str]) -> None:
    env, org_id, shop_id = linked
    env.crm_update("Organisation", org_id, OrganisationName="Navn fra CRM")
    env.shop_update("customers", shop_id, name="Name from shop")  # later
    report = env.sync()
    assert report.stats[C].conflicts == 1
    assert env.crm_get("Organisation", org_id)["OrganisationName"] == "Name from shop"
    assert env.shop_get("customers", shop_id)["name"] == "Name from shop"
    env.shop_update("customers", shop_id, name="Shop again")
    env.crm_update("Organisation", org_id, OrganisationName="CRM last")  # later
    env.sync()
    assert env.shop_get("customers", shop_id)["name"] == "CRM last"
    assert env.sync().writes == 0


def test_emptied_value_flows(linked: tuple[Env, int, str]) -> None:
    env, org_id, shop_id = linked
    env.shop_update("customers", shop_id, phone=None)
    env.sync()
    assert env.crm_get("Organisation", org_id)["OrganisationTelephone"] in (None, "")


def test_email_syncs_when_configured(env: Env) -> None:
    env.reconfigure(fields=FieldsConfig(organisation_email="OrganisationExtraCustom1"))
    org_id = env.crm_create("Organisation", org(OrganisationExtraCustom1="ordre@aeble.dk"))
    env.sync()
    link = env.link(C, webcrm=org_id)
    assert env.shop_get("customers", link.webshop_id)["email"] == "ordre@aeble.dk"
    env.shop_update("customers", link.webshop_id, email="salg@aeble.dk")
    env.sync()
    assert env.crm_get("Organisation", org_id)["OrganisationExtraCustom1"] == "salg@aeble.dk"


def test_email_not_synced_by_default(env: Env) -> None:
    org_id = env.crm_create("Organisation", org(OrganisationExtraCustom1="ordre@aeble.dk"))
    env.sync()
    link = env.link(C, webcrm=org_id)
    assert env.shop_get("customers", link.webshop_id).get("email") is None


def test_name_too_long_for_webcrm_is_put_aside_and_does_not_block(env: Env) -> None:
    too_long = {"line1": "Hauptstraße 5", "city": "Ø" * 51, "country": "DE"}  # webCRM: max 50
    bad = env.shop_create(
        "customers",
        customer(name="Lang By", vat_number="DE1", website=None, billing_address=too_long),
    )
    good = env.shop_create("customers", customer(name="God Kunde", vat_number="DE2", website=None))
    report = env.sync()
    assert report.stats[C].put_aside == 1
    assert env.link(C, webshop=good["id"]) is not None
    assert env.link(C, webshop=bad["id"]) is None
    with env.inst.session() as s:
        from shopsync.store import repo

        aside = repo.all_put_aside(s)
        assert len(aside) == 1 and "OrganisationCity" in aside[0].reason
    # unchanged: not retried; changed: retried and synced
    assert env.sync().stats[C].created_in_webcrm == 0
    env.shop_update("customers", bad["id"], billing_address={**too_long, "city": "Kurz"})
    assert env.sync().stats[C].created_in_webcrm == 1
    assert env.link(C, webshop=bad["id"]) is not None
