"""Container health check: `python -m service.healthcheck` exits 0 when liveness answers 2xx.

Standard library only, because the slim image has no curl and the check must not
depend on anything the app could break.
"""
from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 3.0


def main() -> int:
    port = os.environ.get("PORT", "").strip() or "8080"
    path = os.environ.get("HEALTH_CHECK_PATH", "").strip() or "/healthz"
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (OSError, ValueError) as error:
        print(f"healthcheck: {url}: {error}", file=sys.stderr)
        return 1
    if 200 <= status < 300:
        return 0
    print(f"healthcheck: {url}: HTTP {status}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
