"""Seed data: deterministic, realistic, and internally consistent (lines → product SKUs)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from shopsync.emulators.common.seeddata import company, item
from shopsync.emulators.webcrm.seed import SeedPlan, seed_store
from shopsync.emulators.webcrm.store import Store

SERVER_SET = re.compile(r"(CreatedAt|UpdatedAt)$")


def _dump(store: Store) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for name in ("Organisation", "Product", "Opportunity", "QuotationLine"):
        rows = store.page(name, 1, 100_000)
        out[name] = [{k: v for k, v in r.items() if not SERVER_SET.search(k)} for r in rows]
    return out


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("seed") / "a.sqlite")
    seed_store(store, SeedPlan(200, seed=11))
    return store


def test_same_seed_same_data_other_seed_other_data(seeded: Store, tmp_path: Path) -> None:
    again = Store(tmp_path / "b.sqlite")
    seed_store(again, SeedPlan(200, seed=11))
    assert _dump(again) == _dump(seeded)
    other = Store(tmp_path / "c.sqlite")
    seed_store(other, SeedPlan(200, seed=12))
    assert _dump(other)["Organisation"] != _dump(seeded)["Organisation"]


def test_organisations_come_from_the_shared_universe(seeded: Store) -> None:
    orgs = seeded.page("Organisation", 1, 1000)
    assert len(orgs) == 200
    for i, org in enumerate(orgs[:50]):
        c = company(11, i)
        assert org["OrganisationName"] == c.name and org["OrganisationWww"] == c.website
        assert org["OrganisationCountry"] == c.country_name
        assert org["OrganisationDeliveryCity"] == c.delivery_city
        vat = org["OrganisationVatNumber"]
        assert vat is None or vat.replace(" ", "") in (c.vat_number, c.vat_number[2:])
    text = " ".join(str(v) for o in orgs for v in o.values() if isinstance(v, str))
    for ch in "æøåüß":
        assert ch in text.lower(), ch
    countries = Counter(o["OrganisationCountry"] for o in orgs)
    assert len(countries) >= 5
    assert sum(o["OrganisationVatNumber"] is not None for o in orgs) > 150


def test_products_opportunities_and_lines_are_consistent(seeded: Store) -> None:
    products = seeded.page("Product", 1, 1000)
    assert len(products) == 40
    by_sku = {p["ProductCustom1"]: p for p in products}
    assert products[3]["ProductCustom1"] == item(11, 3).sku
    assert {p["ProductStockStatus"] for p in products} <= {"In stock", "Out of stock", "Backorder"}
    assert all(re.fullmatch(r"\d+", p["ProductVatCode"]) for p in products)

    opps = seeded.page("Opportunity", 1, 1000)
    assert len(opps) == 100
    org_ids = {o["OrganisationId"] for o in seeded.page("Organisation", 1, 1000)}
    assert {o["OpportunityOrganisationId"] for o in opps} <= org_ids
    numbers = [o["OpportunityNumber"] for o in opps]
    assert 60 <= sum(n is not None for n in numbers) < 100
    assert all(re.fullmatch(r"WC-\d{6}", n) for n in numbers if n)
    assert {o["OpportunityCurrencyName"] for o in opps} <= {"DKK", "EUR", "SEK", "NOK"}
    won = [o for o in opps if o["OpportunityPercent"] == 100]
    lost = [o for o in opps if o["OpportunityLostDate"]]
    assert won and lost and all(o["OpportunityOrderDate"] for o in won)

    lines = seeded.page("QuotationLine", 1, 100_000)
    per_opp = Counter(ln["QuotationLineOpportunityId"] for ln in lines)
    assert set(per_opp) == {o["OpportunityId"] for o in opps}
    assert all(1 <= n <= 20 for n in per_opp.values())
    opp_org = {o["OpportunityId"]: o["OpportunityOrganisationId"] for o in opps}
    for ln in lines:
        product = by_sku[ln["QuotationLineData1"]]
        assert ln["QuotationLineData2"] == product["ProductCustom2"]
        assert ln["QuotationLinePrice"] == product["ProductPrice"]
        assert ln["QuotationLineOrganisationId"] == opp_org[ln["QuotationLineOpportunityId"]]


def test_field_names_are_configurable(tmp_path: Path) -> None:
    store = Store(tmp_path / "f.sqlite")
    plan = SeedPlan(
        10, seed=3, product_sku_field="ProductPlus1", product_name_field="ProductPlus2",
        line_sku_field="QuotationLineData5", line_description_field="QuotationLineData6",
        organisation_email_field="OrganisationExtraCustom1",
    )  # fmt: skip
    seed_store(store, plan)
    p = store.page("Product", 1, 1)[0]
    assert p["ProductPlus1"].startswith("SKU-") and p["ProductCustom1"] is None
    line = store.page("QuotationLine", 1, 1)[0]
    assert line["QuotationLineData5"].startswith("SKU-") and line["QuotationLineData1"] is None
    assert store.page("Organisation", 1, 1)[0]["OrganisationExtraCustom1"].startswith("info@")
    with pytest.raises(ValueError, match="product_sku_field"):
        SeedPlan(1, product_sku_field="ProductPrice")
