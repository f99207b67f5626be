"""The hub's e-waybills (电子面单): it asks the carrier for a device, keeps one live waybill per
order, cancels it when the order is frozen or cancelled, and puts the number on the order.

Why here and not on the device: the carrier accounts' secrets stay on the hub, and one table per
fleet is what keeps "one order, one live waybill" true across devices and retries.

Idempotency by order: an attempt is a row ``(order_id, attempt)`` written *before* the carrier is
called, with the carrier order id it sends (``SO-1``, then ``SO-1-2`` after a cancel). A call that
times out leaves the row ``requesting``; the retry sends the same carrier order id, and the
carriers answer the waybill already made for it (sync/carriers/). States: ``requesting`` ->
``live`` | ``failed`` (the carrier refused); ``live`` -> ``cancelling`` -> ``cancelled``.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from scanedge.edge.domain.ewaybill import EWaybill
from scanedge.edge.domain.interception_report import iso
from scanedge.edge.domain.orders import Order
from scanedge.edge.domain.refusal import Refusal
from scanedge.sync.carriers.accounts import CarrierAccounts
from scanedge.sync.carriers.base import CarrierRefused, Shipment
from scanedge.sync.carriers.registry import adapter_for

if TYPE_CHECKING:
    from scanedge.sync.hub.storage import HubStorage, Tx

log = logging.getLogger(__name__)
EWAYBILL_LOCK = 735_004  # PostgreSQL advisory lock: one attempt row at a time per hub
RETRY_CANCEL_S = 30.0  # a cancel the carrier did not answer is tried again this much later
LIVE = ("requesting", "live", "cancelling")  # a waybill that exists, or may, at the carrier
COLUMNS = ("order_id", "attempt", "carrier", "carrier_order_id", "site", "state", "number",
           "ewaybill", "error", "device_id", "created_at", "updated_at")


def schema(tx: Tx, dialect: str) -> None:
    """Hub migration 7 (issue 19)."""
    tx.execute("""CREATE TABLE IF NOT EXISTS ewaybills (
        order_id TEXT NOT NULL, attempt INTEGER NOT NULL, carrier TEXT NOT NULL,
        carrier_order_id TEXT NOT NULL, site TEXT NOT NULL, state TEXT NOT NULL, number TEXT,
        ewaybill TEXT, error TEXT, device_id TEXT, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, PRIMARY KEY (order_id, attempt))""")
    tx.execute("CREATE INDEX IF NOT EXISTS ewaybills_state ON ewaybills (state, updated_at)")
    tx.execute("CREATE INDEX IF NOT EXISTS ewaybills_number ON ewaybills (number)")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def _rows(rows: list[Any]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        row = dict(zip(COLUMNS, r, strict=True))
        row["ewaybill"] = json.loads(row["ewaybill"]) if row["ewaybill"] else None
        out.append(row)
    return out


def _latest(tx: Tx, order_id: str) -> dict[str, Any] | None:
    found = _rows(tx.all(f"SELECT {', '.join(COLUMNS)} FROM ewaybills WHERE order_id = ?"
                         " ORDER BY attempt DESC LIMIT 1", [order_id]))
    return found[0] if found else None


def live_waybill(tx: Tx, order_id: str) -> EWaybill | None:
    """The order's live waybill (its number is the order's tracking number)."""
    row = _latest(tx, order_id)
    return EWaybill.from_json(row["ewaybill"]) if row and row["state"] == "live" else None


def overlay(tx: Tx, order: Order) -> Order:
    """``order`` as the hub keeps it: a live waybill's number and carrier win over what the
    order system sends (that is what is on the parcel)."""
    ewb = live_waybill(tx, order.order_id)
    if ewb is None:
        return order
    return replace(order, tracking_number=ewb.number, carrier=ewb.carrier)


def frozen(tx: Tx, order_id: str) -> bool:
    row = tx.one("SELECT kind FROM changes WHERE order_id = ? AND kind IN ('freeze', 'unfreeze')"
                 " ORDER BY change_seq DESC LIMIT 1", [order_id])
    return bool(row and row[0] == "freeze")


def for_order(storage: HubStorage, order_id: str) -> list[dict[str, Any]]:
    """Every attempt for the order, newest first (``GET /orders/{id}``)."""
    with storage.transaction() as tx:
        rows = tx.all(f"SELECT {', '.join(COLUMNS)} FROM ewaybills WHERE order_id = ?"
                      " ORDER BY attempt DESC", [order_id])
    return _rows(rows)


def request(storage: HubStorage, accounts: CarrierAccounts, order_id: str, site: str,
            carrier: str | None, device_id: str) -> tuple[EWaybill, bool]:
    """The order's live waybill, asked of the carrier if it has none: (waybill, replayed)."""
    with storage.transaction() as tx:
        storage.lock(tx, EWAYBILL_LOCK)
        found = tx.one("SELECT doc, site FROM orders WHERE order_id = ?", [order_id])
        if found is None or found[1] != site:
            raise Refusal("unknown_order", f"order {order_id}: not at this device's site")
        if frozen(tx, order_id):
            raise Refusal("frozen", f"order {order_id} is frozen at the hub: no waybill")
        row = _latest(tx, order_id)
        if row is not None and row["state"] == "live":
            return EWaybill.from_json(row["ewaybill"]), True
        if row is not None and row["state"] == "cancelling":
            raise Refusal("bad_state", f"order {order_id}: its waybill {row['number']} is being "
                          "cancelled at the carrier; ask again when that is done")
        if row is not None and row["state"] == "requesting":
            carrier = row["carrier"]  # finish the attempt that may exist at its carrier
        account = accounts.account(site, carrier)
        if account is None:
            known = ", ".join(accounts.carriers(site)) or "none"
            raise Refusal("no_carrier_account", f"site {site} has no account with "
                          f"{carrier or 'a default carrier'} at the hub (configured: {known}; "
                          "docs/carriers.md)", carriers=accounts.carriers(site))
        if row is not None and row["state"] == "requesting":
            attempt, carrier_order_id = row["attempt"], row["carrier_order_id"]
        else:
            attempt = (row["attempt"] + 1) if row else 1
            carrier_order_id = order_id if attempt == 1 else f"{order_id}-{attempt}"
            now = now_iso()
            tx.execute("INSERT INTO ewaybills (order_id, attempt, carrier, carrier_order_id, site,"
                       " state, device_id, created_at, updated_at)"
                       " VALUES (?, ?, ?, ?, ?, 'requesting', ?, ?, ?)",
                       [order_id, attempt, account.carrier, carrier_order_id, site, device_id,
                        now, now])
    doc = json.loads(found[0])
    shipment = Shipment(order_id, carrier_order_id, doc.get("recipient") or {},
                        tuple(str(line.get("name") or line.get("sku")) for line in
                              doc.get("lines") or () if isinstance(line, dict))[:20])
    try:
        ewb = adapter_for(account).create(shipment)
    except CarrierRefused as e:
        _set(storage, order_id, attempt, "failed", error=e.message)
        raise
    state, stored = _go_live(storage, order_id, attempt, ewb)
    if state == "live":
        # the number is the order's tracking number now: devices learn it with the order
        storage.upsert_order_doc(order_id)
        return ewb, False
    if state == "replayed" and stored is not None:
        return stored, True
    # frozen or cancelled while the carrier answered: that waybill must not ship
    row = for_order(storage, order_id)[0]
    cancel_row(storage, accounts, row)
    raise Refusal("frozen", f"order {order_id} was frozen while its waybill was made: the "
                  f"waybill {ewb.number} is cancelled at {ewb.carrier}")


