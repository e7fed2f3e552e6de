"""Container health check: exit 0 when GET /health on this instance answers 200 (stdlib only).

Run by the image's HEALTHCHECK in exec form, so it reads CNOP_PORT itself. 503 (a component down, or the
instance draining after SIGTERM) and no answer within the timeout both count as unhealthy.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 4.0


def check(port: str) -> int:
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(check(os.environ.get("CNOP_PORT") or "3000"))
