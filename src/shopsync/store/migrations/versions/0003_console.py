"""The console's tables: activity, switches, daily update counts, ignored problems,
search terms

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "console_activity",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("datatype", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("record", sa.String(length=256), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("link_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_console_activity_at", "console_activity", ["at"])
    op.create_index("ix_console_activity_dt", "console_activity", ["datatype", "id"])
    op.create_index("ix_console_activity_link", "console_activity", ["link_id", "id"])
    op.create_table(
        "console_switches",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "console_daily_updates",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("datatype", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "datatype", "direction"),
    )
    op.create_table(
        "console_ignored",
        sa.Column("datatype", sa.String(length=32), nullable=False),
        sa.Column("system", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("datatype", "system", "record_id"),
    )
    op.create_table(
        "console_terms",
        sa.Column(
            "term",
            sa.String(length=128).with_variant(sa.String(128, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("term", "link_id"),
    )
    op.create_index("ix_console_terms_link", "console_terms", ["link_id"])


def downgrade() -> None:
    op.drop_index("ix_console_terms_link", table_name="console_terms")
    op.drop_table("console_terms")
    op.drop_table("console_ignored")
    op.drop_table("console_daily_updates")
    op.drop_table("console_switches")
    op.drop_index("ix_console_activity_link", table_name="console_activity")
    op.drop_index("ix_console_activity_dt", table_name="console_activity")
    op.drop_index("ix_console_activity_at", table_name="console_activity")
    op.drop_table("console_activity")