def _go_live(storage: HubStorage, order_id: str, attempt: int,
             ewb: EWaybill) -> tuple[str, EWaybill | None]:
    """Record the waybill: ``live``; ``replayed`` with the waybill another request recorded
    first (the same one: the same carrier order id); ``cancel`` when the order was frozen or the
    attempt cancelled meanwhile (the row keeps the number, to cancel it)."""
    with storage.transaction() as tx:
        storage.lock(tx, EWAYBILL_LOCK)
        row = tx.one("SELECT state, ewaybill FROM ewaybills WHERE order_id = ? AND attempt = ?",
                     [order_id, attempt])
        if row is not None and row[0] == "live":
            return "replayed", EWaybill.from_json(json.loads(row[1]))
        state = "cancelling" if (row is None or row[0] != "requesting"
                                 or frozen(tx, order_id)) else "live"
        tx.execute("UPDATE ewaybills SET state = ?, number = ?, ewaybill = ?, error = NULL,"
                   " updated_at = ? WHERE order_id = ? AND attempt = ?",
                   [state, ewb.number, json.dumps(ewb.to_json(), ensure_ascii=False), now_iso(),
                    order_id, attempt])
    return ("live" if state == "live" else "cancel"), None


def _set(storage: HubStorage, order_id: str, attempt: int, state: str, *,
         error: str | None = None) -> None:
    with storage.transaction() as tx:
        tx.execute("UPDATE ewaybills SET state = ?, error = ?, updated_at = ?"
                   " WHERE order_id = ? AND attempt = ?",
                   [state, error, now_iso(), order_id, attempt])


