"""Matcher.choose never links two distinct companies (issue 9), on generated populations
full of near-duplicates.

Each record renders a hidden company identity on one side, with the noise real data has:
VAT numbers formatted any way, missing, junk (``N/A``, ``00000000``) or with a typo;
websites with ``www.``, paths and subdomains, or on a shared platform (Facebook, Shopify,
Gmail, ...) or missing; names in any case, sometimes with a typo. Near-duplicates are
made on purpose: two branches with one VAT number, companies sharing a website (a group)
or a name (in the same or another postal code), the same company twice on one side.

What no rule can decide is left out of the populations, and stated here:

* two companies sharing a weak key (website, name + postal code) are told apart only by
  their VAT numbers, so such companies always show theirs (correct or with a typo);
* two branches sharing a VAT number are seen as branches only where one side holds both
  with the number, so one side always does; branches have different postal codes.

The property is checked on the population as it is (every record unlinked) and in a
simulated onboarding that links as it goes, in random order, under both settings of
``on_ambiguous``. The simulated store keeps the keys of linked records and reports them
as ``taken`` (the engine must do the same: ``test_matching.py``,
``test_linked_records_must_still_count_as_holders``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from shopsync.engine.mapping.merge import normalize_name
from shopsync.engine.matching import Outcome
from tests.conftest import examples
from tests.mapping.matching_fakes import WEBCRM, WEBSHOP, KeyIndex

NAMES = ["Acme ApS", "Larsen A/S"]  # and "Firma <n>": names shared on purpose
POSTCODES = ["8000", "8200"]
LAYOUTS = [
    (WEBCRM,), (WEBSHOP,), (WEBCRM, WEBSHOP), (WEBCRM, WEBCRM), (WEBSHOP, WEBSHOP),
    (WEBCRM, WEBSHOP, WEBSHOP), (WEBCRM, WEBCRM, WEBSHOP),
]  # fmt: skip
"""Where a company's records are: once on a side, on both, twice on one side."""
PLATFORMS = [
    "https://www.facebook.com/{s}", "https://facebook.com/{s}", "m.facebook.com/{s}",
    "gmail.com", "linktr.ee/{s}", "{s}.myshopify.com", "https://{s}.wixsite.com/shop",
    "https://www.amazon.de/shops/{s}", "sites.google.com/view/{s}", "https://{s}.github.io",
]  # fmt: skip
"""Shared platforms (few hosts, so that two companies meet on one)."""
T = TypeVar("T")
JUNK = ["N/A", "n.a.", "-", "0", "none", "tbd", "00000000", "DK 11 11 11 11"]


@dataclass
class Company:
    ident: int
    vat: str | None  # Danish national number, 8 digits
    website: str | None  # a template: {s} is the company's slug
    name: str
    postcode: str
    strict: bool = False  # shares a weak key with another company: always shows its VAT


@dataclass
class Record:
    system: str
    rid: str
    ident: int
    data: dict[str, object]


@dataclass
class Population:
    companies: list[Company]
    records: list[Record] = field(default_factory=list)

    def index(self, keep_linked: bool = False) -> KeyIndex:
        idx = KeyIndex(keep_linked=keep_linked)
        for r in self.records:
            idx.add(r.system, r.rid, r.data)
        return idx

    def ident(self, system: str, rid: str) -> int:
        return next(r.ident for r in self.records if (r.system, r.rid) == (system, rid))


@cache
def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


def _int(draw: st.DrawFn, lo: int, hi: int) -> int:
    """``draw(st.integers(lo, hi))`` with the strategy built once (drawing is the cost
    of this test)."""
    return draw(_ints(lo, hi))


def _pick(draw: st.DrawFn, options: Sequence[T]) -> T:
    return options[_int(draw, 0, len(options) - 1)]


def _typo(text: str, ident: int) -> str:
    """A letter typed twice, at a place of the company's own: two companies' typos never
    give one name (that would be two companies sharing a name, which the VAT must tell
    apart, see ``strict``)."""
    i = ident % len(text)
    return text[:i] + text[i] + text[i:]


def _vat_text(draw: st.DrawFn, vat: str) -> str:
    shape = _pick(draw, ["plain", "prefix", "spaced", "lower"])
    if shape == "prefix":
        return "DK" + vat
    if shape == "spaced":
        return "DK " + " ".join(vat[i : i + 2] for i in range(0, 8, 2))
    return ("dk-" if shape == "lower" else "") + vat


