"""The alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import cnop_app.models  # noqa: F401  (registers every table)
from cnop_app.db import write_engine


def test_migrated_schema_matches_the_models(any_db: str) -> None:
    with write_engine().connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []
