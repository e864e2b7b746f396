"""Per-side fingerprints of a snapshot's values: "unchanged" decided without decoding
its JSON

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Snapshots written before stay without fingerprints: their records are compared
    # value by value, as before, until their next write gives them one.
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("webcrm_fp", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("webshop_fp", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("webshop_fp")
        batch.drop_column("webcrm_fp")