def _render(draw: st.DrawFn, c: Company, system: str, rid: str, *, clean_vat: bool) -> Record:
    vat: str | None = None
    if c.vat is not None:
        kinds = ["clean"] if clean_vat else ["clean", "typo"]
        if not c.strict and not clean_vat:
            kinds += ["missing", "junk"]
        kind = _pick(draw, kinds)
        if kind == "clean":
            vat = _vat_text(draw, c.vat)
        elif kind == "typo":
            # in the last four digits, never another company's number; at a position of
            # its own, so that two branches' typos of their one number never meet
            pos = 4 + c.ident % 4
            digit = _pick(draw, [d for d in "0123456789" if d != c.vat[pos]])
            vat = c.vat[:pos] + digit + c.vat[pos + 1 :]
        elif kind == "junk":
            vat = _pick(draw, JUNK)
    elif _int(draw, 0, 1):
        vat = _pick(draw, JUNK)
    website = None
    if c.website is not None and _int(draw, 0, 3) > 0:
        site = c.website.format(s=f"firm{c.ident}")
        if not site.startswith(("http", "www")) and "." in site and _int(draw, 0, 1):
            site = _pick(draw, ["https://", "http://www.", "www."]) + site
        website = site + _pick(draw, ["", "/", "/kontakt"])
    name = c.name if _int(draw, 0, 4) else _typo(c.name, c.ident)
    name = name.upper() if _int(draw, 0, 1) else name
    if system == WEBCRM:
        data: dict[str, object] = {
            "OrganisationName": name, "OrganisationVatNumber": vat,
            "OrganisationWww": website, "OrganisationPostCode": c.postcode,
            "OrganisationCountry": _pick(draw, ["Danmark", "Denmark", "DK", None]),
        }  # fmt: skip
    else:
        data = {"name": name, "vat_number": vat, "website": website,
                "billing_address": {"postal_code": c.postcode,
                                    "country": _pick(draw, ["DK", None])}}  # fmt: skip
    return Record(system, rid, c.ident, data)


@st.composite
def populations(draw: st.DrawFn) -> Population:
    n = _int(draw, 2, 5)
    companies: list[Company] = []
    for i in range(n):
        vat = f"1{i:03d}{_int(draw, 0, 9999):04d}"
        site_kind = _pick(draw, ["own", "group", "platform", "none"])
        website = {
            "own": f"firm{i}.dk",
            "group": f"group{_int(draw, 0, 1)}.dk",
            "platform": _pick(draw, PLATFORMS),
            "none": None,
        }[site_kind]
        companies.append(
            Company(
                ident=i,
                vat=vat if _int(draw, 0, 4) else None,
                website=website,
                name=_pick(draw, [*NAMES, f"Firma {i}"]),
                postcode=_pick(draw, POSTCODES),
            )
        )
    # branches: company j shares company i's VAT number (another postal code)
    branches: list[tuple[int, int]] = []
    if n >= 3 and _int(draw, 0, 1):
        i, j = 0, _int(draw, 1, min(n - 1, 3))
        companies[i].vat = companies[i].vat or f"1{i:03d}4321"
        companies[j].vat = companies[i].vat
        companies[j].postcode = next(p for p in POSTCODES if p != companies[i].postcode)
        if _int(draw, 0, 3):  # branches usually share the website
            companies[i].website = companies[i].website or f"firm{i}.dk"
            companies[j].website = companies[i].website
        branches.append((i, j))
    # companies sharing a weak key always show a VAT number of their own
    for c in companies:
        for d in companies:
            if c is d:
                continue
            same_site = c.website == d.website and c.website is not None
            same_site = same_site and "{s}" not in c.website and c.website != "gmail.com"
            same_name = (normalize_name(c.name), c.postcode) == (normalize_name(d.name), d.postcode)
            if same_site or same_name:
                c.strict = True
                c.vat = c.vat or f"1{c.ident:03d}5678"
    pop = Population(companies)
    counter = iter(range(10_000))
    forced: set[tuple[int, str]] = set()
    if branches:  # both branches on one side, with the number
        side = _pick(draw, [WEBCRM, WEBSHOP])
        forced = {(i, side) for i in branches[0]}
    for c in companies:
        layout = [(s, False) for s in _pick(draw, LAYOUTS)]
        layout += [(s, True) for i, s in forced if i == c.ident]
        for system, clean in layout:
            rid = f"{system[4]}{next(counter)}"
            pop.records.append(_render(draw, c, system, rid, clean_vat=clean))
    return pop


def _assert_same(pop: Population, system: str, rid: str, other: str, cid: str, why: str) -> None:
    a, b = pop.ident(system, rid), pop.ident(other, cid)
    assert a == b, f"{system} {rid} (company {a}) linked to {other} {cid} (company {b}): {why}"


@settings(max_examples=examples(150), derandomize=True, deadline=None)
@given(pop=populations())
def test_choose_never_links_two_companies(pop: Population) -> None:
    idx = pop.index()
    for r in pop.records:
        d = idx.decide(r.system, r.rid)
        if d.outcome is Outcome.match:
            assert d.candidate is not None
            other = WEBSHOP if r.system == WEBCRM else WEBCRM
            _assert_same(pop, r.system, r.rid, other, d.candidate, d.reason)


@settings(max_examples=examples(150), derandomize=True, deadline=None)
@given(
    pop=populations(),
    order=st.randoms(use_true_random=False),
    mode=st.sampled_from(["put aside", "create"]),
)
def test_onboarding_in_any_order_never_links_two_companies(
    pop: Population, order: random.Random, mode: str
) -> None:
    idx = pop.index(keep_linked=True)
    create = mode == "create"
    queue = list(pop.records)
    order.shuffle(queue)
    for r in queue:
        if (r.system, r.rid) in idx.linked:
            continue
        d = idx.decide(r.system, r.rid)
        other = WEBSHOP if r.system == WEBCRM else WEBCRM
        if d.outcome is Outcome.match:
            assert d.candidate is not None
            _assert_same(pop, r.system, r.rid, other, d.candidate, f"{mode}: {d.reason}")
            idx.link(r.system, r.rid)
            idx.link(other, d.candidate)
        elif d.outcome is Outcome.no_match or create:
            idx.link(r.system, r.rid)  # created on the other side: linked to its copy
