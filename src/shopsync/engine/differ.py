"""Per-property change detection and the conflict rule (dataflow.md rules 2, 3 and 4).

Pure functions: given a link's last agreed snapshot and each side's current record,
decide which properties flow which way. Each side is compared with *its own* last
agreed value, never with a conversion of the other side's, so a lossy conversion
(two webshop statuses for one webCRM percent, a rounded price) never flip-flops: a side
is rewritten only when the other side really changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shopsync.engine.mapping.base import FieldMap, LinkMapping, MapContext

Props = dict[str, dict[str, Any]]
"""A snapshot: ``{property: {"c": webCRM value, "s": webshop value}}`` (normalized)."""


@dataclass(frozen=True)
class Side:
    """One side's current record as read."""

    raw: Mapping[str, Any]
    updated_at: datetime | None


@dataclass
class Decision:
    to_webshop: set[str] = field(default_factory=set)
    to_webcrm: set[str] = field(default_factory=set)
    conflicts: dict[str, str] = field(default_factory=dict)
    """Property → which side won a both-sides change (``webcrm``/``webshop``)."""
    c_values: Mapping[str, Any] | None = None
    """The webCRM record's normalized values as decided (``LinkMapping.webcrm_values``),
    for :func:`snapshot_after` to reuse when that record is what it keeps."""
    s_values: Mapping[str, Any] | None = None


def is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str | list | tuple | dict):
        return all(is_empty(v) for v in value) if isinstance(value, tuple) else not value
    return False


def _agree(f: FieldMap, c: Side, s: Side, ctx: MapContext) -> bool:
    """Do the two sides hold the same value under the conversion?"""
    if f.direction.to_webshop:
        try:
            converted = f.conversion.to_webshop(f.raw_webcrm(c.raw), ctx)
            return bool(f.conversion.norm_webshop(converted) == f.webshop_value(s.raw))
        except Exception:
            return False
    try:
        converted = f.conversion.to_webcrm(f.raw_webshop(s.raw), ctx)
        probe: dict[str, Any] = {}
        f.write_webcrm(probe, converted)
        return bool(f.webcrm_value(probe) == f.webcrm_value(c.raw))
    except Exception:
        return False


def _newer(c: Side, s: Side) -> str:
    """The side updated most recently; a tie goes to webCRM, the system of record."""
    if c.updated_at is None:
        return "webshop"
    if s.updated_at is None:
        return "webcrm"
    return "webshop" if s.updated_at > c.updated_at else "webcrm"


def decide(
    mapping: LinkMapping,
    snapshot: Props | None,
    c: Side | None,
    s: Side | None,
    ctx: MapContext,
) -> Decision:
    """Which properties to write where.

    ``snapshot`` None with both sides present is an onboarding merge (rule 2): an empty
    value never overwrites the other side's value (nor does a default that stands in for
    an empty webCRM value, ``Conversion.empty_default``); differing values go to the side
    updated most recently. With a snapshot, a side whose record was not read this run is
    passed as None and counts as unchanged.
    """
    d = Decision()
    c_vals = d.c_values = mapping.webcrm_values(c.raw) if c is not None else None
    s_vals = d.s_values = mapping.webshop_values(s.raw) if s is not None else None
    for f in mapping.fields:
        snap = snapshot.get(f.name) if snapshot is not None else None
        cv = c_vals[f.name] if (c_vals is not None and f.webcrm) else None
        sv = s_vals[f.name] if s_vals is not None else None
        if snap is None:
            # Onboarding merge, or a property added to the mapping since the last sync.
            _first(d, f, c, s, cv, sv, ctx, known=snapshot is not None)
        else:
            _since(d, f, c, s, cv, sv, snap, ctx)
    return d


def _first(
    d: Decision,
    f: FieldMap,
    c: Side | None,
    s: Side | None,
    cv: Any,
    sv: Any,
    ctx: MapContext,
    *,
    known: bool,
) -> None:
    """A property without an agreed value: an onboarding merge (rule 2), or a property
    added to the mapping since the pair's last sync (``known``)."""
    if c is None or s is None:
        if c is not None and f.webcrm and f.direction.to_webshop and known:
            d.to_webshop.add(f.name)
        return
    if not f.webcrm:
        if is_empty(sv) and f.direction.to_webshop:
            d.to_webshop.add(f.name)
        return
    if _agree(f, c, s, ctx):
        return
    # A default standing in for an empty webCRM value (an empty stock status
    # read as in_stock) is still empty here: it never overwrites the webshop.
    c_empty = is_empty(cv) or (
        f.conversion.empty_default is not None and f.conversion.webcrm_is_empty(f.raw_webcrm(c.raw))
    )
    s_empty = is_empty(sv)
    if c_empty and s_empty:
        return
    if s_empty or (not c_empty and _newer(c, s) == "webcrm"):
        if f.direction.to_webshop:
            d.to_webshop.add(f.name)
        elif f.direction.to_webcrm and not s_empty:
            d.to_webcrm.add(f.name)
    elif f.direction.to_webcrm:
        d.to_webcrm.add(f.name)
    elif f.direction.to_webshop and not c_empty:
        d.to_webshop.add(f.name)


