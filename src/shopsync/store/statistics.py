"""The planner's statistics, refreshed when a run has grown a table.

PostgreSQL plans each query from the statistics ``ANALYZE`` gathered; autovacuum
refreshes them, but only minutes after a table changed. A run that fills a table from
next to nothing (an initial sync: the inbox, the merge keys, then the links and
snapshots) is therefore planned as if the table were still empty for the rest of that
run: a lookup of 500 merge keys by ``key = ANY(:keys)`` became a walk of every key of the
datatype, once per key (28 ms a query where an index probe takes a fraction of one;
6.7 s of an 8,000-record initial sync). So the engine says how many rows it has added,
and the tables are analysed each time that number doubles past :data:`FIRST`: a few
analyses per run, however large, and none in the runs of an always-on service that add
a handful. SQLite plans without row counts; nothing happens there.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

FIRST = 2000
"""Rows added before the first analysis: fewer are planned well from any statistics."""
TABLES = frozenset({"inbox", "merge_keys", "links", "snapshots"})
"""The tables a run grows (and the only names :func:`analyze` accepts)."""


def analyze(s: Session, tables: Sequence[str]) -> None:
    """``ANALYZE`` ``tables`` on PostgreSQL (inside the session's transaction: it sees
    the rows the transaction added); nothing on SQLite."""
    unknown = set(tables) - TABLES
    if unknown:
        raise ValueError(f"not a table a run grows: {sorted(unknown)}")
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text(f"ANALYZE {', '.join(sorted(tables))}"))


class Growth:
    """Rows a run has added to groups of tables, and when to analyse them again."""

    def __init__(self, first: int | None = None) -> None:
        self.first = FIRST if first is None else first
        self._next: dict[tuple[str, ...], int] = {}

    def added(self, s: Session, tables: tuple[str, ...], rows: int) -> bool:
        """``rows`` is how many rows this run has added to ``tables`` so far; they are
        analysed when it reaches the next threshold (:data:`FIRST`, then twice the count
        of the last analysis). Returns whether they were."""
        due = self._next.get(tables, self.first)
        if rows < due:
            return False
        analyze(s, tables)
        self._next[tables] = max(2 * rows, due)
        return True
