"""What a run did, per datatype: the figures the CLI's closing table shows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from shopsync.config.model import Datatype


@dataclass
class DatatypeStats:
    read_webcrm: int = 0
    """webCRM rows staged as changed."""
    read_webshop: int = 0
    received_webcrm: int = 0
    """Every webCRM row received (a full scan receives unchanged rows too)."""
    created_in_webshop: int = 0
    created_in_webcrm: int = 0
    updated_in_webshop: int = 0
    updated_in_webcrm: int = 0
    linked_by_merge: int = 0
    unchanged: int = 0
    deleted: int = 0
    conflicts: int = 0
    waiting: int = 0
    put_aside: int = 0
    updates_to_webshop: int = 0
    """Rule 9: a create, or the properties written together, count as one update."""
    updates_to_webcrm: int = 0

    @property
    def writes(self) -> int:
        return self.updates_to_webshop + self.updates_to_webcrm


@dataclass(frozen=True, slots=True)
class PlanLine:
    """One planned or performed action, for ``--dry-run`` and for the demo's story.

    A first sync plans one per record, and the run keeps them all: with slots a line
    of a short id and label takes 206 bytes instead of 254."""

    datatype: str
    action: str
    """``create``, ``update``, ``link``, ``delete``, ``deactivate``, ``wait``, ``put-aside``."""
    target: str
    """The system written to (or ``-``)."""
    record: str
    detail: str = ""
    label: str = ""
    """The record's name, SKU or number, beside its id (:mod:`engine.labels`)."""


@dataclass
class RunReport:
    dry_run: bool = False
    stats: dict[Datatype, DatatypeStats] = field(
        default_factory=lambda: {dt: DatatypeStats() for dt in Datatype}
    )
    plan: list[PlanLine] = field(default_factory=list)
    webcrm_requests: int = 0
    webshop_requests: int = 0
    seconds: float = 0.0

    @property
    def writes(self) -> int:
        return sum(s.writes for s in self.stats.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "stats": {dt.value: asdict(s) for dt, s in self.stats.items()},
            "webcrm_requests": self.webcrm_requests,
            "webshop_requests": self.webshop_requests,
            "seconds": round(self.seconds, 3),
            "writes": self.writes,
        }
