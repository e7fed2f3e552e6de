"""`python -m cnop_app.mirror create-tables|backfill|verify|drain`: see cnop_app.services.mirror.cli."""

from cnop_app.services.mirror.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