def _since(
    d: Decision,
    f: FieldMap,
    c: Side | None,
    s: Side | None,
    cv: Any,
    sv: Any,
    snap: Mapping[str, Any],
    ctx: MapContext,
) -> None:
    """A property with an agreed value: each side compared with its own (rules 3, 4)."""
    c_changed = c is not None and bool(f.webcrm) and cv != snap.get("c")
    s_changed = s is not None and sv != snap.get("s")
    if c_changed and s_changed:
        assert c is not None and s is not None
        if _agree(f, c, s, ctx):
            return
        winner = _newer(c, s)
        if winner == "webcrm" and not f.direction.to_webshop:
            winner = "webshop"
        elif winner == "webshop" and not f.direction.to_webcrm:
            winner = "webcrm"
        if winner == "webcrm" and f.direction.to_webshop:
            d.to_webshop.add(f.name)
            d.conflicts[f.name] = "webcrm"
        elif winner == "webshop" and f.direction.to_webcrm:
            d.to_webcrm.add(f.name)
            d.conflicts[f.name] = "webshop"
    elif c_changed and f.direction.to_webshop:
        held = sv if s is not None else snap.get("s")
        assert c is not None
        if not _converts_to(f, "webshop", c.raw, held, ctx):
            d.to_webshop.add(f.name)
    elif s_changed and f.direction.to_webcrm:
        held = cv if c is not None else snap.get("c")
        assert s is not None
        if not _converts_to(f, "webcrm", s.raw, held, ctx):
            d.to_webcrm.add(f.name)


def _converts_to(
    f: FieldMap, target: str, raw: Mapping[str, Any], held: Any, ctx: MapContext
) -> bool:
    """Would writing this change give the value the target already holds?

    Then there is nothing to write (the change is our own write coming back, or an edit
    that converges by itself), and writing anyway would be an echo.
    """
    try:
        if target == "webshop":
            value = f.conversion.to_webshop(f.raw_webcrm(raw), ctx)
            return bool(f.conversion.norm_webshop(value) == held)
        probe: dict[str, Any] = {}
        f.write_webcrm(probe, f.conversion.to_webcrm(f.raw_webshop(raw), ctx))
        return bool(f.webcrm_value(probe) == held)
    except Exception:
        return False


def snapshot_after(
    mapping: LinkMapping,
    previous: Props | None,
    c_raw: Mapping[str, Any] | None,
    s_raw: Mapping[str, Any] | None,
    c_sent: Mapping[str, Any] | None = None,
    *,
    c_values: Mapping[str, Any] | None = None,
    s_values: Mapping[str, Any] | None = None,
) -> Props:
    """The agreed state after a sync: each side's value as it now stands.

    ``c_raw`` is the webCRM record as read (None when it was not read this run) and
    ``c_sent`` what was written to it; ``s_raw`` is the webshop record as it now stands
    (the write's answer, or as read). A side that was not read keeps its previous
    snapshot values, except for what was written to it. ``c_values``/``s_values`` are
    ``c_raw``'s/``s_raw``'s values when the caller has them already (:class:`Decision`);
    ``c_values`` is used only when nothing was sent to webCRM.
    """
    props: Props = {}
    sent = dict(c_sent or {})
    c_vals: Mapping[str, Any] = {}
    if c_raw is not None:
        c_vals = (
            c_values
            if c_values is not None and not sent
            else mapping.webcrm_values({**c_raw, **sent})
        )
    s_vals: Mapping[str, Any] = {}
    if s_raw is not None:
        s_vals = s_values if s_values is not None else mapping.webshop_values(s_raw)
    # one loop per case: this runs for every record written, over every property
    before: Props = previous or {}
    none: dict[str, Any] = {}
    shape = mapping.webcrm_reading
    if c_raw is not None and s_raw is not None:
        return {
            name: {"c": c_vals[name], "s": s_vals[name]} if reads else {"s": s_vals[name]}
            for name, reads in shape
        }
    c_now: Mapping[str, Any] = c_vals if c_raw is not None else mapping.sent_webcrm_values(sent)
    for name, reads in shape:
        prev = before.get(name, none)
        entry: dict[str, Any] = {}
        if reads:
            entry["c"] = c_now[name] if name in c_now else prev.get("c")
        entry["s"] = s_vals[name] if s_raw is not None else prev.get("s")
        props[name] = entry
    return props
