"""Merge criteria as the engine uses them: flat string keys, and the decision which
record of the other side (if any) a record is merged with.

The criteria themselves (what is normalized how, in which order, how strong) are the
mapper's business (``mapping/merge/``); this module turns each ``(criterion, value)``
into one string per key, so the state store can index them, and weighs the keys of a
record against the records holding them (:meth:`Matcher.choose`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shopsync.config.model import Config, Datatype, System
from shopsync.engine.mapping import merge
from shopsync.engine.mapping.merge import COMPANY_WIDE, STRENGTH, Strength
from shopsync.engine.match_decision import MatchDecision, Outcome, split_key

__all__ = ["KeyLookup", "MatchDecision", "Matcher", "Outcome", "key_variants", "split_key"]


class KeyLookup(Protocol):
    """What :meth:`Matcher.choose` reads about the other records (engine: the
    ``merge_keys`` table)."""

    def holders(self, system: str, key: str) -> Sequence[str]:
        """Ids of the records of ``system`` that hold ``key`` (the record being matched
        may be among them), **linked ones included** (``choose``'s ``taken`` tells which
        cannot be chosen): a VAT number held by a linked branch and an unlinked one
        identifies neither. A store that forgets a record's keys once it is linked lets
        the second branch take the first one's duplicate (docs/mapping.md)."""
        ...

    def keys_of(self, system: str, record_id: str) -> Sequence[str] | None:
        """A record's keys (:meth:`Matcher.keys`); None when it is gone or unreadable."""
        ...


@dataclass
class _Ambiguity:
    key: str
    holders: tuple[str, ...]
    same_side: tuple[str, ...]
    taken: tuple[str, ...] = ()


def _unique(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(str(i) for i in ids))


def key_variants(key: str) -> tuple[str, ...]:
    """Other keys of the same value: a VAT number with and without its country
    (:func:`merge.vat_variants`); none for the other criteria."""
    tag, value = split_key(key)
    return tuple(f"{tag}:{v}" for v in merge.vat_variants(value)) if tag == "vat" else ()


def _by_criterion(keys: Sequence[str]) -> dict[str, list[str]]:
    """A record's keys grouped by criterion, each group in the record's order."""
    by_tag: dict[str, list[str]] = {}
    for key in keys:
        by_tag.setdefault(split_key(key)[0], []).append(key)
    return by_tag


class _Holders:
    """``lookup.holders`` of a key and its :func:`key_variants`, asked once per key."""

    def __init__(self, lookup: KeyLookup) -> None:
        self.lookup = lookup
        self.seen: dict[tuple[str, str], list[str]] = {}

    def __call__(self, system: str, key: str, besides: str | None = None) -> list[str]:
        if (system, key) not in self.seen:
            ids = [i for k in (key, *key_variants(key)) for i in self.lookup.holders(system, k)]
            self.seen[(system, key)] = _unique(ids)
        return [i for i in self.seen[(system, key)] if i != besides]


@dataclass
class _Look:
    """What :meth:`Matcher.choose` knows while it tries the criteria of one record."""

    lookup: KeyLookup
    holders: _Holders
    own: str
    target: str
    record_id: str
    keys: Sequence[str]
    strong_tags: Sequence[str]
    taken: Callable[[str], bool]
    notes: list[str] = field(default_factory=list)


