"""Matcher.choose: which record of the other side a record is merged with (rule 2).

The three cases of issue 9 first, then each rule of the decision on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shopsync.config.loader import ConfigError, load_config
from shopsync.config.model import Config, Datatype
from shopsync.engine.mapping.merge import STRENGTH, Strength
from shopsync.engine.matching import Matcher, Outcome, split_key
from tests.mapping.matching_fakes import WEBCRM, WEBSHOP, KeyIndex

VAT_A, VAT_B, VAT_C = "DK20000007", "DK20000015", "DK20000023"  # checksum-valid


def org(name: str, vat: str | None = None, www: str | None = None,
        postcode: str | None = None, country: str = "Danmark", **more: Any) -> dict[str, Any]:  # fmt: skip
    return {"OrganisationName": name, "OrganisationVatNumber": vat, "OrganisationWww": www,
            "OrganisationPostCode": postcode, "OrganisationCountry": country, **more}  # fmt: skip


def cust(name: str, vat: str | None = None, website: str | None = None,
         postcode: str | None = None, country: str = "DK") -> dict[str, Any]:  # fmt: skip
    return {"name": name, "vat_number": vat, "website": website,
            "billing_address": {"postal_code": postcode, "country": country}}  # fmt: skip


# --------------------------------------------------------------------- issue 9


def test_issue9_two_companies_on_facebook_are_not_linked_by_website() -> None:
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Alpha Bakery", www="https://www.facebook.com/alphabakery"))
    idx.add(WEBSHOP, "s1", cust("Beta Plumbing", website="https://facebook.com/betaplumbing"))
    assert idx.keys[(WEBCRM, "1")] == [] and idx.keys[(WEBSHOP, "s1")] == []
    assert idx.decide(WEBCRM, "1").outcome is Outcome.no_match
    assert idx.decide(WEBSHOP, "s1").outcome is Outcome.no_match


def test_issue9_a_vat_shared_by_two_branches_merges_neither() -> None:
    """webCRM: Acme Copenhagen and Acme Aarhus share DK12345678; the webshop has Acme
    Aarhus with it. The engine used to merge Copenhagen (the first candidate)."""
    idx = KeyIndex()
    idx.add(WEBCRM, "cph", org("Acme Copenhagen", "DK12345678", postcode="1050"))
    idx.add(WEBCRM, "aar", org("Acme Aarhus", "DK12345678", postcode="8000"))
    idx.add(WEBSHOP, "s1", cust("Acme Aarhus", "DK12345678", postcode="8000"))
    cph = idx.decide(WEBCRM, "cph")
    assert cph.outcome is Outcome.ambiguous
    assert (cph.key, cph.holders, cph.same_side) == ("vat:DK12345678", ("s1",), ("aar",))
    assert cph.strength is Strength.strong and cph.criterion == "vat"
    assert "vat:DK12345678" in cph.reason and "1 more on this side" in cph.reason
    # Aarhus is found by the next criterion, name + postal code: its VAT agrees
    for system, rid, other in ((WEBCRM, "aar", "s1"), (WEBSHOP, "s1", "aar")):
        d = idx.decide(system, rid)
        assert (d.outcome, d.candidate, d.key) == (
            Outcome.match,
            other,
            "name_postcode:acmeaarhus|8000",
        )
        assert d.strength is Strength.weak
        assert any(n.startswith("vat:DK12345678: ambiguous") for n in d.notes)


def test_issue9_a_shared_vat_without_another_key_is_ambiguous_on_both_sides() -> None:
    idx = KeyIndex()
    idx.add(WEBCRM, "cph", org("Acme Copenhagen", "DK12345678", postcode="1050"))
    idx.add(WEBCRM, "aar", org("Acme Aarhus", "DK12345678", postcode="8000"))
    idx.add(WEBSHOP, "s1", cust("ACME", "12345678", postcode="8000"))
    for system, rid in ((WEBCRM, "cph"), (WEBCRM, "aar"), (WEBSHOP, "s1")):
        d = idx.decide(system, rid)
        assert d.outcome is Outcome.ambiguous and d.key == "vat:DK12345678"
    assert idx.decide(WEBSHOP, "s1").holders == ("cph", "aar")
    assert "2 records on the other side" in idx.decide(WEBSHOP, "s1").reason


@pytest.mark.parametrize("junk", ["N/A", "n.a.", "-", "0", "none", "tbd", "00000000"])
def test_issue9_junk_vat_on_both_sides_is_no_key(junk: str) -> None:
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Gamma ApS", junk, postcode="2100"))
    idx.add(WEBSHOP, "s1", cust("Delta Shop", junk, postcode="2100"))
    assert all(split_key(k)[0] != "vat" for k in idx.keys[(WEBCRM, "1")])
    assert idx.decide(WEBCRM, "1").outcome is Outcome.no_match
    assert idx.decide(WEBSHOP, "s1").outcome is Outcome.no_match


# ------------------------------------------------------------------ the rules


def test_strength_of_each_criterion() -> None:
    assert {t for t, s in STRENGTH.items() if s is Strength.strong} == {
        "vat", "sku", "order_number"
    }  # fmt: skip
    assert {t for t, s in STRENGTH.items() if s is Strength.weak} == {"host", "name_postcode"}
    assert Matcher.strength("vat:DK1") is Strength.strong
    assert Matcher.strength("host:a.dk") is Strength.weak


def test_unique_vat_merges_even_when_everything_else_differs() -> None:
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Nørre Æble ApS", VAT_A, www="aeble.dk", postcode="8000"))
    idx.add(WEBSHOP, "s1", cust("Æble Webshop", VAT_A[2:], "aeble-shop.dk", postcode="8200"))
    d = idx.decide(WEBCRM, "1")
    assert (d.outcome, d.candidate, d.key, d.strength) == (
        Outcome.match, "s1", f"vat:{VAT_A}", Strength.strong
    )  # fmt: skip
    assert d.reason == f"merged by strong key vat:{VAT_A}"


def test_strongest_criterion_decides() -> None:
    """VAT points at s1, the website at s2: VAT wins."""
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("A", VAT_A, www="a.dk"))
    idx.add(WEBSHOP, "s1", cust("A", VAT_A))
    idx.add(WEBSHOP, "s2", cust("B", website="www.a.dk"))
    assert idx.decide(WEBCRM, "1").candidate == "s1"


def test_weak_key_never_merges_two_different_vat_numbers() -> None:
    """Same domain (a group's), different VAT: two companies."""
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Group Sales A/S", VAT_A, www="group.dk", postcode="8000"))
    idx.add(WEBSHOP, "s1", cust("Group Service A/S", VAT_B, "https://group.dk", "8000"))
    for system, rid in ((WEBCRM, "1"), (WEBSHOP, "s1")):
        d = idx.decide(system, rid)
        assert d.outcome is Outcome.no_match
        assert any("vat differs" in n for n in d.notes)


def test_checksum_failing_vat_still_vetoes_a_weak_key() -> None:
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Foo ApS", "DK20000008", www="foo.dk"))  # one digit off
    idx.add(WEBSHOP, "s1", cust("Foo ApS", VAT_A, "foo.dk"))
    assert idx.decide(WEBCRM, "1").outcome is Outcome.no_match


def test_weak_key_merges_when_one_side_has_no_vat() -> None:
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Foo ApS", None, www="www.foo.dk"))
    idx.add(WEBSHOP, "s1", cust("Foo", VAT_A, "https://shop.foo.dk/"))
    for system, rid, other in ((WEBCRM, "1", "s1"), (WEBSHOP, "s1", "1")):
        d = idx.decide(system, rid)
        assert (d.outcome, d.candidate, d.key) == (Outcome.match, other, "host:foo.dk")


def test_weak_key_refused_when_the_candidates_vat_belongs_to_another_record() -> None:
    """webCRM 1 (no VAT) shares name + postcode with webshop s1, whose VAT is webCRM 2's:
    s1 is webCRM 2, whichever side is processed first."""
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Foo ApS", None, postcode="8000"))
    idx.add(WEBCRM, "2", org("Foo A/S (Aarhus)", VAT_A, postcode="8000"))
    idx.add(WEBSHOP, "s1", cust("Foo ApS", VAT_A, postcode="8000"))
    d1 = idx.decide(WEBCRM, "1")
    assert d1.outcome is Outcome.no_match
    assert any(f"vat:{VAT_A} is held by webcrm 2" in n for n in d1.notes)
    assert idx.decide(WEBCRM, "2").candidate == "s1"
    assert idx.decide(WEBSHOP, "s1").candidate == "2"


def test_weak_key_refused_when_the_records_vat_is_held_by_another_candidate() -> None:
    """The mirror case: webshop s1 (no VAT) shares name + postcode with webCRM 1, whose
    VAT is webshop s2's."""
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Foo ApS", VAT_A, postcode="8000"))
    idx.add(WEBSHOP, "s1", cust("Foo ApS", None, postcode="8000"))
    idx.add(WEBSHOP, "s2", cust("Foo Webshop", VAT_A, postcode="9000"))
    assert idx.decide(WEBSHOP, "s1").outcome is Outcome.no_match
    assert idx.decide(WEBCRM, "1").candidate == "s2"


def test_weak_key_held_twice_on_one_side_is_ambiguous() -> None:
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Larsen A/S", postcode="8000"))
    idx.add(WEBCRM, "2", org("LARSEN A/S", postcode="8000"))
    idx.add(WEBSHOP, "s1", cust("Larsen A/S", postcode="8000"))
    for system, rid in ((WEBCRM, "1"), (WEBSHOP, "s1")):
        assert idx.decide(system, rid).outcome is Outcome.ambiguous


def test_same_name_other_postcode_is_no_match() -> None:
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Larsen A/S", postcode="8000"))
    idx.add(WEBSHOP, "s1", cust("Larsen A/S", postcode="5000"))
    assert idx.decide(WEBCRM, "1").outcome is Outcome.no_match


def test_two_keys_of_one_criterion_pointing_at_two_records_are_ambiguous() -> None:
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Foo", www="foo.dk", OrganisationDomain="foo-shop.dk"))
    idx.add(WEBSHOP, "s1", cust("Foo 1", website="foo.dk"))
    idx.add(WEBSHOP, "s2", cust("Foo 2", website="foo-shop.dk"))
    d = idx.decide(WEBCRM, "1")
    assert d.outcome is Outcome.ambiguous and set(d.holders) == {"s1", "s2"}


def test_a_candidate_that_is_gone_is_not_used() -> None:
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Foo", www="foo.dk"))
    idx.add(WEBSHOP, "s1", cust("Foo", website="foo.dk"))
    del idx.keys[(WEBSHOP, "s1")]  # unreadable now, but still listed under the key
    idx.keys[(WEBSHOP, "stale")] = ["host:foo.dk"]
    idx.records[(WEBSHOP, "stale")] = {}
    real_keys_of = idx.keys_of
    idx.keys_of = lambda system, rid: None if rid == "stale" else real_keys_of(system, rid)  # type: ignore[method-assign]
    d = idx.decide(WEBCRM, "1")
    assert d.outcome is Outcome.no_match and any("gone" in n for n in d.notes)


def test_a_holder_already_linked_makes_the_key_ambiguous() -> None:
    """With the store keeping linked records' keys (recommended): branch 2 was created
    on the other side already, so the VAT it shares with branch 1 identifies no one."""
    idx = KeyIndex(keep_linked=True)
    idx.add(WEBCRM, "1", org("Acme Copenhagen", VAT_A, postcode="1050"))
    idx.add(WEBCRM, "2", org("Acme Aarhus", VAT_A, postcode="8000"))
    idx.add(WEBSHOP, "s1", cust("ACME", VAT_A))
    idx.add(WEBSHOP, "s2", cust("Acme Aarhus", VAT_A, postcode="8000"))
    idx.link(WEBCRM, "2")
    idx.link(WEBSHOP, "s2")
    d = idx.decide(WEBCRM, "1")
    assert d.outcome is Outcome.ambiguous and "already linked" in " ".join(d.notes)
    assert (d.holders, d.taken, d.same_side) == (("s1", "s2"), ("s2",), ("2",))
    assert "2 records on the other side (1 already linked)" in d.reason
    assert idx.decide(WEBSHOP, "s1").outcome is Outcome.ambiguous


def _branches_after_one_merge(keep_linked: bool) -> KeyIndex:
    """Two branches with one VAT number in webCRM; the webshop has Copenhagen twice (one
    with a shortened name). Copenhagen has been merged by name + postal code."""
    idx = KeyIndex(keep_linked=keep_linked)
    idx.add(WEBCRM, "cph", org("Acme Copenhagen", VAT_A, postcode="1050"))
    idx.add(WEBCRM, "aar", org("Acme Aarhus", VAT_A, postcode="8000"))
    idx.add(WEBSHOP, "s1", cust("Acme Copenhagen", VAT_A, postcode="1050"))
    idx.add(WEBSHOP, "s2", cust("ACME Cph", VAT_A, postcode="1050"))
    d = idx.decide(WEBCRM, "cph")
    assert (d.outcome, d.candidate, d.criterion) == (Outcome.match, "s1", "name_postcode")
    idx.link(WEBCRM, "cph")
    idx.link(WEBSHOP, "s1")
    return idx


def test_linked_records_must_still_count_as_holders() -> None:
    """Why the engine's look-up must report linked records too (marked ``taken``): a
    store that forgets a record's keys when it is linked forgets that the VAT number is
    a branch number, and Aarhus then takes Copenhagen's duplicate."""
    kept = _branches_after_one_merge(keep_linked=True).decide(WEBCRM, "aar")
    assert kept.outcome is Outcome.ambiguous and kept.key == f"vat:{VAT_A}"
    forgot = _branches_after_one_merge(keep_linked=False).decide(WEBCRM, "aar")
    assert (forgot.outcome, forgot.candidate) == (Outcome.match, "s2")  # the wrong company


def test_a_branch_is_not_told_apart_by_its_website() -> None:
    """Copenhagen has the website, the Aarhus record in webCRM has none, the webshop's
    Aarhus has both: the website is the company's, not the branch's."""
    idx = KeyIndex()
    idx.add(WEBCRM, "cph", org("Acme Copenhagen", VAT_A, www="acme.dk", postcode="1050"))
    idx.add(WEBCRM, "aar", org("Acme Aarhus", VAT_A, postcode="8000"))
    idx.add(WEBSHOP, "s1", cust("Acme Aarhus", VAT_A, "https://www.acme.dk", "8000"))
    d = idx.decide(WEBCRM, "cph")
    assert d.outcome is Outcome.ambiguous and d.key == f"vat:{VAT_A}"
    assert any(n.startswith("host:acme.dk") and "held by webcrm aar" in n for n in d.notes)
    assert idx.decide(WEBCRM, "aar").candidate == "s1"  # by name + postal code


def test_a_number_without_country_is_the_same_number() -> None:
    """A webCRM organisation without a country holds the bare number: it merges with the
    same number with a country, and makes it ambiguous for a branch."""
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Foo", VAT_A[2:], country=""))
    idx.add(WEBSHOP, "s1", cust("Foo ApS", VAT_A))
    assert idx.keys[(WEBCRM, "1")][0] == f"vat:{VAT_A[2:]}"
    assert idx.decide(WEBCRM, "1").candidate == "s1"
    assert idx.decide(WEBSHOP, "s1").candidate == "1"
    idx.add(WEBCRM, "2", org("Foo Aarhus", VAT_A, postcode="8000"))
    assert idx.decide(WEBSHOP, "s1").outcome is Outcome.ambiguous
    assert idx.decide(WEBCRM, "2").outcome is Outcome.ambiguous


def test_a_number_with_and_without_country_do_not_disagree() -> None:
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Foo ApS", VAT_A[2:], www="foo.dk", country=""))
    idx.add(WEBCRM, "2", org("Foo Aarhus", VAT_A, postcode="8000"))  # the number: ambiguous
    idx.add(WEBSHOP, "s1", cust("Foo ApS", VAT_A, "foo.dk"))
    d = idx.decide(WEBCRM, "1")
    assert d.outcome is Outcome.ambiguous  # not "vat differs": a branch, by the website
    assert not any("differs" in n for n in d.notes)


def test_a_record_alone_with_its_key_and_no_holder_is_no_match() -> None:
    idx = KeyIndex()
    idx.add(WEBCRM, "1", org("Acme Copenhagen", VAT_A, postcode="1050"))
    idx.add(WEBCRM, "2", org("Acme Aarhus", VAT_A, postcode="8000"))
    assert idx.decide(WEBCRM, "1").outcome is Outcome.no_match  # nothing to confuse it with


def test_products_and_orders() -> None:
    products = KeyIndex(datatype=Datatype.products)
    products.add(WEBCRM, "1", {"ProductCustom1": "SKU-1"})
    products.add(WEBCRM, "2", {"ProductCustom1": "SKU-1 "})  # a duplicate in webCRM
    products.add(WEBCRM, "3", {"ProductCustom1": "SKU-3"})
    products.add(WEBSHOP, "p1", {"sku": "SKU-1"})
    products.add(WEBSHOP, "p3", {"sku": "SKU-3"})
    assert products.decide(WEBSHOP, "p1").outcome is Outcome.ambiguous
    assert products.decide(WEBCRM, "1").outcome is Outcome.ambiguous
    d = products.decide(WEBCRM, "3")
    assert (d.candidate, d.key, d.strength) == ("p3", "sku:SKU-3", Strength.strong)
    orders = KeyIndex(datatype=Datatype.orders)
    orders.add(WEBCRM, "7", {"OpportunityNumber": "WC-000007"})
    orders.add(WEBSHOP, "o7", {"order_number": "WC-000007"})
    assert orders.decide(WEBSHOP, "o7").candidate == "7"
    lines = KeyIndex(datatype=Datatype.order_lines)
    lines.add(WEBCRM, "1", {})
    assert lines.decide(WEBCRM, "1").outcome is Outcome.no_match


# ------------------------------------------------------------------ the setting


def test_on_ambiguous_setting(tmp_path: Path) -> None:
    assert Config().matching.on_ambiguous == "put_aside"
    path = tmp_path / "shopsync.toml"
    path.write_text('[matching]\non_ambiguous = "create"\n', encoding="utf-8")
    assert load_config(path, env={}).matching.on_ambiguous == "create"
    path.write_text('[matching]\non_ambiguous = "guess"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert "matching.on_ambiguous" in str(err.value)
    assert "put_aside" in str(err.value) and "create" in str(err.value)
