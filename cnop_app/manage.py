"""Operator commands: `python -m cnop_app.manage migrate|seed`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from cnop_app.config import get_settings
from cnop_app.observability.logging import configure_logging, get_logger
from cnop_app.services import auth, market

ROOT = Path(__file__).resolve().parent.parent


def migrate(database_url: str | None = None) -> None:
    """Bring the schema to the newest alembic revision."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    if database_url:
        config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


def seed() -> None:
    """Idempotent start-up data: the bootstrap admin (when configured)."""
    log = get_logger("seed")
    admin = auth.bootstrap_admin()
    if admin:
        log.info("admin account ready", extra={"username": admin})
    market.seed_from_snapshot()


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    parser = argparse.ArgumentParser(prog="cnop_app.manage")
    parser.add_argument("command", choices=["migrate", "seed"])
    args = parser.parse_args(argv)
    if args.command == "migrate":
        migrate()
    else:
        seed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
