"""Operator commands: `python -m cnop_app.manage migrate|seed|verify-ledger`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from alembic import command
from alembic.config import Config

from cnop_app.config import get_settings
from cnop_app.observability.logging import configure_logging, get_logger
from cnop_app.services import auth, market
from cnop_app.services.admin.integrity import verify_ledger

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


def verify(out: TextIO = sys.stdout) -> int:
    """Rebuild every balance and holding from the ledger, the fills and the open orders, print every
    difference and a summary. Returns the exit status: 1 when anything differs."""
    report = verify_ledger()
    for line in report.lines():
        print(line, file=out)
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    parser = argparse.ArgumentParser(prog="cnop_app.manage")
    parser.add_argument("command", choices=["migrate", "seed", "verify-ledger"])
    args = parser.parse_args(argv)
    if args.command == "migrate":
        migrate()
    elif args.command == "seed":
        seed()
    else:
        return verify()
    return 0


if __name__ == "__main__":
    sys.exit(main())
