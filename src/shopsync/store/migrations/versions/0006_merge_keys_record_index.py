"""Merge keys found by their record within a datatype and system

A page staged reads the merge keys its records hold (``datatype = ? AND system = ? AND
record_id IN (...)``) to write only those that changed. The only index with the
record id was on it alone, and SQLite chose the one on ``(datatype, system, key)``
instead, reading every key of the datatype and system for each page: 23 ms a page of
1,000 records once 40,000 records held keys, and growing with them. An index on
``(datatype, system, record_id)`` answers the read, and any other by record; the
index on the record id alone goes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_merge_keys_record", "merge_keys", ["datatype", "system", "record_id"])
    op.drop_index("ix_merge_keys_record_id", table_name="merge_keys")


def downgrade() -> None:
    op.create_index("ix_merge_keys_record_id", "merge_keys", ["record_id"])
    op.drop_index("ix_merge_keys_record", table_name="merge_keys")
