"""Seed data for the emulator: organisations, products, opportunities and their lines.

Built from the shared universe (``emulators/common/seeddata.py``), so organisation ``i``
here is company ``i`` there and product ``i`` is item ``i``: the reference webshop,
seeded with the same seed, holds matching customers and products, which is what the
onboarding merge needs to find. Everything drawn is deterministic for a given seed
(only the server-set ``…CreatedAt``/``…UpdatedAt`` are the time of seeding).

Rows go in with bulk inserts, one transaction per table: 10,000 organisations with
their products, opportunities and ~50,000 lines take seconds, mostly spent in Faker.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shopsync.connectors.webcrm.schema import (
    OPPORTUNITY,
    ORGANISATION,
    PRODUCT,
    QUOTATIONLINE,
)
from shopsync.emulators.common.seeddata import Company, Item, company, item, rng_for
from shopsync.emulators.webcrm.store import Store
from shopsync.emulators.webcrm.timeutil import format_ts
from shopsync.emulators.webcrm.validation import clean_record

STOCK_TEXT = {"in_stock": "In stock", "out_of_stock": "Out of stock", "backorder": "Backorder"}
CURRENCY = {"DK": "DKK", "SE": "SEK", "NO": "NOK", "DE": "EUR", "GB": "EUR"}
CURRENCIES = ("DKK", "EUR", "SEK", "NOK")
DESCRIPTIONS = (
    "Tilbud på kontormøbler", "Webshop-ordre", "Angebot Büroausstattung", "Offert kontor",
    "Tilbud – nytt kontor", "Office refit quote", "Rammeaftale 2026", "Bestilling, lager",
)  # fmt: skip
LOST_REASONS = ("Pris", "Leveringstid", "Valgte konkurrent", "Budget gestrichen", "No decision")
EPOCH = datetime(2025, 1, 1, 8, 0, 0)


@dataclass(frozen=True)
class SeedPlan:
    """How much to seed, and which free fields hold SKU, name and e-mail.

    The field names default to the project's default configuration
    (``config.model.FieldsConfig``); pass an installation's own to seed for it.
    """

    organisations: int
    seed: int = 1
    products: int | None = None
    """Default: a fifth of the organisations (at least 1 when there are any)."""
    opportunities: int | None = None
    """Default: half the organisations."""
    product_sku_field: str = "ProductCustom1"
    product_name_field: str = "ProductCustom2"
    line_sku_field: str = "QuotationLineData1"
    line_description_field: str = "QuotationLineData2"
    organisation_email_field: str | None = None

    def __post_init__(self) -> None:
        for count in ("organisations", "products", "opportunities"):
            value = getattr(self, count)
            if value is not None and value < 0:
                raise ValueError(f"{count}: must not be negative, got {value}")
        for attr, entity in (
            ("product_sku_field", PRODUCT),
            ("product_name_field", PRODUCT),
            ("line_sku_field", QUOTATIONLINE),
            ("line_description_field", QUOTATIONLINE),
            ("organisation_email_field", ORGANISATION),
        ):
            name = getattr(self, attr)
            if name is None:
                continue
            spec = entity.by_name.get(name)
            if spec is None or spec.type != "string" or name in entity.server_fields:
                raise ValueError(f"{attr}: {name!r} is not a text field of {entity.name}")

    @property
    def n_products(self) -> int:
        if self.products is not None:
            return self.products
        return max(1, self.organisations // 5) if self.organisations else 0

    @property
    def n_opportunities(self) -> int:
        if self.opportunities is not None:
            return self.opportunities
        return self.organisations // 2


def _vat_as_typed(c: Company, rng: random.Random) -> str | None:
    """The VAT number as a person may have typed it (the merge normalises these)."""
    r = rng.random()
    if r < 0.70:
        return c.vat_number
    if r < 0.82:
        return f"{c.vat_number[:2]} {c.vat_number[2:]}"
    if r < 0.92:
        return c.vat_number[2:]
    return None


def organisation_row(c: Company, seed: int, email_field: str | None = None) -> dict[str, Any]:
    """The webCRM organisation for company ``c`` of universe ``seed`` (without id)."""
    rng = rng_for(seed, "webcrm-organisation", c.index)
    row: dict[str, Any] = {
        "OrganisationName": c.name,
        "OrganisationAddress": c.address,
        "OrganisationPostCode": c.postal_code,
        "OrganisationCity": c.city,
        "OrganisationState": c.region,
        "OrganisationCountry": c.country_name,
        "OrganisationTelephone": c.phone,
        "OrganisationWww": c.website,
        "OrganisationVatNumber": _vat_as_typed(c, rng),
        "OrganisationDeliveryAddress": c.delivery_address,
        "OrganisationDeliveryPostCode": c.delivery_postal_code,
        "OrganisationDeliveryCity": c.delivery_city,
        "OrganisationType": rng.choice(("Kunde", "Kunde", "Kunde", "Prospect", "Partner")),
    }
    if email_field:
        row[email_field] = c.email
    return clean_record(ORGANISATION, row)


def product_row(it: Item, sku_field: str, name_field: str) -> dict[str, Any]:
    """The webCRM product for catalogue item ``it`` (without id)."""
    row = {
        sku_field: it.sku,
        name_field: it.name,
        "ProductMemo": it.description,
        "ProductPrice": float(it.unit_price),
        "ProductListPrice": float(it.list_price),
        "ProductCostPrice": float(it.cost_price),
        "ProductVatCode": str(it.vat_rate),
        "ProductStockStatus": STOCK_TEXT[it.stock_status],
    }
    return clean_record(PRODUCT, row)


def _ts(rng: random.Random, start: datetime = EPOCH, days: int = 600) -> datetime:
    return start + timedelta(days=rng.randint(0, days), minutes=rng.randint(0, 9 * 60))


def seed_store(store: Store, plan: SeedPlan) -> dict[str, int]:
    """Add the planned records to ``store`` (after what is there); returns the counts."""
    seed = plan.seed
    companies = [company(seed, i) for i in range(plan.organisations)]
    org_base = store.max_id(ORGANISATION.name)
    store.insert_many(
        ORGANISATION.name,
        (
            {
                **organisation_row(c, seed, plan.organisation_email_field),
                ORGANISATION.id_field: org_base + i + 1,
            }
            for i, c in enumerate(companies)
        ),
    )

    items = [item(seed, i) for i in range(plan.n_products)]
    product_base = store.max_id(PRODUCT.name)
    store.insert_many(
        PRODUCT.name,
        (
            {
                **product_row(it, plan.product_sku_field, plan.product_name_field),
                PRODUCT.id_field: product_base + i + 1,
            }
            for i, it in enumerate(items)
        ),
    )

    opportunities: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    opp_base = store.max_id(OPPORTUNITY.name)
    line_id = store.max_id(QUOTATIONLINE.name)
    for j in range(plan.n_opportunities):
        rng = rng_for(seed, "webcrm-opportunity", j)
        oid = opp_base + j + 1
        org_id: int | None = None
        currency = rng.choice(CURRENCIES)
        if companies:
            k = rng.randrange(len(companies))
            org_id = org_base + k + 1
            if rng.random() < 0.85:
                currency = CURRENCY[companies[k].country]
        opp: dict[str, Any] = {
            OPPORTUNITY.id_field: oid,
            "OpportunityOrganisationId": org_id,
            "OpportunityNumber": f"WC-{oid:06d}" if rng.random() < 0.85 else None,
            "OpportunityCurrencyName": currency,
            "OpportunityDescription": rng.choice(DESCRIPTIONS),
            "OpportunityDiscount": rng.choice((0.0, 0.0, 0.0, 5.0, 10.0)),
            "OpportunityPercent": rng.choice((10, 25, 50, 75)),
        }
        fate = rng.random()
        if fate < 0.35:
            opp["OpportunityPercent"] = 100
            opp["OpportunityOrderDate"] = format_ts(_ts(rng))
        elif fate < 0.45:
            opp["OpportunityLostDate"] = format_ts(_ts(rng))
            opp["OpportunityLost1"] = rng.choice(LOST_REASONS)
        total = 0.0
        for pos in range(rng.randint(1, 20) if items else 0):
            it = items[rng.randrange(len(items))]
            qty = float(rng.randint(1, 10))
            price = float(it.unit_price)
            discount = rng.choice((0.0, 0.0, 0.0, 5.0))
            total += qty * price * (1 - discount / 100)
            line_id += 1
            lines.append(
                {
                    QUOTATIONLINE.id_field: line_id,
                    "QuotationLineOpportunityId": oid,
                    "QuotationLineOrganisationId": org_id,
                    plan.line_sku_field: it.sku,
                    plan.line_description_field: it.name,
                    "QuotationLineQuantity": qty,
                    "QuotationLinePrice": price,
                    "QuotationLineListPrice": float(it.list_price),
                    "QuotationLineCostPrice": float(it.cost_price),
                    "QuotationLineDiscount": discount,
                    "QuotationLineVatPercentage": float(it.vat_rate),
                    "QuotationLineSortOrder": pos + 1,
                    "QuotationLineStockStatus": STOCK_TEXT[it.stock_status],
                }
            )
        opp["OpportunityOrderValue"] = round(total * (1 - opp["OpportunityDiscount"] / 100), 2)
        opportunities.append(opp)
    store.insert_many(OPPORTUNITY.name, opportunities)
    store.insert_many(QUOTATIONLINE.name, lines)
    return {
        "organisations": len(companies),
        "products": len(items),
        "opportunities": len(opportunities),
        "quotation_lines": len(lines),
    }
