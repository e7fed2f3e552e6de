"""UI-state fixtures: a clean environment with empty market caches, and states as a browser would see them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cnop_app.services import market
from cnop_app.state.market import snapshot


@pytest.fixture
def ui_env(cnop_env: Path) -> Iterator[Path]:
    """`cnop_env` with the process-wide price cache and market rows forgotten before and after (two test
    databases can have the same market version, so a cached row could come from another test)."""
    market.clear_cache()
    snapshot.clear()
    yield cnop_env
    market.clear_cache()
    snapshot.clear()
