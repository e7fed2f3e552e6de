"""portfolio snapshots indexed by time for the pruning after each refresh

Every price refresh writes one snapshot per account and deletes those older than 31 days. The only
index led with the username, so that delete read the whole table: a row per account per refresh (at
1,000 accounts and 5-minute refreshes, about 9 million rows after a month), on every refresh.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_portfolio_snapshots_at", "portfolio_snapshots", ["at"])


def downgrade() -> None:
    op.drop_index("ix_portfolio_snapshots_at", table_name="portfolio_snapshots")
