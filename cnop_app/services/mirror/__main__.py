"""`python -m cnop_app.services.mirror create-tables|backfill|verify|drain` (same as `python -m cnop_app.mirror`)."""

from cnop_app.services.mirror.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