def mark_cancelling(storage: HubStorage, order_id: str) -> dict[str, Any] | None:
    """The order's waybill is to be cancelled (a freeze or cancel at the hub): recorded first,
    in its own commit, so a crash before the carrier answers still leaves it to
    :func:`retry_cancels`. Returns the row to cancel (None: it has no waybill)."""
    with storage.transaction() as tx:
        storage.lock(tx, EWAYBILL_LOCK)
        row = _latest(tx, order_id)
        if row is None or row["state"] not in LIVE:
            return None
        # a "requesting" one may exist at the carrier: it is cancelled by its carrier order id
        tx.execute("UPDATE ewaybills SET state = 'cancelling', updated_at = ?"
                   " WHERE order_id = ? AND attempt = ?", [now_iso(), order_id, row["attempt"]])
    return {**row, "state": "cancelling"}


def cancel_for_order(storage: HubStorage, accounts: CarrierAccounts, order_id: str) -> str | None:
    """Cancel the order's waybill at the carrier now. Returns the state it ends in (None: it had
    none); a carrier that does not answer leaves it ``cancelling`` for :func:`retry_cancels`."""
    row = mark_cancelling(storage, order_id)
    return None if row is None else cancel_row(storage, accounts, row)


def cancel_row(storage: HubStorage, accounts: CarrierAccounts, row: dict[str, Any]) -> str:
    account = accounts.account(row["site"], row["carrier"])
    if account is None:
        _set(storage, row["order_id"], row["attempt"], "cancelling",
             error=f"no {row['carrier']} account for site {row['site']}")
        return "cancelling"
    try:
        adapter_for(account).cancel(row["number"] or "", row["carrier_order_id"])
    except Refusal as e:
        if isinstance(e, CarrierRefused) and row["number"] is None:
            # never made at the carrier (the request failed before it): nothing to cancel
            _set(storage, row["order_id"], row["attempt"], "cancelled", error=e.message)
            return "cancelled"
        log.warning("cancelling waybill %s of order %s at %s failed: %s", row["number"],
                    row["order_id"], row["carrier"], e.message)
        _set(storage, row["order_id"], row["attempt"], "cancelling", error=e.message)
        return "cancelling"
    _set(storage, row["order_id"], row["attempt"], "cancelled")
    return "cancelled"


def retry_cancels(storage: HubStorage, accounts: CarrierAccounts, *,
                  older_than_s: float = RETRY_CANCEL_S) -> int:
    """Try again the cancels a carrier did not answer (last tried ``older_than_s`` ago or
    more); returns how many are done now."""
    since = iso(datetime.now(UTC) - timedelta(seconds=older_than_s))
    with storage.transaction() as tx:
        rows = _rows(tx.all(f"SELECT {', '.join(COLUMNS)} FROM ewaybills WHERE state ="
                            " 'cancelling' AND updated_at <= ? ORDER BY updated_at LIMIT 50",
                            [since]))
    return sum(cancel_row(storage, accounts, row) == "cancelled" for row in rows)


_retrying = threading.Lock()


def retry_cancels_in_background(storage: HubStorage, accounts: CarrierAccounts) -> None:
    """:func:`retry_cancels` in a thread of its own, one at a time: a carrier that hangs for its
    timeout holds up nothing else (the hub's sweep calls this every round)."""
    if not _retrying.acquire(blocking=False):
        return

    def run() -> None:
        try:
            retry_cancels(storage, accounts)
        except Exception:  # the database or a carrier away: the next round tries again
            log.warning("retrying e-waybill cancels failed", exc_info=True)
        finally:
            _retrying.release()

    threading.Thread(target=run, name="ewaybill-cancels", daemon=True).start()
