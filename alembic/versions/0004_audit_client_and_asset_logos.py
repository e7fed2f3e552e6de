"""audit events carry the request id and user agent; coin logos cached in the database

Security events are traced to a request (the id in the logs) and a client (IP and user agent). Coin
logos are fetched from the feed and served by CNOP, so pages make no third-party requests; they live
in the database so every instance serves the same ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import cnop_app.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch_op:
        batch_op.add_column(sa.Column("user_agent", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        batch_op.add_column(sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
        batch_op.create_index(batch_op.f("ix_audit_events_request_id"), ["request_id"], unique=False)
    op.create_table(
        "asset_logos",
        sa.Column("asset_id", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("source_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("fetched_at", cnop_app.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("asset_id"),
    )


def downgrade() -> None:
    op.drop_table("asset_logos")
    with op.batch_alter_table("audit_events") as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_request_id"))
        batch_op.drop_column("request_id")
        batch_op.drop_column("user_agent")
