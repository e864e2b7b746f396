"""The values the engine's parts hand each other: one pair's work (:class:`Item`), one
batch of inbox rows (:class:`Batch`), why a record is held back (:class:`Hold`).

Data flows one way through a run (``docs/architecture.md``): staging fills the inbox,
the planner turns inbox rows into items, the writers send them, the recorder stores what
came back. An :class:`Item` is that one unit of work as it passes each stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shopsync.config.model import Datatype
from shopsync.engine.differ import Decision, Props
from shopsync.store.rows import InboxEntry, LinkEntry, SnapshotEntry

WEBCRM = "webcrm"
WEBSHOP = "webshop"

BATCH = 200
"""Inbox rows planned, written and recorded per transaction."""
PASSES = 4
"""Passes over one datatype's inbox while they make progress (a record waiting for one
created earlier in the same pass goes through in the next)."""
MAX_SERVER_ERRORS = 5
"""Webshop writes in a row answered 5xx (after retries) that are put aside, each for
itself, before the next one stops the run: beyond that the shop is down, not the record."""
RUN_ORDER: tuple[Datatype, ...] = (Datatype.customers, Datatype.products, Datatype.orders)
"""Rule 6: the datatypes a run works through, in order (order lines follow their orders)."""


def other(system: str) -> str:
    """The other side."""
    return WEBSHOP if system == WEBCRM else WEBCRM


@dataclass(frozen=True)
class Hold:
    """Why an unlinked record is neither merged nor created now."""

    reason: str
    aside: bool = False
    """Put it aside (an ambiguous key) rather than let it wait (a holder being synced)."""


@dataclass(frozen=True)
class LineOutcome:
    """One record's result of a batched upsert, re-indexed for its own order's lines."""

    index: int
    id: int | None
    error: str | None


@dataclass
class Item:
    """One pair's work as it passes planner → writers → recorder."""

    datatype: Datatype
    source: str
    """The side whose change started this item (for put-aside and reports)."""
    link: LinkEntry | None = None
    c_row: InboxEntry | None = None
    s_row: InboxEntry | None = None
    c_raw: dict[str, Any] | None = None
    s_raw: dict[str, Any] | None = None
    snapshot: Props | None = None
    snapshot_row: SnapshotEntry | None = None
    """The loaded snapshot behind ``snapshot``: the recorder updates it in place (the
    session only holds it weakly, and a webCRM write may be recorded batches later)."""
    created_by: str = "merge"
    matched_by: str = ""
    """The merge key that paired an unlinked record (``vat:DK12345678``), for reports."""
    # what goes to the webshop
    shop_body: dict[str, Any] | None = None
    shop_create: bool = False
    shop_key: str | None = None
    shop_id: str | None = None
    if_match: int | None = None
    # what goes to webCRM
    crm_body: dict[str, Any] | None = None
    crm_create: bool = False
    crm_id: str | None = None
    # what came back
    s_after: dict[str, Any] | None = None
    crm_sent: dict[str, Any] = field(default_factory=dict)
    refused: str | None = None
    retry: bool = False
    crm_lines: list[dict[str, Any]] | None = None
    """Orders: the webCRM lines that travel with a new webshop order (sorted as sent)."""
    line_rows: list[InboxEntry] = field(default_factory=list)
    prefetched: tuple[dict[str, Any] | None, Exception | None] | None = None
    """A webshop write's answer (or error), fetched with the batch's other writes."""
    decision: Decision | None = None

    @property
    def rows(self) -> list[InboxEntry]:
        return [r for r in (self.c_row, self.s_row) if r is not None]

    @property
    def label(self) -> str:
        return pair_label(self.crm_id, self.shop_id)


def pair_label(crm_id: str | None, shop_id: str | None) -> str:
    return f"webcrm:{crm_id or '-'} ⇄ webshop:{shop_id or '-'}"


@dataclass
class Batch:
    """The inbox rows of one transaction: which are claimed, which are done."""

    items: list[Item] = field(default_factory=list)
    claimed: set[int] = field(default_factory=set)
    done_rows: list[InboxEntry] = field(default_factory=list)
    progress: bool = False

    def claim(self, row: InboxEntry | None) -> None:
        if row is not None:
            self.claimed.add(row.id)

    def done(self, *rows: InboxEntry | None) -> None:
        """These rows' work is finished: they leave the inbox when the batch is recorded."""
        for row in rows:
            if row is not None:
                self.claim(row)
                self.done_rows.append(row)
                self.progress = True


def may_still_land(seconds_left: float) -> str:
    return (
        f"a create sent to webCRM before an interruption may still land; webCRM is "
        f"asked whether it did in {max(seconds_left, 0.0):.0f} s (a later run)"
    )


def may_be_own_create(seconds_left: float) -> str:
    return (
        f"new in webCRM while creates interrupted earlier are unresolved: it may be one "
        f"of them; decided in {max(seconds_left, 0.0):.0f} s (a later run)"
    )
