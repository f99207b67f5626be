"""Query rows of the hub's storage as dicts (SQLite and PostgreSQL rows alike)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def rows_as_dicts(rows: Sequence[Any], keys: Sequence[str], *,
                  json_keys: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Query rows as dicts, the JSON text columns parsed."""
    out = []
    for r in rows:
        item = dict(zip(keys, r, strict=True))
        for key in json_keys:
            item[key] = json.loads(item[key])
        out.append(item)
    return out
