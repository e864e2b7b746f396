"""An index for reading the inbox a batch at a time

The engine reads a datatype's inbox in batches (``datatype = ? AND id > ? ORDER BY id
LIMIT ?``). Without an index that starts with the datatype and goes on in id order,
PostgreSQL read every row of the datatype and sorted them for each batch (3.8 ms a
batch over an inbox of 15,000 rows, and growing with it: quadratic in the inbox's
size), as soon as its statistics said the inbox was small, which after a run they do.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_inbox_batch", "inbox", ["datatype", "id"])


def downgrade() -> None:
    op.drop_index("ix_inbox_batch", table_name="inbox")
