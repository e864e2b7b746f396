"""Merge criteria (rule 2): keys of the same record on both sides are equal, keys of
different records are not."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopsync.config.model import Config, Datatype, System
from shopsync.emulators.common.seeddata import company
from shopsync.engine.mapping.merge import (
    CRITERIA,
    customer_keys_webcrm,
    customer_keys_webshop,
    line_keys,
    merge_keys,
    normalize_host,
    normalize_name,
    normalize_postcode,
    normalize_vat,
    order_keys_webcrm,
    order_keys_webshop,
    pair_lines,
    product_keys_webcrm,
    product_keys_webshop,
)

CFG = Config()

# ------------------------------------------------------------------------ VAT


@pytest.mark.parametrize(
    ("vat", "country", "key"),
    [
        ("DK 12 34 56 78", "Danmark", "DK12345678"),
        ("12345678", "DK", "DK12345678"),
        ("dk-12.34.56.78", "Denmark", "DK12345678"),
        ("DK12345678", None, "DK12345678"),  # country taken from the prefix
        ("NO 123 456 789 MVA", "Norge", "NO123456789"),
        ("123456789MVA", "NO", "NO123456789"),
        ("123 456 789", "Norway", "NO123456789"),
        ("NO123456789MVA", None, "NO123456789"),
        ("EL 123456789", "Greece", "GR123456789"),
        ("DE 123 456 789", "Deutschland", "DE123456789"),
        ("GB123456789", "UK", "GB123456789"),
        ("SE556677889901", "Sverige", "SE556677889901"),
        ("12345678", None, "12345678"),
        ("DE123456789", "DK", "DKDE123456789"),  # a prefix of another country is kept
        ("   ", "DK", None),
        (None, "DK", None),
        ("DK", "DK", None),  # a prefix alone is no number
        ("ATU12345678", "Österreich", "ATU12345678"),
        ("U 123 456 78", "AT", "ATU12345678"),
        ("ATU12345678", None, "ATU12345678"),
        ("SOMETHING", None, "SOMETHING"),  # no digits: no country taken from it
    ],
)
def test_normalize_vat(vat: str | None, country: str | None, key: str | None) -> None:
    assert normalize_vat(vat, country) == key


def test_equal_digits_of_two_countries_do_not_merge() -> None:
    assert normalize_vat("12345678", "DK") != normalize_vat("12345678", "FI")


@settings(max_examples=80, deadline=None)
@given(
    country=st.sampled_from(["DK", "NO", "SE", "DE", "GB", "FI", "NL"]),
    digits=st.text("0123456789", min_size=6, max_size=12),
    prefix=st.booleans(),
    lower=st.booleans(),
    noise=st.lists(st.sampled_from([" ", ".", "-", "  "]), max_size=12),
    spelling=st.sampled_from(["code", "name"]),
)
def test_vat_ignores_formatting(
    country: str, digits: str, prefix: bool, lower: bool, noise: list[str], spelling: str
) -> None:
    typed = (country if prefix else "") + digits
    if country == "NO" and noise:
        typed += " MVA"
    chars = list(typed)
    for i, sep in enumerate(noise):
        chars.insert(min(2 + 2 * i, len(chars)), sep)
    typed = "".join(chars)
    if lower:
        typed = typed.lower()
    named = {"DK": "Danmark", "NO": "Norge", "SE": "Sverige", "DE": "Deutschland",
             "GB": "United Kingdom", "FI": "Suomi", "NL": "Nederland"}[country]  # fmt: skip
    where = named if spelling == "name" else country
    assert normalize_vat(typed, where) == country + digits


@settings(max_examples=80, deadline=None)
@given(vat=st.text(max_size=20), country=st.none() | st.sampled_from(["DK", "Norge", "x"]))
def test_vat_key_is_idempotent(vat: str, country: str | None) -> None:
    key = normalize_vat(vat, country)
    if key is not None:
        assert normalize_vat(key, country) == key


# ---------------------------------------------------------------- host, name


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://www.Example.com/kontakt", "example.com"),
        ("www.example.com", "example.com"),
        ("example.com", "example.com"),
        ("http://example.com:8080/", "example.com"),
        ("WWW.EXAMPLE.COM.", "example.com"),
        ("//shop.example.co.uk/x?y=1", "shop.example.co.uk"),
        ("www.bøger.dk", "xn--bger-gra.dk"),
        ("https://xn--bger-gra.dk", "xn--bger-gra.dk"),
        ("n/a", None),
        ("localhost", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_host(url: str | None, host: str | None) -> None:
    assert normalize_host(url) == host


LABEL = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)


@settings(max_examples=80, deadline=None)
@given(
    labels=st.lists(LABEL, min_size=1, max_size=3),
    tld=st.sampled_from(["dk", "com", "de", "co.uk"]),
    scheme=st.sampled_from(["", "http://", "https://", "HTTPS://"]),
    www=st.booleans(),
    path=st.sampled_from(["", "/", "/kontakt", "/a/b?c=d", ":443/"]),
    upper=st.booleans(),
)
def test_host_ignores_scheme_www_path_and_case(
    labels: list[str], tld: str, scheme: str, www: bool, path: str, upper: bool
) -> None:
    host = ".".join([*labels, tld])
    if host.startswith("www."):
        return
    typed = scheme + ("www." if www else "") + host + path
    typed = typed.upper() if upper else typed
    assert normalize_host(typed) == host
    assert normalize_host(normalize_host(typed)) == host


def test_normalize_name_and_postcode() -> None:
    assert normalize_name("Ærø Møbler A/S") == normalize_name("ÆRØ MØBLER AS") == "ærømøbleras"
    assert normalize_name("Larsen  &  Søn") == normalize_name("larsen & søn")
    assert normalize_name("Larsen A/S") != normalize_name("Larsen ApS")
    assert normalize_name("Müller GmbH") != normalize_name("Muller GmbH")
    assert normalize_name("  ") is None
    assert normalize_postcode("DK-8000") == normalize_postcode("8000") == "8000"
    assert normalize_postcode("sw1a 1aa") == "SW1A1AA"
    assert normalize_postcode("D-80331") == "80331"


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=30))
def test_name_and_postcode_keys_are_idempotent(text: str) -> None:
    for norm in (normalize_name, normalize_postcode, normalize_host):
        key = norm(text)
        if key is not None:
            assert norm(key) == key


# --------------------------------------------------------------------- records


def _spaced(vat: str) -> str:
    """``DK12345678`` as people type it: ``DK 12 34 56 78``."""
    head, rest = vat[:2], vat[2:]
    return head + " " + " ".join(rest[i : i + 2] for i in range(0, len(rest), 2))


def organisation(i: int) -> dict[str, Any]:
    c = company(0, i)
    return {
        "OrganisationName": c.name.upper(),
        "OrganisationVatNumber": _spaced(c.vat_number) if i % 2 else c.vat_number[2:],
        "OrganisationCountry": c.country_name,
        "OrganisationWww": c.website,
        "OrganisationDomain": c.website.removeprefix("www."),
        "OrganisationPostCode": c.postal_code,
    }


def customer(i: int) -> dict[str, Any]:
    c = company(0, i)
    return {
        "name": c.name,
        "vat_number": c.vat_number,
        "website": f"https://{c.website}/",
        "billing_address": {"country": c.country, "postal_code": c.postal_code},
    }


@pytest.mark.parametrize("i", range(30))
def test_same_company_has_the_same_keys_on_both_sides(i: int) -> None:
    crm, shop = customer_keys_webcrm(organisation(i)), customer_keys_webshop(customer(i))
    assert crm == shop
    assert [k for k, _ in crm] == list(CRITERIA[Datatype.customers])


def test_keys_of_different_companies_differ() -> None:
    seen: dict[tuple[str, str], int] = {}
    for i in range(300):
        for key in customer_keys_webshop(customer(i)):
            assert seen.setdefault(key, i) == i, f"{key} of companies {seen[key]} and {i}"


def test_each_criterion_alone_finds_the_match() -> None:
    crm = organisation(3)
    only_vat = {"OrganisationVatNumber": crm["OrganisationVatNumber"],
                "OrganisationCountry": crm["OrganisationCountry"]}  # fmt: skip
    only_domain = {"OrganisationDomain": crm["OrganisationDomain"]}
    only_name = {"OrganisationName": crm["OrganisationName"],
                 "OrganisationPostCode": crm["OrganisationPostCode"]}  # fmt: skip
    shop = set(customer_keys_webshop(customer(3)))
    for partial, tag in ((only_vat, "vat"), (only_domain, "host"), (only_name, "name_postcode")):
        keys = customer_keys_webcrm(partial)
        assert [k for k, _ in keys] == [tag]
        assert set(keys) <= shop
    assert customer_keys_webcrm({"OrganisationName": "X"}) == []  # a name alone is no key


def test_product_and_order_keys() -> None:
    assert product_keys_webcrm(CFG, {"ProductCustom1": " SKU-1 "}) == [("sku", "SKU-1")]
    assert product_keys_webshop({"sku": "SKU-1"}) == [("sku", "SKU-1")]
    assert product_keys_webshop({"sku": "sku-1"}) != [("sku", "SKU-1")]  # case counts
    assert product_keys_webcrm(CFG, {"ProductCustom1": ""}) == []
    assert order_keys_webcrm({"OpportunityNumber": "WC-000042"}) == [("order_number", "WC-000042")]
    assert order_keys_webshop({"order_number": "WC-000042 "}) == [("order_number", "WC-000042")]
    assert merge_keys(CFG, Datatype.products, System.webshop, {"sku": "A"}) == [("sku", "A")]
    assert merge_keys(CFG, Datatype.customers, System.webcrm, organisation(0)) == (
        customer_keys_webcrm(organisation(0))
    )
    assert merge_keys(CFG, Datatype.orders, System.webcrm, {"OpportunityNumber": "1"}) == [
        ("order_number", "1")
    ]
    assert merge_keys(CFG, Datatype.order_lines, System.webcrm, {}) == []


# ----------------------------------------------------------------------- lines


def crm_line(i: int, sku: str | None, pos: int, desc: str | None = None) -> dict[str, Any]:
    return {"QuotationLineId": i, "QuotationLineData1": sku, "QuotationLineData2": desc,
            "QuotationLineSortOrder": pos}  # fmt: skip


def shop_line(i: str, sku: str | None, pos: int, desc: str | None = None) -> dict[str, Any]:
    return {"id": i, "sku": sku, "description": desc, "position": pos}


def test_pair_lines_by_sku_and_occurrence() -> None:
    crm = [crm_line(1, "A", 1), crm_line(2, "B", 2), crm_line(3, "A", 3), crm_line(4, "C", 4)]
    shop = [shop_line("x", "A", 5), shop_line("y", "A", 1), shop_line("z", "B", 9),
            shop_line("w", "D", 2)]  # fmt: skip
    result = pair_lines(CFG, crm, shop)
    pairs = [(c["QuotationLineId"], s["id"]) for c, s in result.pairs]
    assert pairs == [(1, "y"), (2, "z"), (3, "x")]
    assert [c["QuotationLineId"] for c in result.webcrm_only] == [4]
    assert [s["id"] for s in result.webshop_only] == ["w"]


def test_pair_lines_without_sku() -> None:
    crm = [crm_line(1, None, 1, "Montage, 2 timer"), crm_line(2, None, 2), crm_line(3, " ", 3)]
    shop = [shop_line("m", None, 1, "montage 2 timer"), shop_line("n", None, 2)]
    result = pair_lines(CFG, crm, shop)
    assert [(c["QuotationLineId"], s["id"]) for c, s in result.pairs] == [(1, "m")]
    assert [c["QuotationLineId"] for c in result.webcrm_only] == [2, 3]  # never guessed
    assert [s["id"] for s in result.webshop_only] == ["n"]


def test_line_keys_order_by_position_then_id() -> None:
    keys = line_keys(CFG, System.webshop, [shop_line("b", "A", 1), shop_line("a", "A", 1),
                                           shop_line("c", "A", None)])  # type: ignore[arg-type]  # fmt: skip
    assert [(k, ln["id"]) for k, ln in keys] == [
        (("sku", "A", 0), "a"),
        (("sku", "A", 1), "b"),
        (("sku", "A", 2), "c"),
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C", None]), st.integers(0, 9)), max_size=8))
def test_pair_lines_pairs_each_line_at_most_once(lines: list[tuple[str | None, int]]) -> None:
    crm = [crm_line(i, sku, pos) for i, (sku, pos) in enumerate(lines)]
    shop = [shop_line(f"s{i}", sku, 9 - pos) for i, (sku, pos) in enumerate(lines)]
    result = pair_lines(CFG, crm, shop)
    assert len(result.pairs) + len(result.webcrm_only) == len(crm)
    assert len(result.pairs) + len(result.webshop_only) == len(shop)
    assert len(result.pairs) == sum(1 for sku, _ in lines if sku)
    for c, s in result.pairs:
        assert c["QuotationLineData1"] == s["sku"]
