"""DynamoDB mirror: drains the transactional outbox into DynamoDB tables in the reference layout.

SQL stays the source of truth. Every outbox row becomes a PutItem (or DeleteItem) carrying the row
id as `mirror_seq`, written only over an older version, so replays and out-of-order duplicates never
regress an item.

Modules: `layout` (tables and item shapes), `client` (boto3 client, table creation), `writer` (one
conditional write, batches), `drainer` (the outbox drainer, its lease and back-off), `process` (the
drainer's process beside each app worker), `tools` (backfill, verify), `health` (health check and
outbox gauges), `metrics`, `cli` (`python -m cnop_app.mirror`).
Importing the package registers the `dynamodb_mirror` health check.
"""

from __future__ import annotations

from cnop_app.services.mirror.client import WORKERS, MirrorDisabled, create_tables, enabled, get_client
from cnop_app.services.mirror.drainer import (
    BATCH_SIZE,
    DrainStats,
    drain_batch,
    drain_once,
    prune,
    reset_client,
)
from cnop_app.services.mirror.health import health_check
from cnop_app.services.mirror.layout import TABLES, build_item, item_key, table_name
from cnop_app.services.mirror.process import mirror_lifespan
from cnop_app.services.mirror.tools import MirrorError, VerifyResult, backfill, verify
from cnop_app.services.mirror.writer import apply_row

__all__ = [
    "BATCH_SIZE",
    "TABLES",
    "WORKERS",
    "DrainStats",
    "MirrorDisabled",
    "MirrorError",
    "VerifyResult",
    "apply_row",
    "backfill",
    "build_item",
    "create_tables",
    "drain_batch",
    "drain_once",
    "enabled",
    "get_client",
    "health_check",
    "item_key",
    "mirror_lifespan",
    "prune",
    "reset_client",
    "table_name",
    "verify",
]
