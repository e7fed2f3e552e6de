"""Bodies of /health (the Prometheus text of /metrics has no model)."""

from __future__ import annotations

from typing import Any, Literal

from cnop_app.api.schemas.common import ApiModel


class HealthOut(ApiModel):
    """The worst component status, and each component's report (`status` plus its own figures).

    `components` only for callers with the metrics token (CNOP_METRICS_TOKEN); anonymous callers get
    the status alone.
    """

    status: Literal["ok", "degraded", "down"]
    components: dict[str, dict[str, Any]] | None = None

    @classmethod
    def of(cls, report: dict[str, Any]) -> HealthOut:
        return cls.model_validate(report)
