"""Prometheus metrics of the mirror (the gauges read the outbox on scrape: see `health`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from cnop_app.observability.metrics import REGISTRY

MIRRORED = Counter(
    "cnop_mirror_items_mirrored_total",
    "Outbox rows written to DynamoDB, by table",
    ["table"],
    registry=REGISTRY,
)
STALE = Counter(
    "cnop_mirror_items_stale_total",
    "Outbox rows skipped because DynamoDB already held a newer version, by table",
    ["table"],
    registry=REGISTRY,
)
FAILED = Counter(
    "cnop_mirror_items_failed_total",
    "Failed DynamoDB writes of outbox rows (retried with back-off), by table",
    ["table"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "cnop_mirror_outbox_depth",
    "Outbox rows not yet mirrored to DynamoDB",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST_AGE = Gauge(
    "cnop_mirror_outbox_oldest_age_seconds",
    "Age of the oldest outbox row not yet mirrored",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
