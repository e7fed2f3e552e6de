"""Alembic environment: the database URL comes from CNOP settings, the schema from cnop_app.models."""

from alembic import context
from sqlmodel import SQLModel

import cnop_app.models  # noqa: F401  (registers every table on SQLModel.metadata)
from cnop_app.config import get_settings
from cnop_app.db import null_pool_engine

target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(url=get_settings().database_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = context.config.attributes.get("database_url") or get_settings().database_url
    engine = null_pool_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=url.startswith("sqlite"),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
