"""Before the first sync: which records would be put aside, and why (``shopsync check``).

Every record read from either system goes through what the engine does with it when it
creates it on the other side (``LinkMapping.to_webshop`` / ``to_webcrm``, after the same
preparation: an opportunity without a number gets one, selective sync leaves lost and
open opportunities out), and, towards the webshop, the body is checked against the
webshop contract the shop validates it with (a refusal puts the record aside too,
rule 7). Nothing is written anywhere and nothing is kept but counts: per datatype and
direction the records read, the records that would be put aside with their reasons
(the most frequent first, a few record ids each), and how often each default stood in
for an empty webCRM field (``Conversion.empty_default``).

What it cannot know before a sync: references are taken as linked (an order whose
customer is not linked yet waits, it is not put aside), merge keys are not compared
(``[matching] on_ambiguous``), and a shop may refuse for reasons of its own (a sku
already taken). A record with several problems counts once as put aside, and under
each of its reasons (the engine reports the first; the operator can fix them all).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from typing import Any

from shopsync.config.model import Config, Datatype, System
from shopsync.engine.mapping import LinkMapping, MappingError, Unresolved, mappings
from shopsync.engine.mapping.orders import assign_order_number, is_won, needs_order_number
from shopsync.engine.preflight_tally import (
    MAX_EXAMPLES,
    MAX_REASONS,
    Reason,
    Tally,
    sorted_counts,
)

__all__ = [
    "CONTRACT_SCHEMA",
    "MAX_EXAMPLES",
    "MAX_REASONS",
    "Label",
    "Preflight",
    "Reason",
    "Tally",
    "sorted_counts",
]

CONTRACT_SCHEMA = {
    Datatype.customers: "CustomerCreate",
    Datatype.products: "ProductCreate",
    Datatype.orders: "OrderCreate",
    Datatype.order_lines: "OrderLineInput",
}
"""The webshop contract's schema for a body ``to_webshop`` builds, per datatype."""


class _Assume:
    """A :class:`MapContext` in which every reference is linked: before a sync nothing
    is, and a record whose reference is not linked yet waits (rule 6) rather than being
    put aside. An empty reference still is a :class:`MappingError` where it is required
    (an opportunity without an organisation)."""

    def __init__(self, config: Config) -> None:
        self._config = config

    @property
    def config(self) -> Config:
        return self._config

    def webshop_id(self, datatype: Datatype, webcrm_id: str) -> str | None:
        return f"linked-{webcrm_id}"

    def webcrm_id(self, datatype: Datatype, webshop_id: str) -> str | None:
        return "1"

    def product_id_for_sku(self, sku: str) -> str | None:
        return None

    def unlinked(self, datatype: Datatype, side: str, ref_id: str) -> str | None:
        return None


Label = Callable[[Datatype, System, Mapping[str, Any]], str]


