"""``scanedge orders import``: orders as docs/interfaces.md's "Order JSON" (one order or a list) or from CSV.

CSV has one row per order line: ``order_id, sku, qty`` and optionally ``name, lot, expires,
unit_weight_kg, priority, tracking_number, carrier, lane, station, expected_weight_kg, gift_name,
gift_qty``; order-level columns are taken from an order's first row. Every rejected row or
order is reported with its reason; the valid ones are imported.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scanedge.edge.domain.orders import OrderError, parse_order
from scanedge.edge.store import Store
from scanedge.edge.store.orders import load_order, save_order

ORDER_COLUMNS = ("priority", "tracking_number", "carrier", "lane", "station")


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (where, why)

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged

    def summary(self) -> str:
        return (f"{self.imported} orders imported ({self.created} new, {self.updated} updated, "
                f"{self.unchanged} unchanged), {len(self.rejected)} rejected")


def read_documents(path: Path) -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
    """Order documents found in the file, each with where it came from; plus row rejections."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise OrderError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise OrderError(f"{path}: not UTF-8 text") from None
    if path.suffix.lower() == ".csv" or (text.lstrip()[:1] not in ("{", "[")):
        try:
            return _csv_documents(text)
        except csv.Error as e:  # a field over csv's limit, a broken quote ...
            raise OrderError(f"{path}: not readable as CSV: {e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise OrderError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    except RecursionError:
        raise OrderError(f"{path}: JSON nested too deeply") from None
    items = data if isinstance(data, list) else [data]
    return [(f"#{i + 1}", doc) for i, doc in enumerate(items)], []


def _csv_documents(text: str) -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or ())
    missing = {"order_id", "sku", "qty"} - columns
    if missing:
        raise OrderError(f"CSV header lacks column(s): {', '.join(sorted(missing))}")
    orders: dict[str, dict[str, Any]] = {}
    rejected: list[tuple[str, str]] = []
    for row_no, row in enumerate(reader, start=2):
        where = f"row {row_no}"
        order_id = (row.get("order_id") or "").strip()
        if not order_id:
            rejected.append((where, "order_id: required"))
            continue
        doc = orders.setdefault(order_id, {"order_id": order_id, "lines": [], "gifts": [],
                                           "_rows": []})
        doc["_rows"].append(row_no)
        for col in ORDER_COLUMNS:
            if row.get(col) and col not in doc:
                doc[col] = row[col].strip()
        line = {k: row[k].strip() for k in ("sku", "qty", "name", "lot", "expires")
                if row.get(k) not in (None, "")}
        # weights (docs/scale.md) are numbers in the order JSON
        if (row.get("unit_weight_kg") or "").strip():
            line["unit_weight_kg"] = _number(row["unit_weight_kg"])
        if (row.get("expected_weight_kg") or "").strip() and "expected_weight_kg" not in doc:
            doc["expected_weight_kg"] = _number(row["expected_weight_kg"])
        if line:
            doc["lines"].append(line)
        if row.get("gift_name"):
            doc["gifts"].append({"name": row["gift_name"].strip(),
                                 "qty": (row.get("gift_qty") or "1").strip()})
    docs = []
    for order_id, doc in orders.items():
        rows = doc.pop("_rows")
        docs.append((f"rows {rows[0]}-{rows[-1]} ({order_id})" if len(rows) > 1
                     else f"row {rows[0]} ({order_id})", doc))
    return docs, rejected


def _number(cell: str) -> float | str:
    """A cell as a number where it reads as one; else the text, which parse_order refuses by name."""
    try:
        return float(cell.strip())
    except ValueError:
        return cell.strip()


def import_orders(store: Store, documents: Iterable[tuple[str, Any]]) -> ImportReport:
    report = ImportReport()
    for where, doc in documents:
        try:
            order = parse_order(doc)
        except OrderError as e:
            report.rejected.append((where, str(e)))
            continue
        explicit_version = isinstance(doc, dict) and "version" in doc

        def save(db, order=order, explicit=explicit_version):
            current = load_order(db, order.order_id)
            if current is not None:
                if explicit and order.version < current.version:
                    raise OrderError(f"{order.order_id}: version {order.version} is older than "
                                     f"the stored {current.version}")
                if not explicit:  # a hand-made file: a change bumps the stored version
                    same = replace(order, version=current.version) == current
                    order = replace(order, version=current.version + (0 if same else 1))
            return save_order(db, order)

        try:
            result = store.write(save)
        except OrderError as e:
            report.rejected.append((where, str(e)))
            continue
        setattr(report, result, getattr(report, result) + 1)
    return report


def iter_report_lines(report: ImportReport) -> Iterator[str]:
    for where, why in report.rejected:
        yield f"rejected {where}: {why}"
    yield report.summary()
