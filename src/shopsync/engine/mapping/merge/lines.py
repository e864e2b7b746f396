"""Order lines have no merge keys of their own: when two existing orders are merged,
their lines are paired within the order (:func:`pair_lines`), by sku, else by
description, and by occurrence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shopsync.config.model import Config, System
from shopsync.engine.mapping.merge.names import normalize_name, normalize_sku

LineKey = tuple[str, str, int]
"""``(kind, value, occurrence)``: ``("sku", "SKU-1", 0)`` is the first line with that sku."""


def line_match_key(cfg: Config, system: System, line: Mapping[str, Any]) -> tuple[str, str]:
    """What identifies a line within its order: its sku, else its description
    (case-folded, letters and digits), else nothing (``("none", "")``).

    Quantities and prices are deliberately not part of it: they are what the per-property
    sync reconciles after the pair is made.
    """
    if system == System.webcrm:
        sku, description = line.get(cfg.fields.line_sku), line.get(cfg.fields.line_description)
    else:
        sku, description = line.get("sku"), line.get("description")
    s = normalize_sku(sku)
    if s is not None:
        return ("sku", s)
    d = normalize_name(description)
    if d is not None:
        return ("description", d)
    return ("none", "")


def _position(system: System, line: Mapping[str, Any]) -> tuple[int, str]:
    pos = line.get("QuotationLineSortOrder" if system == System.webcrm else "position")
    ident = line.get("QuotationLineId" if system == System.webcrm else "id")
    try:
        p = int(pos) if pos is not None else 2**31
    except (TypeError, ValueError):
        p = 2**31
    return (p, str(ident or ""))


def line_keys(
    cfg: Config, system: System, lines: Sequence[Mapping[str, Any]]
) -> list[tuple[LineKey, Mapping[str, Any]]]:
    """Each line with its :data:`LineKey`, in position order: the n-th line with a given
    sku (or description) gets occurrence n, so an order with the same sku twice pairs
    first with first and second with second."""
    ordered = sorted(lines, key=lambda ln: _position(system, ln))
    seen: dict[tuple[str, str], int] = {}
    out: list[tuple[LineKey, Mapping[str, Any]]] = []
    for ln in ordered:
        base = line_match_key(cfg, system, ln)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(((base[0], base[1], n), ln))
    return out


@dataclass
class LinePairing:
    """The result of :func:`pair_lines`."""

    pairs: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = field(default_factory=list)
    """``(webCRM QuotationLine, webshop order line)`` to link."""
    webcrm_only: list[Mapping[str, Any]] = field(default_factory=list)
    """Lines to create on the webshop order."""
    webshop_only: list[Mapping[str, Any]] = field(default_factory=list)
    """Lines to create as QuotationLines."""


def pair_lines(
    cfg: Config,
    webcrm_lines: Sequence[Mapping[str, Any]],
    webshop_lines: Sequence[Mapping[str, Any]],
) -> LinePairing:
    """Pair the lines of a webCRM opportunity and a webshop order being merged.

    Lines pair by :func:`line_keys` (sku, or description, and occurrence); unpaired lines
    are created on the other side. Lines without sku and description never pair.
    """
    result = LinePairing()
    shop = {k: ln for k, ln in line_keys(cfg, System.webshop, webshop_lines) if k[0] != "none"}
    used: set[LineKey] = set()
    for key, crm_line in line_keys(cfg, System.webcrm, webcrm_lines):
        match = shop.get(key)
        if match is not None:
            result.pairs.append((crm_line, match))
            used.add(key)
        else:
            result.webcrm_only.append(crm_line)
    result.webshop_only = [
        ln for k, ln in line_keys(cfg, System.webshop, webshop_lines) if k not in used
    ]
    return result