class Preflight:
    """Counts, record by record, what a first sync would do with what is read."""

    def __init__(self, config: Config, *, label: Label | None = None) -> None:
        self.config = config
        self.maps: dict[Datatype, LinkMapping] = mappings(config)
        self.ctx = _Assume(config)
        self.label = label
        self.tallies: dict[tuple[Datatype, System], Tally] = {}
        for dt in Datatype:
            share = config.datatype(dt)
            for source, enabled in (
                (System.webcrm, share.to_webshop.enabled),
                (System.webshop, share.to_webcrm.enabled),
            ):
                self.tallies[dt, source] = Tally(dt, source, shared=enabled)

    def tally(self, datatype: Datatype, source: System) -> Tally:
        return self.tallies[datatype, source]

    # ------------------------------------------------------------------ records
    def webcrm_records(self, datatype: Datatype, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            self.webcrm_record(datatype, record)

    def webshop_records(self, datatype: Datatype, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            self.webshop_record(datatype, record)

    def webcrm_record(self, datatype: Datatype, record: Mapping[str, Any]) -> None:
        """A webCRM record, as the engine would create it in the webshop."""
        tally = self.tallies[datatype, System.webcrm]
        tally.read += 1
        if not tally.shared:
            return
        lm = self.maps[datatype]
        data = dict(record)
        if datatype is Datatype.orders:
            if self.config.selective.only_won_opportunities and not is_won(self.config, data):
                tally.not_created["selective sync: only won opportunities become orders"] += 1
                return
            if needs_order_number(data):  # the engine numbers it first, and writes it back
                try:
                    data["OpportunityNumber"] = assign_order_number(
                        self.config, data.get("OpportunityId") or 0
                    )
                except ValueError as exc:
                    self._count(tally, record, [str(exc)])
                    return
        reasons = self._to_webshop(lm, data)
        if not reasons:
            used = [
                f"{', '.join(f.webcrm)} is empty → {f.conversion.empty_default}"
                for f in lm.fields
                if f.conversion.empty_default is not None
                and f.webcrm
                and f.direction.to_webshop
                and f.conversion.webcrm_is_empty(f.raw_webcrm(data))
            ]
            tally.defaults.update(used)
            tally.with_defaults += bool(used)
        self._count(tally, record, reasons)

    def webshop_record(self, datatype: Datatype, record: Mapping[str, Any]) -> None:
        """A webshop record (for order lines: one element of an order's ``lines``), as
        the engine would create it in webCRM."""
        tally = self.tallies[datatype, System.webshop]
        tally.read += 1
        if not tally.shared:
            return
        self._count(tally, record, self._to_webcrm(self.maps[datatype], record))

    # ------------------------------------------------------------------ helpers
    def _count(self, tally: Tally, record: Mapping[str, Any], reasons: list[str]) -> None:
        if not reasons:
            return
        tally.put_aside += 1
        example = self._example(tally, record)
        for reason in dict.fromkeys(reasons):  # once per record, in order
            tally._add_reason(reason, example)

    def _example(self, tally: Tally, record: Mapping[str, Any]) -> str:
        lm = self.maps[tally.datatype]
        id_field = lm.id_fields[0] if tally.source is System.webcrm else lm.id_fields[1]
        rid = str(record.get(id_field) or "?")
        if self.label is None:
            return rid
        label = self.label(tally.datatype, tally.source, record)
        return f"{rid} ({label})" if label else rid

    def _to_webshop(self, lm: LinkMapping, record: Mapping[str, Any]) -> list[str]:
        try:
            body = lm.to_webshop(record, self.ctx)
        except Unresolved:
            return []  # waits (rule 6); cannot happen with every reference linked
        except MappingError:
            return self._row_by_row(lm, record, towards=System.webshop)
        return self._contract(lm, body)

    def _to_webcrm(self, lm: LinkMapping, record: Mapping[str, Any]) -> list[str]:
        try:
            lm.to_webcrm(record, self.ctx)
        except Unresolved:
            return []
        except MappingError:
            return self._row_by_row(lm, record, towards=System.webcrm)
        return []

    def _row_by_row(self, lm: LinkMapping, record: Mapping[str, Any], towards: System) -> list[str]:
        """Every problem of a record, not only the first one the whole mapping met."""
        found: list[str] = []
        for f in lm.fields:
            wanted = f.direction.to_webshop if towards is System.webshop else f.direction.to_webcrm
            if not wanted or (towards is System.webcrm and not f.webcrm):
                continue
            try:
                if towards is System.webshop:
                    lm.to_webshop(record, self.ctx, only=[f.name])
                else:
                    lm.to_webcrm(record, self.ctx, only=[f.name])
            except Unresolved:
                continue
            except MappingError as exc:
                if len(exc.problems) > 1:
                    found += [f"{name}: {message}" if name else message
                              for name, message in exc.problems]  # fmt: skip
                else:
                    found.append(str(exc))
        return found or ["cannot be mapped (see shopsync sync --dry-run)"]

    # ------------------------------------------------------------------ contract
    @cached_property
    def _validators(self) -> dict[Datatype, Any]:
        from jsonschema import Draft202012Validator
        from referencing import Registry
        from referencing.jsonschema import DRAFT202012

        from shopsync.contract import load_contract

        uri = "urn:shopsync:webshop-contract"
        registry: Registry[Any] = Registry().with_resource(
            uri, DRAFT202012.create_resource(load_contract())
        )
        return {
            dt: Draft202012Validator(
                {"$ref": f"{uri}#/components/schemas/{name}"},
                registry=registry,
                format_checker=Draft202012Validator.FORMAT_CHECKER,
            )
            for dt, name in CONTRACT_SCHEMA.items()
        }

    def _contract(self, lm: LinkMapping, body: Mapping[str, Any]) -> list[str]:
        """What the webshop contract refuses in a body ``to_webshop`` built: the shop
        answers 422 and the engine puts the record aside (a negative price, a sku longer
        than the shop allows)."""
        validator = self._validators[lm.datatype]
        problems = []
        for error in validator.iter_errors(dict(body)):
            leaf = _leaf(error)
            path = ".".join(str(p) for p in leaf.absolute_path)
            rows = [f for f in lm.fields if f.webshop == path and f.webcrm]
            source = ", ".join(rows[0].webcrm) if rows else path or "the record"
            described = leaf.schema.get("description") if isinstance(leaf.schema, dict) else None
            if leaf.validator == "pattern" and isinstance(described, str):
                what = f"{leaf.instance!r} is not {described[0].lower()}{described[1:]}".rstrip(".")
            else:
                what = leaf.message
            problems.append(f"{source}: the webshop contract refuses {path or 'the body'}: {what}")
        return problems


def _leaf(error: Any) -> Any:
    """The error that says what is wrong: inside ``oneOf`` (a value or null), the one
    that is not "is not of type 'null'"."""
    while error.context:
        inner = [
            e for e in error.context if not (e.validator == "type" and e.validator_value == "null")
        ]
        if not inner:
            break
        error = max(inner, key=lambda e: len(e.absolute_path))
    return error
