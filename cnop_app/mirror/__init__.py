"""Operator commands for the DynamoDB mirror: `python -m cnop_app.mirror create-tables|backfill|verify|drain`."""
