"""Matching never merges strangers (issue 9, item 1), through both servers' APIs.

Each case was reproduced with real processes before the fix: the webCRM record was
renamed after an unrelated webshop customer and its data overwritten.
"""

from __future__ import annotations

from shopsync.config.model import Datatype
from shopsync.store import repo
from tests.engine.conftest import Env, customer, org

CUS = Datatype.customers


def _address(city: str, postcode: str) -> dict[str, object]:
    return {"line1": "Gade 1", "line2": None, "postal_code": postcode, "city": city,
            "region": None, "country": "DK"}  # fmt: skip


def test_a_shared_platform_website_is_no_merge_key(env: Env) -> None:
    crm_id = env.crm_create(
        "Organisation",
        org("Alpha Bakery", OrganisationVatNumber=None, OrganisationPostCode="1000",
            OrganisationCity="København", OrganisationWww="https://www.facebook.com/alphabakery"),
    )  # fmt: skip
    shop = env.shop_create(
        "customers",
        customer("Beta Plumbing", vat_number=None, website="https://facebook.com/betaplumbing",
                 billing_address=_address("Odense", "5000")),
    )  # fmt: skip
    env.sync()
    assert env.crm_get("Organisation", crm_id)["OrganisationName"] == "Alpha Bakery"
    assert env.shop_get("customers", shop["id"])["name"] == "Beta Plumbing"
    assert env.link(CUS, webcrm=crm_id).webshop_id != shop["id"]  # each created on the other side
    assert env.sync().writes == 0


def test_two_branches_with_one_vat_number_are_not_merged(env: Env) -> None:
    copenhagen = env.crm_create(
        "Organisation",
        org("Acme Copenhagen", OrganisationPostCode="1000", OrganisationCity="København",
            OrganisationWww=None),
    )  # fmt: skip
    aarhus = env.crm_create(
        "Organisation",
        org("Acme Aarhus", OrganisationPostCode="8000", OrganisationCity="Aarhus",
            OrganisationWww=None),
    )  # fmt: skip
    shop = env.shop_create(
        "customers",
        customer("Acme Aarhus", vat_number="DK12345678", website=None,
                 billing_address=_address("Aarhus", "8000")),
    )  # fmt: skip
    env.sync()
    assert env.crm_get("Organisation", copenhagen)["OrganisationName"] == "Acme Copenhagen"
    assert env.crm_get("Organisation", copenhagen)["OrganisationCity"] == "København"
    # the VAT number identifies neither branch: no merge by it, no renaming, no duplicate
    names = [c["name"] for c in env.shop_all("customers")]
    assert names.count("Acme Aarhus") == 1, names
    link = env.link(CUS, webcrm=copenhagen)
    assert link is None or link.webshop_id != shop["id"]
    with env.inst.session() as s:
        reasons = [a.reason for a in repo.all_put_aside(s, CUS.value)]
    linked_aarhus = env.link(CUS, webcrm=aarhus)
    # Aarhus merges by name + postal code, or is put aside with the ambiguous key named
    assert (linked_aarhus is not None and linked_aarhus.webshop_id == shop["id"]) or any(
        "ambiguous merge key vat:" in r for r in reasons
    ), reasons


def test_values_that_are_no_vat_number_never_merge(env: Env) -> None:
    crm_id = env.crm_create(
        "Organisation",
        org("Gamma ApS", OrganisationVatNumber="N/A", OrganisationWww=None,
            OrganisationPostCode="2100", OrganisationCity="København Ø"),
    )  # fmt: skip
    shop = env.shop_create(
        "customers",
        customer("Delta Shop", vat_number="N/A", website=None,
                 billing_address=_address("Vejle", "7100")),
    )  # fmt: skip
    env.sync()
    assert env.crm_get("Organisation", crm_id)["OrganisationName"] == "Gamma ApS"
    assert env.shop_get("customers", shop["id"])["name"] == "Delta Shop"
    assert env.link(CUS, webcrm=crm_id).webshop_id != shop["id"]
    assert env.sync().writes == 0


def test_a_linked_branch_still_makes_its_vat_number_ambiguous(env: Env) -> None:
    """The keys of linked records are kept: a VAT number that a linked pair holds is a
    branch number, and a new branch is not merged into another branch's customer by it."""
    copenhagen = env.crm_create(
        "Organisation",
        org("Acme Copenhagen", OrganisationPostCode="1000", OrganisationCity="København",
            OrganisationWww=None),
    )  # fmt: skip
    env.sync()  # created in the webshop: the pair holds DK12345678
    aarhus_shop = env.shop_create(
        "customers",
        customer("Acme Aarhus", vat_number="DK12345678", website=None,
                 billing_address=_address("Aarhus", "8000")),
    )  # fmt: skip
    odense = env.crm_create(
        "Organisation",
        org("Acme Odense", OrganisationPostCode="5000", OrganisationCity="Odense",
            OrganisationWww=None),
    )  # fmt: skip
    env.sync()
    assert env.shop_get("customers", aarhus_shop["id"])["name"] == "Acme Aarhus"
    assert env.crm_get("Organisation", odense)["OrganisationName"] == "Acme Odense"
    odense_link = env.link(CUS, webcrm=odense)
    assert odense_link is None or odense_link.webshop_id != aarhus_shop["id"]
    assert env.link(CUS, webcrm=copenhagen) is not None
