"""What ``shopsync check`` counts per datatype and direction (:class:`Tally`), and the
bounds that keep the counts small whatever the data (:data:`MAX_REASONS`,
:data:`MAX_EXAMPLES`).

Apart from :class:`~shopsync.engine.preflight.Preflight`, which fills the tallies, so
that what ``checks.py`` prints (and writes as JSON) can be read on its own;
``engine/preflight.py`` re-exports all of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shopsync.config.model import Datatype, System

MAX_REASONS = 100
"""Distinct reasons remembered per datatype and direction; more are counted together,
so memory stays bounded whatever the data (one reason per bad value is possible)."""
MAX_EXAMPLES = 3
"""Record ids kept per reason."""


@dataclass
class Reason:
    records: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class Tally:
    """One datatype in one direction (``source`` → the other system)."""

    datatype: Datatype
    source: System
    shared: bool = True
    """``[<datatype>] to_<target>.enabled``: False means nothing would be written."""
    read: int = 0
    put_aside: int = 0
    with_defaults: int = 0
    """Records written with at least one default for an empty webCRM field."""
    reasons: dict[str, Reason] = field(default_factory=dict)
    other_reasons: int = 0
    """Reason counts beyond :data:`MAX_REASONS` distinct ones."""
    defaults: Counter[str] = field(default_factory=Counter)
    """``"ProductStockStatus is empty → in_stock (mapping.stock_status)"`` → records."""
    not_created: Counter[str] = field(default_factory=Counter)
    """Records the engine would leave out by configuration (selective sync) → why."""
    complete: bool = True
    """False when reading stopped on an error: the counts cover what was read."""

    @property
    def target(self) -> System:
        return System.webshop if self.source is System.webcrm else System.webcrm

    def top_reasons(self) -> list[tuple[str, Reason]]:
        return sorted(self.reasons.items(), key=lambda kv: (-kv[1].records, kv[0]))

    def _add_reason(self, reason: str, example: str) -> None:
        entry = self.reasons.get(reason)
        if entry is None:
            if len(self.reasons) >= MAX_REASONS:
                self.other_reasons += 1
                return
            entry = self.reasons[reason] = Reason()
        entry.records += 1
        if len(entry.examples) < MAX_EXAMPLES:
            entry.examples.append(example)

    def to_json(self) -> dict[str, Any]:
        return {
            "datatype": self.datatype.value,
            "from": self.source.value,
            "to": self.target.value,
            "shared": self.shared,
            "complete": self.complete,
            "records": self.read,
            "put_aside": self.put_aside,
            "with_defaults": self.with_defaults,
            "reasons": [
                {"reason": text, "records": r.records, "examples": list(r.examples)}
                for text, r in self.top_reasons()
            ],
            "other_reasons": self.other_reasons,
            "defaults": [
                {"default": text, "records": n} for text, n in sorted_counts(self.defaults)
            ],
            "not_created": [
                {"reason": text, "records": n} for text, n in sorted_counts(self.not_created)
            ],
        }


def sorted_counts(counter: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
