"""Prometheus metrics across worker processes (prometheus-client's multiprocess mode).

With Redis configured, Reflex's production server forks several workers, and a scrape of `/metrics`
reaches one of them. In multiprocess mode every worker writes its samples to files in
PROMETHEUS_MULTIPROC_DIR and `/metrics` adds them up, so counters are instance totals and gauges are
combined per their `multiprocess_mode`. The directory must be fresh for each instance start (stale
files would add a previous run's counts): `prepare_multiprocess_metrics` makes a new one unless the
operator set PROMETHEUS_MULTIPROC_DIR (then they must empty it before starting).
"""

from __future__ import annotations

import os
import tempfile

from prometheus_client import multiprocess

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_metrics() -> str:
    """Point PROMETHEUS_MULTIPROC_DIR at a new empty directory (inherited by the workers); idempotent."""
    current = os.environ.get(ENV, "").strip()
    if current:
        os.makedirs(current, exist_ok=True)
        return current
    path = tempfile.mkdtemp(prefix="cnop-metrics-")
    os.environ[ENV] = path
    return path


def multiprocess_dir() -> str | None:
    return os.environ.get(ENV, "").strip() or None


def forget_this_process() -> None:
    """A worker that exits: drop its live gauges (its counters keep counting towards the totals)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())
