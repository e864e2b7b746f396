"""An in-memory stand-in for the ``merge_keys`` table, for pure tests of
``Matcher.choose`` (the engine reads the same two things from the state store)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shopsync.config.model import Config, Datatype
from shopsync.engine.matching import MatchDecision, Matcher

WEBCRM, WEBSHOP = "webcrm", "webshop"


@dataclass
class KeyIndex:
    """Records of both sides with their merge keys.

    ``keep_linked`` chooses what :meth:`holders` reports about linked records: False is
    the state store as it is (a record's keys are deleted when it is linked), True is the
    recommended store that keeps them (and :meth:`decide` marks them ``taken``).
    """

    datatype: Datatype = Datatype.customers
    config: Config = field(default_factory=Config)
    keep_linked: bool = False
    records: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    keys: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    linked: set[tuple[str, str]] = field(default_factory=set)

    @property
    def matcher(self) -> Matcher:
        return Matcher(self.config)

    def add(self, system: str, record_id: str, record: Mapping[str, Any]) -> KeyIndex:
        self.records[(system, record_id)] = record
        self.keys[(system, record_id)] = self.matcher.keys(self.datatype, system, record)
        return self

    def link(self, system: str, record_id: str) -> None:
        self.linked.add((system, record_id))

    # KeyLookup
    def holders(self, system: str, key: str) -> Sequence[str]:
        return [
            rid
            for (sys_, rid), keys in self.keys.items()
            if sys_ == system
            and key in keys
            and (self.keep_linked or (sys_, rid) not in self.linked)
        ]

    def keys_of(self, system: str, record_id: str) -> Sequence[str] | None:
        return self.keys.get((system, record_id))

    def decide(self, system: str, record_id: str) -> MatchDecision:
        other = WEBSHOP if system == WEBCRM else WEBCRM
        return self.matcher.choose(
            self.datatype,
            system,
            self.records[(system, record_id)],
            self,
            record_id=record_id,
            taken=lambda rid: (other, rid) in self.linked,
        )
