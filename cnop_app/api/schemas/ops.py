"""Bodies of /health (the Prometheus text of /metrics has no model)."""

from __future__ import annotations

from typing import Any, Literal

from cnop_app.api.schemas.common import ApiModel


class HealthOut(ApiModel):
    """The worst component status, and each component's report (`status` plus its own figures)."""

    status: Literal["ok", "degraded", "down"]
    components: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, report: dict[str, Any]) -> HealthOut:
        return cls.model_validate(report)
