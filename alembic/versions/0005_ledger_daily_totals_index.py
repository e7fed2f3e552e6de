"""ledger index for the daily deposit and withdrawal totals

`GET /balance` and every cash move read today's deposits and withdrawals of one user. Without this
index the query walked all of the user's ledger entries (one or two per order), so the balance got
slower with every trade.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_ledger_user_type_created", "ledger_entries", ["username", "entry_type", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_ledger_user_type_created", table_name="ledger_entries")
