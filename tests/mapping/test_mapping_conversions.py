"""Conversion unit tests with the examples dataflow.md and the team brief name."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pycountry
import pytest
from mapping_fakes import FakeContext

from shopsync.config.model import (
    Config,
    Datatype,
    MappingConfig,
    StatusRule,
    default_status_table,
)
from shopsync.connectors.webcrm.schema import ENTITIES
from shopsync.engine.mapping import mappings
from shopsync.engine.mapping.base import OMIT, MappingError, Unresolved
from shopsync.engine.mapping.conversions import (
    COUNTRY,
    DATE,
    DISCOUNT,
    INTEGER,
    MONEY,
    PERCENT,
    PRODUCT_BY_SKU,
    QUANTITY,
    TEXT,
    country_code,
    country_name,
    currency,
    order_status,
    reference,
    required,
    value_table,
    vat_codes,
)

CTX = FakeContext()


# ------------------------------------------------------------------------ text


@pytest.mark.parametrize("value", ["Ærø Møbler A/S", "Große Straße", "Åkersberga Öl", "Ünye"])
def test_text_keeps_letters(value: str) -> None:
    assert TEXT.to_webshop(value, CTX) == value
    assert TEXT.to_webcrm(value, CTX) == value
    assert TEXT.norm_webcrm(value) == TEXT.norm_webshop(value) == value


def test_text_empty_is_none_towards_webshop_and_empty_towards_webcrm() -> None:
    assert TEXT.to_webshop("", CTX) is None
    assert TEXT.to_webshop("   ", CTX) is None
    assert TEXT.to_webshop(None, CTX) is None
    assert TEXT.to_webcrm(None, CTX) == ""
    assert TEXT.norm_webcrm("") is None
    assert TEXT.norm_webshop(None) is None


def test_text_norm_ignores_outer_space_line_endings_and_composition() -> None:
    assert TEXT.norm_webcrm("  Linje 1\r\nLinje 2 ") == "Linje 1\nLinje 2"
    assert TEXT.norm_webshop("a\u030a") == TEXT.norm_webcrm("å")  # decomposed å
    assert TEXT.norm_webshop("Ab") != TEXT.norm_webshop("ab")  # case is a change


def test_required_text() -> None:
    conv = required(TEXT, "a name")
    assert conv.to_webshop("x", CTX) == "x"
    with pytest.raises(MappingError, match="requires a name"):
        conv.to_webshop(" ", CTX)
    assert conv.to_webcrm(None, CTX) == ""


# --------------------------------------------------------------------- country


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("Danmark", "DK"),
        ("Denmark", "DK"),
        ("danmark ", "DK"),
        ("DANMARK", "DK"),
        ("DK", "DK"),
        ("dk", "DK"),
        ("DNK", "DK"),
        ("208", "DK"),
        ("Deutschland", "DE"),
        ("Germany", "DE"),
        ("Tyskland", "DE"),
        ("Sverige", "SE"),
        ("Schweden", "SE"),
        ("Norge", "NO"),
        ("Noreg", "NO"),
        ("Norway", "NO"),
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("U.K.", "GB"),
        ("England", "GB"),
        ("Great Britain", "GB"),
        ("Storbritannien", "GB"),
        ("Holland", "NL"),
        ("Nederland", "NL"),
        ("USA", "US"),
        ("Grønland", "GL"),
        ("Færøerne", "FO"),
        ("Suomi", "FI"),
        ("Österreich", "AT"),
        ("Schweiz", "CH"),
        ("Ísland", "IS"),
    ],
)
def test_country_spellings(typed: str, code: str) -> None:
    assert country_code(typed) == code
    assert COUNTRY.to_webshop(typed, CTX) == code
    assert COUNTRY.norm_webcrm(typed) == code


def test_danmark_and_denmark_are_the_same_value() -> None:
    assert COUNTRY.norm_webcrm("Danmark") == COUNTRY.norm_webcrm("Denmark")


def test_country_to_webcrm_is_the_english_common_name() -> None:
    assert COUNTRY.to_webcrm("DK", CTX) == "Denmark"
    assert COUNTRY.to_webcrm("GB", CTX) == "United Kingdom"
    assert COUNTRY.to_webcrm("TW", CTX) == "Taiwan"
    assert COUNTRY.to_webcrm(None, CTX) == ""


def test_every_iso_country_round_trips_and_fits_webcrm() -> None:
    limit = ENTITIES["Organisation"].by_name["OrganisationCountry"].max_length
    assert limit is not None
    for c in pycountry.countries:
        name = country_name(c.alpha_2)
        assert name is not None
        assert len(name) <= limit, name
        assert country_code(name) == c.alpha_2, name
        assert COUNTRY.norm_webcrm(name) == COUNTRY.norm_webshop(c.alpha_2) == c.alpha_2


def test_unknown_country_is_kept_by_norm_and_refused_on_the_way() -> None:
    assert COUNTRY.norm_webcrm("Atlantis") == "Atlantis"
    with pytest.raises(MappingError, match="Atlantis"):
        COUNTRY.to_webshop("Atlantis", CTX)
    with pytest.raises(MappingError, match="ZZ"):
        COUNTRY.to_webcrm("ZZ", CTX)
    assert COUNTRY.to_webshop("", CTX) is None


# ----------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("crm", "shop"),
    [
        (1249.5, "1249.50"),
        (0, "0.00"),
        (0.1 + 0.2, "0.30"),
        (1.005, "1.01"),  # half up on the number as typed, not on the binary double
        (2.675, "2.68"),
        (-0.001, "0.00"),  # never "-0.00"
        (-12.345, "-12.35"),
        (1e9, "1000000000.00"),
        (None, None),
    ],
)
def test_money_to_webshop(crm: float | None, shop: str | None) -> None:
    assert MONEY.to_webshop(crm, CTX) == shop
    assert MONEY.norm_webcrm(crm) == shop


def test_money_to_webcrm_and_norms() -> None:
    assert MONEY.to_webcrm("1249.50", CTX) == 1249.5
    assert MONEY.to_webcrm("1249.505", CTX) == 1249.51
    assert MONEY.to_webcrm(None, CTX) is None
    assert MONEY.norm_webshop("1249.5") == MONEY.norm_webshop("1249.500") == "1249.50"
    assert MONEY.norm_webshop(" 1E+3 ") == "1000.00"


@pytest.mark.parametrize("bad", ["abc", "1,5", float("nan"), float("inf"), True, [1]])
def test_money_bad_values(bad: object) -> None:
    with pytest.raises(MappingError):
        MONEY.to_webshop(bad, CTX)
    MONEY.norm_webshop(bad)  # never raises


def test_quantity_discount_percent_integer() -> None:
    assert QUANTITY.to_webshop(2.0, CTX) == "2"
    assert QUANTITY.to_webshop(0.33333, CTX) == "0.3333"
    assert QUANTITY.to_webshop(100, CTX) == "100"
    assert QUANTITY.norm_webshop("2.50000") == "2.5"
    assert QUANTITY.to_webcrm("1.23456", CTX) == 1.2346
    assert DISCOUNT.to_webshop(None, CTX) == "0.00"
    assert DISCOUNT.to_webcrm(None, CTX) == 0.0
    assert DISCOUNT.norm_webcrm(None) == DISCOUNT.norm_webshop("0") == "0.00"
    assert PERCENT.to_webshop(25, CTX) == "25.00"
    assert PERCENT.to_webshop(None, CTX) is None
    assert INTEGER.to_webshop(3.0, CTX) == 3
    assert INTEGER.to_webcrm("4", CTX) == 4
    with pytest.raises(MappingError, match="whole number"):
        INTEGER.to_webshop(3.5, CTX)


# ----------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("crm", "shop"),
    [
        ("2026-11-26T00:00:00Z", "2026-11-26"),
        ("2026-11-26T00:00:00", "2026-11-26"),
        ("2026-11-26T23:30:00-05:00", "2026-11-26"),  # the date as written
        ("2026-11-26T10:15:30.123+01:00", "2026-11-26"),
        ("2026-11-26", "2026-11-26"),
        ("0001-01-01T00:00:00", None),  # .NET's empty date
        ("", None),
        (None, None),
    ],
)
def test_date_to_webshop(crm: str | None, shop: str | None) -> None:
    assert DATE.to_webshop(crm, CTX) == shop
    assert DATE.norm_webcrm(crm) == shop


def test_date_to_webcrm_is_midnight_utc() -> None:
    assert DATE.to_webcrm("2026-11-26", CTX) == "2026-11-26T00:00:00Z"
    assert DATE.to_webcrm(None, CTX) is None
    with pytest.raises(MappingError, match="ISO 8601"):
        DATE.to_webcrm("26/11/2026", CTX)
    assert DATE.norm_webshop("26/11/2026") == "26/11/2026"


@pytest.mark.parametrize("value", ["27670201", 27670201, "2026-W48-4", "20261126T000000"])
def test_date_is_extended_iso_only(value: object) -> None:
    """ISO 8601's basic and week forms are not dates here (the contracts write
    ``YYYY-MM-DD``): a number is never read as a date, and the kept text is stable."""
    with pytest.raises(MappingError, match=r"ISO 8601|expected a date"):
        DATE.to_webshop(value, CTX)
    assert DATE.norm_webcrm(value) == str(value)
    assert DATE.norm_webcrm(DATE.norm_webcrm(value)) == str(value)
    assert DATE.to_webshop("2026-11-26 10:15", CTX) == "2026-11-26"  # a space is a "T"


# ----------------------------------------------------------------- VAT codes


def test_vat_codes_empty_table_numeric_code_is_the_rate() -> None:
    conv = vat_codes({})
    assert conv.to_webshop("25", CTX) == "25.00"
    assert conv.to_webshop("12,5", CTX) == "12.50"
    assert conv.to_webshop("25 %", CTX) == "25.00"
    assert conv.to_webshop("0", CTX) == "0.00"
    assert conv.to_webcrm("25.00", CTX) == "25"
    assert conv.to_webcrm("12.50", CTX) == "12.5"
    assert conv.norm_webcrm("25") == conv.norm_webshop("25.00") == "25.00"
    with pytest.raises(MappingError, match=r"not a number and mapping\.vat_codes lists no codes"):
        conv.to_webshop("S", CTX)
    with pytest.raises(MappingError, match="requires vat_rate"):
        conv.to_webshop("", CTX)


def test_vat_codes_table() -> None:
    table = {"S": Decimal(25), "Standard": Decimal(25), "R": Decimal("12.5"), "Z": Decimal(0)}
    conv = vat_codes(Config(mapping=MappingConfig(vat_codes=table)).mapping.vat_codes)
    assert conv.to_webshop("S", CTX) == "25.00"
    assert conv.to_webshop("standard", CTX) == "25.00"
    assert conv.to_webcrm("0", CTX) == "Z"
    with pytest.raises(MappingError, match="requires vat_rate"):
        conv.to_webshop(None, CTX)
    assert conv.to_webcrm("25", CTX) == "S"  # first code for the rate
    assert conv.to_webcrm("12.50", CTX) == "R"
    assert conv.norm_webcrm("Standard") == conv.norm_webcrm("S") == "25.00"
    with pytest.raises(MappingError, match=r"'X' is not in mapping\.vat_codes"):
        conv.to_webshop("X", CTX)
    with pytest.raises(MappingError, match=r"no VAT code for rate 19\.00"):
        conv.to_webcrm("19", CTX)


# -------------------------------------------------------------- stock status


def test_stock_status_default_table() -> None:
    conv = value_table("mapping.stock_status", Config().mapping.stock_status)
    assert conv.to_webshop("In stock", CTX) == "in_stock"
    assert conv.to_webshop("in STOCK ", CTX) == "in_stock"
    assert conv.to_webshop("Backorder", CTX) == "backorder"
    assert conv.to_webcrm("out_of_stock", CTX) == "Out of stock"
    with pytest.raises(MappingError, match=r"'Maybe' is not in mapping\.stock_status"):
        conv.to_webshop("Maybe", CTX)
    # issue 9: an empty stock status (most products) is in stock, not put aside
    assert conv.to_webshop(None, CTX) == conv.to_webshop("  ", CTX) == "in_stock"
    with pytest.raises(MappingError, match="has no webCRM value"):
        conv.to_webcrm("discontinued", CTX)


def test_stock_status_reverse_uses_first_key_and_empty_key() -> None:
    table = {
        "": "in_stock",
        "På lager": "in_stock",
        "In stock": "in_stock",
        "Udsolgt": "out_of_stock",
    }
    conv = value_table("mapping.stock_status", table)  # type: ignore[arg-type]
    assert conv.to_webcrm("in_stock", CTX) == "På lager"
    assert conv.to_webshop(None, CTX) == "in_stock"
    assert conv.norm_webcrm("In stock") == conv.norm_webcrm("På lager") == "in_stock"


# ---------------------------------------------------------------------- status

STATUS = order_status(default_status_table(100))


@pytest.mark.parametrize(
    ("percent", "lost", "status"),
    [
        (100, None, "confirmed"),
        (50, None, "pending"),
        (0, None, "pending"),
        (None, None, "pending"),
        (100.0, "", "confirmed"),
        (100, "2026-01-05T00:00:00Z", "cancelled"),  # lost wins
        (0, "2026-01-05T00:00:00Z", "cancelled"),
        (20, "0001-01-01T00:00:00", "pending"),  # .NET empty date is no date
    ],
)
def test_status_to_webshop(percent: object, lost: str | None, status: str) -> None:
    assert STATUS.to_webshop((percent, lost), CTX) == status
    assert STATUS.norm_webcrm((percent, lost)) == status


def test_status_won_percent_from_config() -> None:
    conv = order_status(Config(mapping=MappingConfig(won_percent=90)).mapping.status_table)
    assert conv.to_webshop((90, None), CTX) == "confirmed"
    assert conv.to_webshop((95, None), CTX) == "pending"  # the table matches percent exactly
    assert conv.to_webshop((89, None), CTX) == "pending"
    assert conv.to_webcrm("completed", CTX) == (90, None)


def test_status_back_to_webcrm() -> None:
    assert STATUS.to_webcrm("confirmed", CTX) == (100, None)
    assert STATUS.to_webcrm("completed", CTX) == (100, None)
    # leaving the percent could leave a won 100 %, which reads back as confirmed: the
    # lowest percent that reads back as pending is written
    assert STATUS.to_webcrm("pending", CTX) == (0, None)
    before = datetime.now(UTC).replace(microsecond=0)  # webCRM's text has whole seconds
    percent, lost = STATUS.to_webcrm("cancelled", CTX)
    after = datetime.now(UTC)
    assert percent is OMIT
    assert lost is not None
    when = datetime.fromisoformat(lost)
    assert when.tzinfo is not None
    assert before <= when <= after  # now, however long the call took
    with pytest.raises(MappingError, match="'shipped' is not an order status"):
        STATUS.to_webcrm("shipped", CTX)


def test_status_through_the_orders_table_leaves_an_unset_percent_out() -> None:
    orders = mappings(Config())[Datatype.orders]
    assert orders.to_webcrm({"status": "pending"}, CTX, only=["status"]) == {
        "OpportunityPercent": 0,
        "OpportunityLostDate": None,
    }
    # a lost date reads as cancelled at any percent: the percent is left out
    body = orders.to_webcrm({"status": "cancelled"}, CTX, only=["status"])
    assert set(body) == {"OpportunityLostDate"}


@pytest.mark.parametrize("status", ["pending", "confirmed", "completed", "cancelled"])
@pytest.mark.parametrize(
    "before", [(p, lost) for p in (None, 0, 10, 50, 90, 100) for lost in (None, "2026-01-05")]
)
def test_status_written_reads_back_whatever_webcrm_had(
    status: str, before: tuple[int | None, str | None]
) -> None:
    """A status written over any opportunity reads back as that status (its class)."""
    for rules in (default_status_table(100), default_status_table(90), _CUSTOM_RULES):
        conv = order_status(rules)
        written = tuple(
            old if new is OMIT else new
            for old, new in zip(before, conv.to_webcrm(status, CTX), strict=True)
        )
        assert conv.norm_webcrm(written) == conv.norm_webshop(status)
        assert conv.norm_webshop(conv.to_webshop(written, CTX)) == conv.norm_webshop(status)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (  # the catch-all first: confirmed would read back as pending
            [
                StatusRule(status="pending"),
                StatusRule(status="confirmed", percent=100),
                StatusRule(status="completed", percent=100),
                StatusRule(status="cancelled", lost=True),
            ],
            "'confirmed' cannot be written to webCRM: percent 100 without a lost date "
            "reads back as pending",
        ),
        (  # a catch-all for lost opportunities above the cancelled row
            [
                StatusRule(status="pending", lost=True),
                StatusRule(status="cancelled", percent=0, lost=True),
                StatusRule(status="confirmed", percent=100),
                StatusRule(status="completed", percent=100),
                StatusRule(status="pending"),
            ],
            "'cancelled' cannot be written to webCRM: percent 0 with a lost date "
            "reads back as pending",
        ),
    ],
)
def test_status_table_that_cannot_round_trip_is_refused(
    rules: list[StatusRule], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape("mapping.status_table: " + message)):
        order_status(rules)


_CUSTOM_RULES = [
    StatusRule(status="cancelled", percent=0, lost=True),
    StatusRule(status="completed", percent=100),
    StatusRule(status="confirmed", percent=100),
    StatusRule(status="confirmed", percent=90),
    StatusRule(status="pending", percent=10),
    StatusRule(status="pending"),
]


def test_status_custom_table() -> None:
    conv = order_status(_CUSTOM_RULES)
    assert conv.to_webshop((90, None), CTX) == "confirmed"
    assert conv.to_webshop((100, None), CTX) == "completed"
    assert conv.to_webcrm("confirmed", CTX) == (100, None)  # its first row
    assert conv.to_webcrm("pending", CTX) == (10, None)
    assert conv.to_webcrm("cancelled", CTX)[0] == 0
    # completed is listed first, so it is the one value for both
    assert conv.norm_webshop("confirmed") == conv.norm_webshop("completed") == "completed"
    assert conv.norm_webcrm((90, None)) == "completed"
    # a lost opportunity at 50 % matches no row: put aside, and its norm is stable
    with pytest.raises(MappingError, match=r"no row of mapping\.status_table matches percent 50"):
        conv.to_webshop((50, "2026-01-01"), CTX)
    marker = conv.norm_webcrm((50, "2026-01-01"))
    assert marker is not None and conv.norm_webcrm(marker) == marker


def test_status_lossy_values_normalize_stably() -> None:
    # confirmed and completed both are webCRM's won percent: one value on each side.
    assert STATUS.norm_webshop("completed") == STATUS.norm_webshop("confirmed")
    assert STATUS.norm_webcrm(STATUS.to_webcrm("completed", CTX)) == STATUS.norm_webshop(
        "completed"
    )
    # a percent moving below won is no change; the lost date's moment does not count.
    assert STATUS.norm_webcrm((10, None)) == STATUS.norm_webcrm((60, None))
    assert STATUS.norm_webcrm((0, "2026-01-01T00:00:00Z")) == STATUS.norm_webcrm(
        (50, STATUS.to_webcrm("cancelled", CTX)[1])
    )


# -------------------------------------------------------------------- currency


def test_currency() -> None:
    conv = currency("DKK")
    assert conv.to_webshop("DKK", CTX) == "DKK"
    assert conv.to_webshop("eur", CTX) == "EUR"
    assert conv.to_webshop("Danish Krone", CTX) == "DKK"
    assert conv.to_webshop(None, CTX) == "DKK"
    assert currency("EUR").to_webshop("", CTX) == "EUR"
    assert conv.norm_webcrm(None) == conv.norm_webshop("DKK")
    with pytest.raises(MappingError, match="ISO 4217"):
        conv.to_webshop("Kroner", CTX)
    assert conv.to_webcrm("SEK", CTX) == "SEK"


# ------------------------------------------------------------------ references


def test_reference_translates_through_links() -> None:
    conv = reference(Datatype.customers, required_for="an order needs a customer")
    ctx = FakeContext().link(Datatype.customers, "7", "cus_7")
    assert conv.to_webshop(7, ctx) == "cus_7"
    assert conv.to_webcrm("cus_7", ctx) == 7
    with pytest.raises(Unresolved) as waiting:
        conv.to_webshop(8, ctx)
    assert (waiting.value.datatype, waiting.value.side, waiting.value.ref_id) == (
        Datatype.customers,
        "webcrm",
        "8",
    )
    with pytest.raises(Unresolved) as waiting:
        conv.to_webcrm("cus_9", ctx)
    assert waiting.value.side == "webshop"
    for empty in (None, 0):
        with pytest.raises(MappingError, match="order needs a customer"):
            conv.to_webshop(empty, ctx)
    assert conv.to_webcrm(None, ctx) is None
    assert conv.norm_webcrm(0) is None
    assert conv.norm_webcrm(7) == conv.norm_webcrm("7") == "7"


def test_optional_reference_is_none_when_empty() -> None:
    conv = reference(Datatype.customers)
    assert conv.to_webshop(None, CTX) is None


def test_product_by_sku() -> None:
    ctx = FakeContext(skus={"SKU-1": "prd_1"})
    assert PRODUCT_BY_SKU.to_webshop("SKU-1", ctx) == "prd_1"
    assert PRODUCT_BY_SKU.to_webshop(" SKU-1 ", ctx) == "prd_1"
    assert PRODUCT_BY_SKU.to_webshop("SKU-2", ctx) is None
    assert PRODUCT_BY_SKU.to_webshop(None, ctx) is None
