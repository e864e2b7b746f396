"""The code's tables and dataflow.md's tables must not drift apart.

The four property tables are parsed from the spec itself. Every spec row must have its
counterpart in ``mappings(config)`` (a row with the same fields and direction, the link,
an engine-set row or a constant), every code row must be in the spec, and every row is
converted in each direction it names with a sample value from :data:`SAMPLES`, so a row
added to the spec without a sample (or a mapping) fails here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from mapping_fakes import FakeContext

from shopsync.config.model import Config, Datatype, FieldsConfig
from shopsync.connectors.webcrm.schema import ENTITIES
from shopsync.engine.mapping import mappings
from shopsync.engine.mapping.base import (
    Direction,
    FieldMap,
    LinkMapping,
    MappingError,
    get_path,
    set_path,
)
from shopsync.engine.mapping.merge import CRITERIA
from tests.conftest import DATAFLOW, REPO

SECTIONS = {
    "Organisations ⇄ Customer": Datatype.customers,
    "Products ⇄ Product": Datatype.products,
    "Opportunities ⇄ Order": Datatype.orders,
    "Quotationline ⇄ Order line": Datatype.order_lines,
}
ENTITY = {
    Datatype.customers: "Organisation",
    Datatype.products: "Product",
    Datatype.orders: "Opportunity",
    Datatype.order_lines: "QuotationLine",
}
# The spec's example of a configured email field ("e.g. `OrganisationExtraCustom1`").
EMAIL_FIELD = "OrganisationExtraCustom1"
CONFIGURED = Config(fields=FieldsConfig(organisation_email=EMAIL_FIELD))


@dataclass(frozen=True)
class SpecRow:
    datatype: Datatype
    webcrm: tuple[str, ...]
    webshop: str | None
    """Path in the webshop record (``lines[].`` removed); None for ``—``."""
    kind: str
    """``link``, ``engine``, ``webshop-only`` or a Direction value (⇄ → ←)."""
    rule: str
    config_default: bool
    """The webCRM name is a *config* default."""

    @property
    def id(self) -> str:
        crm = "+".join(self.webcrm) or "—"
        return f"{self.datatype.value}:{crm}:{self.webshop or '—'}"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _webcrm_names(cell: str) -> tuple[tuple[str, ...], bool]:
    if cell == "—":
        return (), False
    if cell.startswith("*config*"):
        quoted = re.findall(r"`([^`]+)`", cell)
        return (tuple(quoted) if quoted else (EMAIL_FIELD,)), True
    return tuple(n.strip() for n in cell.split(",")), False


def _webshop_path(cell: str) -> str | None:
    if cell in ("—", "the order"):
        return None
    return cell.removeprefix("lines[].")


# A "—" webCRM cell whose rule names the webCRM value it derives from.
DERIVED = {
    # "→ the webshop product whose sku equals the line's sku"
    (Datatype.order_lines, "product_id"): (FieldsConfig().line_sku,),
}
# Rows whose two sides hold different things (ids of two systems, a sku and a product
# id): compared per side only, never with each other.
SEPARATE_DOMAINS = {"reference customers", "product by sku"}


def parse_spec() -> list[SpecRow]:
    if not DATAFLOW.exists():
        return []
    rows: list[SpecRow] = []
    datatype: Datatype | None = None
    for line in DATAFLOW.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            datatype = SECTIONS.get(line[3:].strip())
            continue
        if datatype is None or not line.startswith("|") or "---" in line:
            continue
        crm_cell, shop_cell, rule = _cells(line)[:3]
        if crm_cell.startswith("webCRM "):
            continue  # header
        webcrm, config_default = _webcrm_names(crm_cell)
        webshop = _webshop_path(shop_cell)
        webcrm = DERIVED.get((datatype, webshop or ""), webcrm)
        if rule.startswith("the link"):
            kind = "link"
        elif shop_cell == "the order" or (webshop is None and rule.startswith("←")):
            kind = "engine"
        elif rule.startswith("webshop-only"):
            kind = "webshop-only"
        else:
            kind = rule[0]
            assert kind in ("⇄", "→", "←"), f"dataflow.md row {line!r}: no direction"
        rows.append(SpecRow(datatype, webcrm, webshop, kind, rule, config_default))
    return rows


SPEC = parse_spec()
pytestmark = pytest.mark.skipif(not SPEC, reason=f"dataflow.md not found at {DATAFLOW}")
MAPPINGS = mappings(CONFIGURED)


def _rows(lm: LinkMapping, row: SpecRow) -> list[FieldMap]:
    return [f for f in lm.fields if f.webcrm == row.webcrm and f.webshop == row.webshop]


def test_spec_has_all_four_tables() -> None:
    assert {r.datatype for r in SPEC} == set(Datatype)
    assert len(SPEC) >= 40


@pytest.mark.parametrize("row", SPEC, ids=lambda r: r.id)
def test_spec_row_is_in_code(row: SpecRow) -> None:
    lm = MAPPINGS[row.datatype]
    if row.kind == "link":
        assert lm.id_fields == (row.webcrm[0], row.webshop)
    elif row.kind == "engine":
        assert any(e.webcrm == row.webcrm for e in lm.engine_set), row
    elif row.kind == "webshop-only":
        assert [f for f in lm.fields if f.webshop == row.webshop and not f.webcrm]
    else:
        found = _rows(lm, row)
        assert len(found) == 1, f"{row.id}: {len(found)} rows in the code"
        assert found[0].direction == Direction(row.kind)


@pytest.mark.parametrize("datatype", list(Datatype))
def test_code_row_is_in_spec(datatype: Datatype) -> None:
    spec = [r for r in SPEC if r.datatype == datatype]
    lm = MAPPINGS[datatype]
    for f in lm.fields:
        assert any(
            r.webcrm == f.webcrm
            and r.webshop == f.webshop
            and (r.kind == f.direction.value or r.kind == "webshop-only")
            for r in spec
        ), f"{datatype.value}: row {f.webcrm} {f.direction.value} {f.webshop} is not in dataflow.md"
    for e in lm.engine_set:
        assert any(r.kind == "engine" and r.webcrm == e.webcrm for r in spec), e
    assert any(r.kind == "link" and (r.webcrm[0], r.webshop) == lm.id_fields for r in spec)


def test_config_defaults_are_the_spec_defaults() -> None:
    defaults = FieldsConfig()
    configured = {n for r in SPEC if r.config_default for n in r.webcrm}
    assert {
        defaults.product_sku,
        defaults.product_name,
        defaults.line_sku,
        defaults.line_description,
    } <= configured
    assert defaults.organisation_email is None  # "*config* (default: none)"


def test_email_row_only_when_configured() -> None:
    plain = mappings(Config())[Datatype.customers]
    assert "email" not in plain.by_name
    assert MAPPINGS[Datatype.customers].by_name["email"].webcrm == (EMAIL_FIELD,)


@pytest.mark.parametrize(
    "row", [r for r in SPEC if "merge criterion" in r.rule], ids=lambda r: r.id
)
def test_merge_criterion_rows(row: SpecRow) -> None:
    assert row.webshop in CRITERIA[row.datatype]


def test_customer_merge_criteria_count() -> None:
    text = DATAFLOW.read_text(encoding="utf-8")
    block = text.split("Merge criteria", 1)[1].split("##", 1)[0]
    numbered = re.findall(r"^\d+\. ", block, flags=re.M)
    assert len(numbered) == len(CRITERIA[Datatype.customers])


@pytest.mark.parametrize(
    "row", [r for r in SPEC if re.search(r"max \d+ on the webCRM side", r.rule)], ids=lambda r: r.id
)
def test_max_length_rows(row: SpecRow) -> None:
    limit = int(re.search(r"max (\d+)", row.rule).group(1))  # type: ignore[union-attr]
    field = row.webcrm[0]
    assert ENTITIES[ENTITY[row.datatype]].by_name[field].max_length == limit
    lm = MAPPINGS[row.datatype]
    name = _rows(lm, row)[0].name
    ok = lm.to_webcrm(_shop_record(row.webshop, "Ø" * limit), FakeContext(), only=[name])
    assert ok[field] == "Ø" * limit
    with pytest.raises(MappingError) as err:
        lm.to_webcrm(_shop_record(row.webshop, "Ø" * (limit + 1)), FakeContext(), only=[name])
    assert err.value.field == field
    assert f"at most {limit}" in err.value.message


# ------------------------------------------------------------- samples per row

# (datatype, webCRM fields, webshop path) → (webCRM value, webshop value). Each ⇄ row is
# checked both ways with the same pair; "→"/"←" rows one way.
Sample = tuple[Any, Any]
SAMPLES: dict[tuple[Datatype, tuple[str, ...], str | None], Sample] = {
    (Datatype.customers, ("OrganisationName",), "name"): ("Ærø Møbler A/S", "Ærø Møbler A/S"),
    (Datatype.customers, ("OrganisationAddress",), "billing_address.line1"): (
        "Große Straße 5",
        "Große Straße 5",
    ),
    (Datatype.customers, ("OrganisationPostCode",), "billing_address.postal_code"): (
        "8000",
        "8000",
    ),
    (Datatype.customers, ("OrganisationCity",), "billing_address.city"): ("Århus", "Århus"),
    (Datatype.customers, ("OrganisationState",), "billing_address.region"): ("Bayern", "Bayern"),
    (Datatype.customers, ("OrganisationCountry",), "billing_address.country"): ("Denmark", "DK"),
    (Datatype.customers, ("OrganisationDeliveryAddress",), "shipping_address.line1"): (
        "Lagervej 1",
        "Lagervej 1",
    ),
    (Datatype.customers, ("OrganisationDeliveryPostCode",), "shipping_address.postal_code"): (
        "5000",
        "5000",
    ),
    (Datatype.customers, ("OrganisationDeliveryCity",), "shipping_address.city"): (
        "Odense",
        "Odense",
    ),
    (Datatype.customers, ("OrganisationTelephone",), "phone"): (
        "+45 12 34 56 78",
        "+45 12 34 56 78",
    ),
    (Datatype.customers, ("OrganisationWww",), "website"): ("www.ærø.dk", "www.ærø.dk"),
    (Datatype.customers, ("OrganisationVatNumber",), "vat_number"): ("DK12345678", "DK12345678"),
    (Datatype.customers, (EMAIL_FIELD,), "email"): ("info@aeroe.dk", "info@aeroe.dk"),
    (Datatype.products, ("ProductCustom1",), "sku"): ("SKU-1", "SKU-1"),
    (Datatype.products, ("ProductCustom2",), "name"): ("Kontorstol grå", "Kontorstol grå"),
    (Datatype.products, ("ProductMemo",), "description"): ("Größe 3\nbøg", "Größe 3\nbøg"),
    (Datatype.products, ("ProductPrice",), "unit_price"): (1249.5, "1249.50"),
    (Datatype.products, ("ProductListPrice",), "list_price"): (1374.45, "1374.45"),
    (Datatype.products, ("ProductCostPrice",), "cost_price"): (800.0, "800.00"),
    (Datatype.products, ("ProductVatCode",), "vat_rate"): ("25", "25.00"),
    (Datatype.products, ("ProductStockStatus",), "stock_status"): ("Backorder", "backorder"),
    (Datatype.products, (), "currency"): (None, "DKK"),
    (Datatype.products, (), "active"): (None, True),
    (Datatype.orders, ("OpportunityNumber",), "order_number"): ("WC-000042", "WC-000042"),
    (Datatype.orders, ("OpportunityOrganisationId",), "customer_id"): (7, "cus_7"),
    (Datatype.orders, ("OpportunityCurrencyName",), "currency"): ("EUR", "EUR"),
    (Datatype.orders, ("OpportunityOrderDate",), "order_date"): (
        "2026-11-26T00:00:00Z",
        "2026-11-26",
    ),
    (Datatype.orders, ("OpportunityDescription",), "notes"): (
        "Levering før jul",
        "Levering før jul",
    ),
    (Datatype.orders, ("OpportunityDiscount",), "discount_percent"): (12.5, "12.50"),
    (Datatype.orders, ("OpportunityPercent", "OpportunityLostDate"), "status"): (
        (100, None),
        "confirmed",
    ),
    (Datatype.orders, ("OpportunityOrderValue",), "total_excl_vat"): (9990.0, "9990.00"),
    (Datatype.orders, ("OpportunityErpId",), "id"): ("ord_42", "ord_42"),
    (Datatype.order_lines, ("QuotationLineData1",), "sku"): ("SKU-1", "SKU-1"),
    (Datatype.order_lines, ("QuotationLineData2",), "description"): ("Stol, grå", "Stol, grå"),
    (Datatype.order_lines, ("QuotationLineQuantity",), "quantity"): (2.5, "2.5"),
    (Datatype.order_lines, ("QuotationLinePrice",), "unit_price"): (1249.5, "1249.50"),
    (Datatype.order_lines, ("QuotationLineListPrice",), "list_price"): (1300.0, "1300.00"),
    (Datatype.order_lines, ("QuotationLineCostPrice",), "cost_price"): (700.25, "700.25"),
    (Datatype.order_lines, ("QuotationLineDiscount",), "discount_percent"): (5.0, "5.00"),
    (Datatype.order_lines, ("QuotationLineVatPercentage",), "vat_rate"): (25.0, "25.00"),
    (Datatype.order_lines, ("QuotationLineSortOrder",), "position"): (3, 3),
    (Datatype.order_lines, ("QuotationLineData1",), "product_id"): ("SKU-1", "prd_1"),
}


def _ctx() -> FakeContext:
    return FakeContext(CONFIGURED, skus={"SKU-1": "prd_1"}).link(Datatype.customers, "7", "cus_7")


def _shop_record(path: str | None, value: Any) -> dict[str, Any]:
    record: dict[str, Any] = {}
    if path is not None:
        set_path(record, path, value)
    return record


def _directions(row: SpecRow) -> list[tuple[SpecRow, str]]:
    if row.kind in ("⇄", "→", "webshop-only"):
        out = [(row, "to_webshop")]
        if row.kind == "⇄":
            out.append((row, "to_webcrm"))
        return out
    if row.kind == "←":
        return [(row, "to_webcrm")]
    return []


CASES = [c for r in SPEC for c in _directions(r)]


@pytest.mark.parametrize(("row", "way"), CASES, ids=lambda c: c if isinstance(c, str) else c.id)
def test_row_converts(row: SpecRow, way: str) -> None:
    key = (row.datatype, row.webcrm, row.webshop)
    assert key in SAMPLES, f"no sample for dataflow.md row {row.id}"
    crm_value, shop_value = SAMPLES[key]
    lm = MAPPINGS[row.datatype]
    (fm,) = [f for f in lm.fields if f.webcrm == row.webcrm and f.webshop == row.webshop]
    if way == "to_webshop":
        values = crm_value if len(row.webcrm) > 1 else (crm_value,)
        record = dict(zip(row.webcrm, values, strict=False))
        body = lm.to_webshop(record, _ctx(), only=[fm.name])
        assert get_path(body, fm.webshop) == shop_value
        if row.webcrm and fm.conversion.name not in SEPARATE_DOMAINS:
            assert fm.webcrm_value(record) == fm.webshop_value(body)
    else:
        record = _shop_record(row.webshop, shop_value)
        body = lm.to_webcrm(record, _ctx(), only=[fm.name])
        expected = crm_value if len(row.webcrm) > 1 else (crm_value,)
        assert tuple(body[f] for f in row.webcrm) == expected
        if fm.conversion.name not in SEPARATE_DOMAINS:
            assert fm.webcrm_value(body) == fm.webshop_value(record)


def test_every_sample_is_a_spec_row() -> None:
    spec_keys = {(r.datatype, r.webcrm, r.webshop) for r in SPEC}
    assert set(SAMPLES) <= spec_keys


# ------------------------------------------------------------- docs/mapping.md

DOC = REPO / "docs" / "mapping.md"


@pytest.mark.parametrize("datatype", list(Datatype))
def test_docs_list_every_code_row(datatype: Datatype) -> None:
    rows = [ln for ln in DOC.read_text(encoding="utf-8").splitlines() if ln.startswith("| ")]
    lm = MAPPINGS[datatype]
    for f in lm.fields:
        conv = "constant" if f.conversion.name.startswith("constant ") else f.conversion.name
        crm = ", ".join(f.webcrm) if len(f.webcrm) > 1 else (f.webcrm[0] if f.webcrm else "—")
        hits = [
            ln
            for ln in rows
            if f"| {f.webshop} | {f.direction.value} | `{conv}" in ln
            and crm in ln
            and ln.rstrip().endswith(f"| {f.name} |")
        ]
        assert hits, f"docs/mapping.md has no row {crm} {f.direction.value} {f.webshop} `{conv}`"
