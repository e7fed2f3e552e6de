"""Prometheus metrics. Route labels are templates (bounded), never raw paths."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from cnop_app.observability.multiprocess import multiprocess_dir

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "cnop_http_requests_total",
    "HTTP requests by method, route template and status class",
    ["method", "route", "status"],
    registry=REGISTRY,
)
WRITE_BATCH = Histogram(
    "cnop_write_batch_size",
    "API writes committed together in one transaction (group commit)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "cnop_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
AUTH_EVENTS = Counter(
    "cnop_auth_events_total",
    "Auth events other than login attempts (registered, logout, password_changed)",
    ["event"],
    registry=REGISTRY,
)
LOGINS = Counter(
    "cnop_logins_total",
    "Login attempts (UI and API) by outcome: success, bad_credentials, throttled, disabled, malformed",
    ["outcome"],
    registry=REGISTRY,
)
CASH_MOVES = Counter(
    "cnop_cash_moves_total", "Committed deposits and withdrawals (UI and API)", ["kind"], registry=REGISTRY
)
ORDERS = Counter(
    "cnop_orders_total",
    "Orders placed in the UI or the API by type and outcome (rejected: refused at placement)",
    ["order_type", "status"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "cnop_rate_limited_total",
    "Requests refused with 429 by the API rate limits, by route group (auth, write, read)",
    ["group"],
    registry=REGISTRY,
)
BUILD_INFO = Gauge(
    "cnop_build_info",
    "Always 1; labels describe the running build",
    ["version"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
BUILD_INFO.labels(version="0.1.0").set(1)


def render() -> tuple[bytes, str]:
    """The exposition of this process, or of every worker of this instance in multiprocess mode."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    combined = CollectorRegistry()
    MultiProcessCollector(combined, path=directory)
    return generate_latest(combined), CONTENT_TYPE_LATEST
