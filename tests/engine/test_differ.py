"""The differ's rules (dataflow.md rules 2–4), checked on the real customer mapping.

Pure tests: no servers. The property test plays a pair of records through random
edits on either side and checks the engine's core invariant: after a decision is
applied and the snapshot stored, deciding again finds nothing to write (no echoes,
no flip-flops), and both sides agree under the mapping.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shopsync.config.model import Config, Datatype
from shopsync.engine.differ import Side, decide, snapshot_after
from shopsync.engine.mapping import mappings
from tests.mapping.mapping_fakes import FakeContext

CFG = Config()
MAP = mappings(CFG)[Datatype.customers]
T0 = datetime(2026, 11, 1, tzinfo=UTC)


CTX = FakeContext(config=CFG)


def org(**kw: Any) -> dict[str, Any]:
    base = {
        "OrganisationId": 1,
        "OrganisationName": "Nørre Æble ApS",
        "OrganisationCity": "Aarhus",
        "OrganisationCountry": "Danmark",
        "OrganisationTelephone": "1234",
        "OrganisationVatNumber": "DK12345678",
    }
    base.update(kw)
    return base


def cust(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "c1",
        "name": "Nørre Æble ApS",
        "phone": "1234",
        "vat_number": "DK12345678",
        "billing_address": {"city": "Aarhus", "country": "DK"},
    }
    base.update(kw)
    return base


def apply(
    c: dict[str, Any], s: dict[str, Any], snap: Any, tc: datetime, ts: datetime
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """Decide, write each side as the engine would, and store the snapshot."""
    d = decide(MAP, snap, Side(c, tc), Side(s, ts), CTX)
    shop_body = MAP.to_webshop(c, CTX, d.to_webshop) if d.to_webshop else {}
    crm_body = MAP.to_webcrm(s, CTX, d.to_webcrm) if d.to_webcrm else {}
    s2 = copy.deepcopy(s)
    for key, value in shop_body.items():
        if isinstance(value, dict):
            s2.setdefault(key, {})
            s2[key] = {**(s2[key] or {}), **value}
        else:
            s2[key] = value
    c2 = {**c, **crm_body}
    return c2, s2, snapshot_after(MAP, snap, c, s2, crm_body)


def test_one_sided_change_flows_to_the_other_side() -> None:
    c, s = org(), cust()
    c, s, snap = apply(c, s, None, T0, T0)
    c = org(OrganisationTelephone="9999")
    d = decide(MAP, snap, Side(c, T0 + timedelta(1)), Side(s, T0), CTX)
    assert d.to_webshop == {"phone"} and not d.to_webcrm


def test_emptied_value_flows_too() -> None:
    c, _s, snap = apply(org(), cust(), None, T0, T0)
    d = decide(MAP, snap, Side(c, T0), Side(cust(phone=None), T0 + timedelta(1)), CTX)
    assert d.to_webcrm == {"phone"}
    assert MAP.to_webcrm(cust(phone=None), CTX, d.to_webcrm)["OrganisationTelephone"] in (None, "")


def test_both_sides_changed_newest_wins() -> None:
    c, s, snap = apply(org(), cust(), None, T0, T0)
    c = org(OrganisationName="CRM name")
    s = cust(name="Shop name")
    later_shop = decide(MAP, snap, Side(c, T0 + timedelta(1)), Side(s, T0 + timedelta(2)), CTX)
    assert later_shop.to_webcrm == {"name"} and not later_shop.to_webshop
    later_crm = decide(MAP, snap, Side(c, T0 + timedelta(3)), Side(s, T0 + timedelta(2)), CTX)
    assert later_crm.to_webshop == {"name"} and not later_crm.to_webcrm
    assert later_crm.conflicts == {"name": "webcrm"}


def test_merge_never_lets_an_empty_value_overwrite() -> None:
    c = org(OrganisationTelephone=None)
    s = cust(phone="555")
    d = decide(MAP, None, Side(c, T0 + timedelta(5)), Side(s, T0), CTX)
    assert "phone" in d.to_webcrm and "phone" not in d.to_webshop


def test_country_spelling_is_not_a_change() -> None:
    _c, s, snap = apply(org(), cust(), None, T0, T0)
    d = decide(
        MAP, snap, Side(org(OrganisationCountry="Denmark"), T0 + timedelta(1)), Side(s, T0), CTX
    )
    assert not d.to_webshop and not d.to_webcrm


TEXT = st.one_of(st.none(), st.sampled_from(["", "Ærø", "Straße 5", "Ålborg", "x" * 40, "1234"]))
EDIT = st.tuples(
    st.sampled_from(["webcrm", "webshop"]),
    st.sampled_from(["name", "phone", "city", "vat", "country"]),
    TEXT,
)


def _edit(c: dict[str, Any], s: dict[str, Any], edit: tuple[str, str, Any]) -> None:
    side, prop, value = edit
    if prop == "country":
        value = {"webcrm": "Sverige", "webshop": "NO"}[side] if value else None
    if prop == "name" and not value:
        value = "Navn"
    if side == "webcrm":
        field = {
            "name": "OrganisationName", "phone": "OrganisationTelephone",
            "city": "OrganisationCity", "vat": "OrganisationVatNumber",
            "country": "OrganisationCountry",
        }[prop]  # fmt: skip
        c[field] = value
    elif prop in ("city", "country"):
        s["billing_address"] = {**(s.get("billing_address") or {}), prop: value}
    else:
        s[{"name": "name", "phone": "phone", "vat": "vat_number"}[prop]] = value


@settings(max_examples=150, deadline=None)
@given(rounds=st.lists(st.lists(EDIT, max_size=4), min_size=1, max_size=5))
def test_converges_and_never_echoes(rounds: list[list[tuple[str, str, Any]]]) -> None:
    c, s = org(), cust()
    c, s, snap = apply(c, s, None, T0, T0)
    t = T0
    for edits in rounds:
        for edit in edits:
            _edit(c, s, edit)
        t += timedelta(seconds=10)
        c, s, snap = apply(c, s, snap, t, t + timedelta(seconds=1))
        again = decide(MAP, snap, Side(c, t), Side(s, t), CTX)
        assert not again.to_webshop and not again.to_webcrm, (again, c, s)
        # both sides agree under the mapping on every two-way property
        for f in MAP.fields:
            if f.webcrm and f.direction.value == "⇄":
                converted = f.conversion.norm_webshop(f.conversion.to_webshop(f.raw_webcrm(c), CTX))
                assert converted == f.webshop_value(s), (f.name, c, s)


def reference_snapshot_after(
    previous: Any, c_raw: Any, s_raw: Any, c_sent: dict[str, Any]
) -> dict[str, Any]:
    """snapshot_after as the spec says it, field by field (the engine's is a faster
    form of the same)."""
    props: dict[str, Any] = {}
    c_vals = MAP.webcrm_values({**c_raw, **c_sent}) if c_raw is not None else {}
    s_vals = MAP.webshop_values(s_raw) if s_raw is not None else {}
    for f in MAP.fields:
        prev = (previous or {}).get(f.name, {})
        entry: dict[str, Any] = {}
        if f.webcrm:
            if c_raw is not None:
                entry["c"] = c_vals[f.name]
            elif all(name in c_sent for name in f.webcrm):
                entry["c"] = f.webcrm_value(c_sent)
            else:
                entry["c"] = prev.get("c")
        entry["s"] = s_vals[f.name] if s_raw is not None else prev.get("s")
        props[f.name] = entry
    return props


@settings(max_examples=200, deadline=None)
@given(
    read_crm=st.booleans(),
    read_shop=st.booleans(),
    with_previous=st.booleans(),
    sent=st.sets(st.sampled_from(sorted(MAP.to_webcrm(cust(), CTX, validate=False)))),
    phone=st.sampled_from(["1234", "+45 99 88 77 66", ""]),
)
def test_the_snapshot_after_a_write_is_the_one_the_spec_describes(
    read_crm: bool, read_shop: bool, with_previous: bool, sent: set[str], phone: str
) -> None:
    """Whichever sides were read and whichever webCRM fields were written."""
    c, s = org(), cust(phone=phone)
    previous = snapshot_after(MAP, None, org(OrganisationCity="Vejle"), cust(name="Gammel"))
    body = {k: v for k, v in MAP.to_webcrm(s, CTX, validate=False).items() if k in sent}
    args = (
        previous if with_previous else None,
        c if read_crm else None,
        s if read_shop else None,
        body,
    )
    assert snapshot_after(MAP, *args) == reference_snapshot_after(*args)
