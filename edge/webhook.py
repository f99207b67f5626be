"""POSTing a JSON notification to a webhook (``notify_url``): the device's P0 alerts
(edge/notify.py) and the hub's tripped fuses (sync/hub/webhooks.py). Plain HTTP, no services."""

from __future__ import annotations

import urllib.error
import urllib.request

BACKOFF_CAP_S = 300.0


def post_json(url: str, payload: str, timeout_s: float) -> str | None:
    """POST one JSON document; None when the URL answered 2xx, else what went wrong."""
    req = urllib.request.Request(url, data=payload.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            return None if 200 <= r.status < 300 else f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}"
    except (OSError, ValueError) as e:
        return f"{e.__class__.__name__}: {e}"


def backoff_s(attempts: int, base_s: float) -> float:
    """The wait before the next try of a webhook that failed ``attempts`` times (capped)."""
    return min(BACKOFF_CAP_S, base_s * 2 ** attempts)
