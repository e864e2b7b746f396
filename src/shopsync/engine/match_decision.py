"""What :meth:`~shopsync.engine.matching.Matcher.choose` answers: the outcome, the key
that decided it, and the one line the report shows (:attr:`MatchDecision.reason`).

A module of its own so that ``engine/matching.py`` holds only the weighing; it
re-exports all of this, so ``from shopsync.engine.matching import Outcome`` still works.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shopsync.engine.mapping.merge import Strength


def split_key(key: str) -> tuple[str, str]:
    """``"vat:DK12345678"`` → ``("vat", "DK12345678")``."""
    tag, _, value = key.partition(":")
    return tag, value


class Outcome(StrEnum):
    match = "match"
    """Merge with :attr:`MatchDecision.candidate`."""
    ambiguous = "ambiguous"
    """A key matched, but not one record: create or put aside per
    ``matching.on_ambiguous``."""
    no_match = "no_match"
    """Nothing on the other side is this record: create it there."""


@dataclass(frozen=True)
class MatchDecision:
    """The result of :meth:`Matcher.choose`."""

    outcome: Outcome
    candidate: str | None = None
    """match: the id of the other side's record."""
    key: str | None = None
    """match: the key that decided (``"vat:DK12345678"``); ambiguous: the strongest key
    that was ambiguous."""
    strength: Strength | None = None
    """The strength of :attr:`key`'s criterion."""
    holders: tuple[str, ...] = ()
    """ambiguous: the other side's records holding :attr:`key` (or, when two keys of one
    criterion point at different records, those records)."""
    same_side: tuple[str, ...] = ()
    """ambiguous: the *other* records of the record's own side that hold :attr:`key`."""
    taken: tuple[str, ...] = ()
    """ambiguous: those of :attr:`holders` that ``taken`` said cannot be chosen (linked,
    or claimed in this batch: the engine may rather wait for the next pass)."""
    notes: tuple[str, ...] = ()
    """Each key that was not used, and why (for the log and the plan)."""

    @property
    def criterion(self) -> str | None:
        return split_key(self.key)[0] if self.key else None

    @property
    def reason(self) -> str:
        """One line for the report: what decided, or why nothing did."""
        if self.outcome is Outcome.match:
            return f"merged by {self.strength} key {self.key}"
        if self.outcome is Outcome.ambiguous:
            parts = []
            if len(self.holders) > 1:
                parts.append(f"{len(self.holders)} records on the other side")
            elif self.holders:
                parts.append(f"the other side's record {self.holders[0]}")
            if self.taken:
                parts[-1] += f" ({len(self.taken)} already linked)"
            if self.same_side:
                parts.append(f"{len(self.same_side)} more on this side")
            return f"ambiguous merge key {self.key}: held by " + " and ".join(parts)
        return "no record on the other side shares a merge key"
