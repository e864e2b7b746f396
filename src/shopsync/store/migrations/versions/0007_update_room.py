"""Room in each page of links and snapshots for their next versions (PostgreSQL)

Every changed record rewrites its snapshot and its link's ``updated_at``. PostgreSQL
writes a row's new version beside the old one: on the same page, it needs no new entry
in any index (a "HOT" update); on a full page it goes elsewhere and every index of the
table gets an entry for it (links have four). Pages filled to the brim by an initial
sync left no room, so the first round of edits after it updated every index of both
tables. Filled to 60 %, the pages keep room for the next versions. Measured by
``bench/pg_update_room.py`` (40,000 links with snapshots, every one updated twice in
batches of 1,000): 68 % and then 90 % of the updates were HOT instead of 1-2 %, the two
rounds took 0.35-0.46 s and 0.22 s instead of 0.60 s and 0.49-0.54 s, an echo pass's
look-up took the same time, and after the two rounds the snapshots took 48.0 MB instead
of 43.4 MB (a table filled to the brim grows by its updates too). Pages written before
this revision stay as full as they are until rewritten; SQLite has no such setting.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("links", "snapshots")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 60)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
