"""Merge criteria (rule 2): keys of the same record on both sides are equal, keys of
different records are not."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shopsync.config.model import Config, Datatype, System
from shopsync.emulators.common.seeddata import company
from shopsync.engine.mapping.merge import (
    CRITERIA,
    SHARED_PLATFORMS,
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
    platform_of,
    product_keys_webcrm,
    product_keys_webshop,
)

CFG = Config()

# ------------------------------------------------------------------------ VAT
# Real, checksum-valid numbers (from python-stdnum's documentation) next to numbers
# that are well-formed but fail the check digit (DK12345678, DE123456789): both are keys.


@pytest.mark.parametrize(
    ("vat", "country", "key"),
    [
        ("DK 12 34 56 78", "Danmark", "DK12345678"),
        ("12345678", "DK", "DK12345678"),
        ("dk-12.34.56.78", "Denmark", "DK12345678"),
        ("DK12345678", None, "DK12345678"),  # country taken from the prefix
        ("DK 13 58 56 28", "Denmark", "DK13585628"),  # checksum-valid
        ("CVR: 13585628", "DK", "DK13585628"),  # a label before the number
        ("NO 123 456 789 MVA", "Norge", "NO123456789"),
        ("123456789MVA", "NO", "NO123456789"),
        ("123 456 789", "Norway", "NO123456789"),  # organisation number without MVA
        ("NO123456789MVA", None, "NO123456789"),
        ("NO 995 525 828 MVA", None, "NO995525828"),
        ("EL 123456789", "Greece", "GR123456789"),
        ("EL094259216", None, "GR094259216"),
        ("DE 123 456 789", "Deutschland", "DE123456789"),
        ("USt-IdNr.: DE136695976", None, "DE136695976"),
        ("GB123456789", "UK", "GB123456789"),
        ("XI 980 7806 84", None, "GB980780684"),  # Northern Ireland: the UK number
        ("SE556677889901", "Sverige", "SE556677889901"),
        ("556677-8899", "Sverige", "SE556677889901"),  # organisation number + 01
        ("CHE-116.281.710 MWST", None, "CHE116281710"),
        ("CHE-116.281.710", "Schweiz", "CHE116281710"),
        ("BE 403.019.261", None, "BE0403019261"),  # stdnum's compact form
        ("NL004495445B01", None, "NL004495445B01"),
        ("US 12-3456789", None, "US123456789"),  # no stdnum module: kept as typed
        ("12345678", None, "12345678"),  # no country: the bare number
        # Changed (issue 9): a number carrying another country's prefix and well-formed
        # for that country is that country's number (was "DKDE123456789", a key that
        # could never meet anything).
        ("DE123456789", "DK", "DE123456789"),
        ("   ", "DK", None),
        (None, "DK", None),
        ("DK", "DK", None),  # a prefix alone is no number
        ("ATU12345678", "Österreich", "ATU12345678"),
        ("U 123 456 78", "AT", "ATU12345678"),
        ("ATU12345678", None, "ATU12345678"),
        # Changed (issue 9): text without digits is no VAT number (was "SOMETHING").
        ("SOMETHING", None, None),
    ],
)
def test_normalize_vat(vat: str | None, country: str | None, key: str | None) -> None:
    assert normalize_vat(vat, country) == key


@pytest.mark.parametrize(
    "junk",
    ["N/A", "n/a", "NA", "-", "--", "0", "none", "None", "n.a.", "tbd", "TBD", "ukendt",
     "x", "?", "000000", "00000000", "0000000000", "11111111", "DK 00 00 00 00",
     "DK11111111", "ATU00000000", "999999999", "123", "DK1234", "12 34 5", "VAT"],
)  # fmt: skip
@pytest.mark.parametrize("country", [None, "DK", "Sverige"])
def test_no_vat_number_is_no_key(junk: str, country: str | None) -> None:
    assert normalize_vat(junk, country) is None


@pytest.mark.parametrize(
    ("vat", "country"),
    [
        ("1234567", "DK"),  # 7 digits
        ("DK 123456789", None),  # 9 digits
        ("01234567", "DK"),  # a Danish number never starts with 0
        ("SE123456789012", None),  # a Swedish VAT number ends in 01
        ("12345678", "Norge"),  # 8 digits
        ("DE012345678", None),
        ("NL123456789B00", None),
    ],
)
def test_wrong_length_or_form_for_the_country_is_no_key(vat: str, country: str | None) -> None:
    assert normalize_vat(vat, country) is None


def test_checksum_failing_number_is_still_a_key() -> None:
    """Well-formed but with a wrong check digit: still a key (see normalize_vat), and one
    digit off is another key."""
    assert normalize_vat("DK 13 58 56 27", "DK") == "DK13585627"
    assert normalize_vat("13585627", "Danmark") == normalize_vat("DK13585627")
    assert normalize_vat("DK13585627") != normalize_vat("DK13585628")


def test_equal_digits_of_two_countries_do_not_merge() -> None:
    assert normalize_vat("12345678", "DK") != normalize_vat("12345678", "FI")


def _national(country: str, draw: st.DrawFn) -> str:
    """A number of the country's form (length, fixed parts); the check digit is random,
    which the key accepts."""
    first = draw(st.sampled_from("123456789"))
    rest = {"DK": 7, "NO": 8, "SE": 9, "DE": 8, "GB": 8, "FI": 7, "NL": 8}[country]
    digits = first + draw(st.text("0123456789", min_size=rest, max_size=rest))
    if country == "SE":
        digits += "01"
    if country == "NL":
        digits += "B" + draw(st.sampled_from(["01", "02", "13"]))
    return digits


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    country=st.sampled_from(["DK", "NO", "SE", "DE", "GB", "FI", "NL"]),
    prefix=st.booleans(),
    lower=st.booleans(),
    noise=st.lists(st.sampled_from([" ", ".", "-", "  "]), max_size=12),
    spelling=st.sampled_from(["code", "name"]),
)
def test_vat_ignores_formatting(
    data: st.DataObject, country: str, prefix: bool, lower: bool, noise: list[str], spelling: str
) -> None:
    digits = _national(country, data.draw)
    assume(len(set(max(re.findall(r"\d+", digits), key=len))) > 1)  # not 11111111
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
@given(
    vat=st.text(max_size=20) | st.text("0123456789 -.DKSENOMVA", max_size=16),
    country=st.none() | st.sampled_from(["DK", "Norge", "SE", "CH", "x"]),
)
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
        # Changed (issue 9): the registrable domain, not the whole host (was
        # "shop.example.co.uk"): a company's subdomains are the company's.
        ("//shop.example.co.uk/x?y=1", "example.co.uk"),
        ("https://webshop.aeble.dk/da/", "aeble.dk"),
        ("info@aeble.dk", "aeble.dk"),  # an e-mail address in the domain field
        ("www.bøger.dk", "xn--bger-gra.dk"),
        ("https://xn--bger-gra.dk", "xn--bger-gra.dk"),
        ("n/a", None),
        ("localhost", None),
        ("192.168.1.10", None),
        ("http://[::1]:8080/", None),
        ("acme.intranet", None),  # not a top-level domain of the list
        ("my_shop.dk", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_host(url: str | None, host: str | None) -> None:
    assert normalize_host(url) == host


@pytest.mark.parametrize(
    "url",
    [
        "https://www.facebook.com/alphabakery",  # issue 9
        "https://facebook.com/betaplumbing",  # issue 9
        "m.facebook.com/alpha", "instagram.com/alpha", "https://www.linkedin.com/company/a",
        "x.com/alpha", "twitter.com/alpha", "youtube.com/@alpha", "tiktok.com/@alpha",
        "etsy.com/shop/alpha", "amazon.de/shops/alpha", "www.amazon.co.uk/s?me=1",
        "ebay.com/str/alpha", "ebay.co.uk/str/alpha",
        "gmail.com", "info@gmail.com", "alpha@hotmail.dk", "outlook.com", "yahoo.co.uk",
        "alpha.myshopify.com", "alpha.wixsite.com/shop", "www.wix.com", "alpha.squarespace.com",
        "alpha.wordpress.com", "alpha.blogspot.com", "alpha.blogspot.dk", "alpha.github.io",
        "github.io", "linktr.ee/alpha", "sites.google.com/view/alpha", "g.page/alpha",
        "alpha.netlify.app", "alpha.herokuapp.com",  # private-section suffixes, not listed
    ],
)  # fmt: skip
def test_shared_platforms_are_no_key(url: str) -> None:
    assert normalize_host(url) is None


def test_platform_table_holds_registrable_domains() -> None:
    """Each entry is a registrable domain (so normalize_host can meet it) or ``name.*``."""
    from publicsuffixlist import PublicSuffixList

    icann = PublicSuffixList(only_icann=True, accept_unknown=False)
    for category, entries in SHARED_PLATFORMS.items():
        assert entries, category
        for entry in entries:
            if entry.endswith(".*"):
                assert "." not in entry.removesuffix(".*"), entry
            else:
                assert icann.privatesuffix(entry) == entry, entry
            assert platform_of(entry.replace("*", "dk")) == category


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
def test_host_ignores_scheme_www_subdomain_path_and_case(
    labels: list[str], tld: str, scheme: str, www: bool, path: str, upper: bool
) -> None:
    domain = f"{labels[-1]}.{tld}"
    assume(platform_of(domain) is None)  # x.com, t.co: no key, tested above
    typed = scheme + ("www." if www else "") + ".".join([*labels, tld]) + path
    typed = typed.upper() if upper else typed
    assert normalize_host(typed) == domain
    assert normalize_host(normalize_host(typed)) == domain


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


def seed_vat(i: int) -> str:
    """Company ``i``'s VAT number, of its country's form: the seed data's Swedish numbers
    are 12 random digits, and a Swedish VAT number ends in ``01`` (without it there is
    no key, see ``test_seed_swedish_numbers_are_no_swedish_vat``)."""
    c = company(0, i)
    return c.vat_number[:-2] + "01" if c.country == "SE" else c.vat_number


def test_seed_swedish_numbers_are_no_swedish_vat() -> None:
    swedes = [company(0, i) for i in range(40) if company(0, i).country == "SE"]
    assert swedes
    for c in swedes:
        if not c.vat_number.endswith("01"):
            assert normalize_vat(c.vat_number, c.country) is None


def organisation(i: int) -> dict[str, Any]:
    c = company(0, i)
    return {
        "OrganisationName": c.name.upper(),
        "OrganisationVatNumber": _spaced(seed_vat(i)) if i % 2 else seed_vat(i)[2:],
        "OrganisationCountry": c.country_name,
        "OrganisationWww": c.website,
        "OrganisationDomain": c.website.removeprefix("www."),
        "OrganisationPostCode": c.postal_code,
    }


def customer(i: int) -> dict[str, Any]:
    c = company(0, i)
    return {
        "name": c.name,
        "vat_number": seed_vat(i),
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
