"""watchlist items; login throttle rows carry a hash of their username (admins clear one user's counters)

The (username, IP) throttle key is a hash of both, so a user's rows could not be found by username.
Rows written before this migration have no username hash; they expire on their own within
CNOP_LOGIN_LOCKOUT_SECONDS.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import cnop_app.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "watchlist_items",
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("asset_id", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("created_at", cnop_app.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("username", "asset_id"),
    )
    with op.batch_alter_table("login_throttles") as batch_op:
        batch_op.add_column(sa.Column("username_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_login_throttles_username_hash"), ["username_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("login_throttles") as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_throttles_username_hash"))
        batch_op.drop_column("username_hash")
    op.drop_table("watchlist_items")