class Matcher:
    def __init__(self, config: Config) -> None:
        self.config = config

    def keys(self, datatype: Datatype, system: str, record: Mapping[str, Any]) -> list[str]:
        """The record's merge keys, strongest criterion first."""
        pairs = merge.merge_keys(self.config, datatype, System(system), record)
        return [f"{tag}:{value}" for tag, value in pairs]

    @staticmethod
    def strength(key: str) -> Strength:
        """Whether a key (``"vat:…"``) is strong or weak."""
        return STRENGTH[split_key(key)[0]]

    def choose(
        self,
        datatype: Datatype,
        system: str,
        record: Mapping[str, Any],
        lookup: KeyLookup,
        *,
        record_id: str,
        taken: Callable[[str], bool] | None = None,
    ) -> MatchDecision:
        """Which record of the other side ``record`` (of ``system``, id ``record_id``)
        is the same as: a pure decision over what ``lookup`` reports.

        Criteria are tried strongest first (:data:`merge.CRITERIA`). A key decides only
        when exactly one record of the other side holds it *and* no other record of the
        record's own side does: a key held by two webshop customers, or by two webCRM
        branches, is ambiguous and not used; the next criterion is tried. When a
        criterion gives two keys (webCRM's website and domain) that point at different
        records, or one is ambiguous, the criterion is ambiguous. A record the engine
        can no longer use (``taken``: linked, or claimed by another merge this batch)
        makes its key ambiguous too: something else already answers to it.

        A weak key (domain, name + postal code) is further refused when

        * both records have a strong key of a criterion (VAT) and the values disagree:
          two companies sharing a domain or a name are two companies; or
        * only one of the two has a strong key of a criterion (VAT) and that key is held
          by another record of the other one's side: the stronger key says the record
          belongs with that one, whichever side is processed first; or
        * the weak key is company-wide (:data:`merge.COMPANY_WIDE`: the website) and the
          VAT number of either record is held by any third record: the record is one of
          several branches, which share their website; only name + postal code can
          tell branches apart.

        A VAT number counts with its other spellings (:func:`key_variants`): a record
        whose country is empty holds the bare number, which is the same number as the
        one with a country (it matches it when it is the only holder, and makes it
        ambiguous when it is not).

        The outcome is the first criterion's match; else ``ambiguous`` (with the
        strongest ambiguous key) when any key was; else ``no_match``.
        """
        own = str(System(system))
        target = str(System.webshop if own == System.webcrm else System.webcrm)
        keys = self.keys(datatype, own, record)
        look = _Look(
            lookup, _Holders(lookup), own, target, record_id, keys,
            [t for t in merge.CRITERIA[datatype] if STRENGTH[t] is Strength.strong],
            taken or (lambda _id: False),
        )  # fmt: skip
        return self._decide(look, merge.CRITERIA[datatype], _by_criterion(keys))

    def _decide(
        self, look: _Look, criteria: Sequence[str], by_tag: Mapping[str, Sequence[str]]
    ) -> MatchDecision:
        """The criteria tried in order, strongest first: the first one that matches, else
        the first key that was ambiguous, else no match (see :meth:`choose`)."""
        first: _Ambiguity | None = None
        for tag in criteria:
            strength = STRENGTH[tag]
            proposals, ambiguity = self._criterion(look, tag, by_tag.get(tag, ()))
            first = first or ambiguity
            if len(proposals) == 1 and ambiguity is None:
                candidate, key = next(iter(proposals.items()))
                return MatchDecision(
                    Outcome.match, candidate=candidate, key=key, strength=strength,
                    holders=(candidate,), notes=tuple(look.notes),
                )  # fmt: skip
            if len(proposals) > 1:
                look.notes.append(f"{tag}: keys point at different records {sorted(proposals)}")
                key = next(iter(proposals.values()))
                first = first or _Ambiguity(key, tuple(proposals), ())
            elif proposals:
                look.notes.append(f"{tag}: not used, another key of it is ambiguous")
        if first is not None:
            return MatchDecision(
                Outcome.ambiguous, key=first.key, strength=self.strength(first.key),
                holders=first.holders, same_side=first.same_side, taken=first.taken,
                notes=tuple(look.notes),
            )  # fmt: skip
        return MatchDecision(Outcome.no_match, notes=tuple(look.notes))

    def _criterion(
        self, look: _Look, tag: str, keys: Sequence[str]
    ) -> tuple[dict[str, str], _Ambiguity | None]:
        """One criterion's keys: the candidates they propose (candidate → key), and the
        first key that was ambiguous (None: none was)."""
        proposals: dict[str, str] = {}
        first: _Ambiguity | None = None
        own, target = look.own, look.target
        for key in keys:
            others = look.holders(target, key)
            if not others:
                continue
            mine = tuple(look.holders(own, key, besides=look.record_id))
            unusable = [c for c in others if look.taken(c)]
            if len(others) > 1 or mine or unusable:
                first = first or _Ambiguity(key, tuple(others), mine, tuple(unusable))
                why = [f"{len(others)} {target}"] if len(others) > 1 else []
                why += [f"{len(mine)} other {own}"] if mine else []
                why += [f"{len(unusable)} already linked"] if unusable else []
                look.notes.append(f"{key}: ambiguous ({', '.join(why)})")
                continue
            candidate = others[0]
            if STRENGTH[tag] is Strength.weak:
                refusal = self._weak_refusal(
                    tag, look.keys, look.strong_tags, look.lookup, look.holders, own, target,
                    look.record_id, candidate,
                )  # fmt: skip
                if refusal is not None:
                    look.notes.append(f"{key}: {target} {candidate} not used: {refusal}")
                    continue
            proposals.setdefault(candidate, key)
        return proposals, first

    @staticmethod
    def _weak_refusal(
        tag: str,
        keys: Sequence[str],
        strong_tags: Sequence[str],
        lookup: KeyLookup,
        holders: _Holders,
        own: str,
        target: str,
        record_id: str,
        candidate: str,
    ) -> str | None:
        """Why the weak key of criterion ``tag`` must not merge the record with
        ``candidate``, or None."""
        theirs = lookup.keys_of(target, candidate)
        if theirs is None:
            return "it is gone"
        company_wide = tag in COMPANY_WIDE

        for strong in strong_tags:
            mine = sorted(k for k in keys if split_key(k)[0] == strong)
            their = sorted(k for k in theirs if split_key(k)[0] == strong)
            same = {v for k in mine for v in (k, *key_variants(k))}
            if mine and their and not same & set(their):
                return f"{strong} differs ({', '.join(mine)} ≠ {', '.join(their)})"
            # the strong key one of them lacks must belong to no one else; for a
            # company-wide key (the website), also the one they share: held by a third
            # record, it is a branch's, and branches share their website
            checks = [(target, k, candidate) for k in mine if company_wide or not their]
            checks += [(own, k, record_id) for k in their if company_wide or not mine]
            for system, key, besides in checks:
                ids = holders(system, key, besides=besides)
                if ids:
                    return f"{key} is held by {system} {', '.join(ids)}"
        return None
