"""The one interface every carrier adapter has: create a waybill for an order, cancel it, ask its
status; the account it works with; the HTTP call they share.

An adapter turns whatever the carrier answers into an :class:`EWaybill` or one of two refusals:
``carrier_refused`` (the carrier said no: bad signature, address out of range, quota exhausted,
with the carrier's own code and message) and ``carrier_unavailable`` (no answer we can trust:
timeout, refused connection, a 5xx, garbage). Only the second is worth retrying as it is; a retry
sends the same carrier order id, so the carrier never issues a second waybill for it.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scanedge.edge.domain.ewaybill import EWaybill
from scanedge.edge.domain.refusal import Refusal

MAX_ANSWER_BYTES = 1 << 20  # a carrier's answer is a few KiB; never hold more than this


class CarrierRefused(Refusal):
    """The carrier answered and refused: retrying the same request will not help."""

    def __init__(self, carrier: str, carrier_code: str, carrier_message: str) -> None:
        super().__init__("carrier_refused", f"{carrier} refused the waybill: {carrier_code} "
                         f"{carrier_message}".strip(), carrier=carrier,
                         carrier_code=carrier_code, carrier_message=carrier_message)


class CarrierUnavailable(Refusal):
    """No answer to trust (timeout, connection, 5xx, garbage): the request may or may not have
    reached the carrier; retry with the same carrier order id."""

    def __init__(self, carrier: str, why: str) -> None:
        super().__init__("carrier_unavailable", f"{carrier} did not answer usably ({why}); "
                         "try again: the retry cannot make a second waybill",
                         carrier=carrier, retry_after_s=5)


@dataclass(frozen=True)
class CarrierAccount:
    """One site's account with one carrier (hub setting ``hub_carrier_accounts``, never on a
    device). What each field is called at each carrier: docs/carriers.md."""

    carrier: str  # SF | ZTO | JT (edge/domain/carriers.json)
    url: str  # the API's base URL (the carrier's sandbox, production, or a simulator)
    key: str  # SF partnerID (顾客编码) | ZTO appKey | J&T apiAccount
    secret: str  # SF checkword (校验码) | ZTO appSecret | J&T privateKey
    customer_code: str = ""  # SF monthlyCard (月结卡号) | ZTO - | J&T customerCode
    customer_password: str = ""  # J&T: the customer's password (for the business digest)
    sender: Mapping[str, str] = field(default_factory=dict)  # name, phone, address
    service: str = ""  # product printed on the layout (e.g. 顺丰标快)
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Shipment:
    """What a waybill is asked for."""

    order_id: str  # ours
    carrier_order_id: str  # what the carrier keys it by (our order id, "-2" ... after a cancel)
    recipient: Mapping[str, str]  # name, phone, address
    items: tuple[str, ...] = ()  # goods names, for the carrier's cargo lines


class Carrier:
    """A carrier adapter: subclasses per carrier."""

    code = ""

    def __init__(self, account: CarrierAccount) -> None:
        self.account = account

    def create(self, shipment: Shipment) -> EWaybill:
        """A waybill for ``shipment``: the same one again for the same carrier order id."""
        raise NotImplementedError

    def cancel(self, number: str, carrier_order_id: str) -> None:
        """Cancel the waybill at the carrier (already cancelled: no error)."""
        raise NotImplementedError

    def status(self, number: str, carrier_order_id: str) -> str:
        """``live`` or ``cancelled``, as the carrier knows it."""
        raise NotImplementedError

    # -- shared plumbing -------------------------------------------------------------------------
    def refused(self, code: Any, message: Any) -> CarrierRefused:
        return CarrierRefused(self.code, str(code or ""), str(message or "")[:300])

    def unavailable(self, why: str) -> CarrierUnavailable:
        return CarrierUnavailable(self.code, why)

    def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Any:
        """POST ``body`` to the account's URL + ``path``; the JSON answer of a 2xx, else
        :class:`CarrierUnavailable` (the carriers answer refusals as 200 with an error code)."""
        parts = urlsplit(self.account.url.rstrip("/") + path)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.unavailable(f"the account's url {self.account.url!r} is not http(s)")
        conn = cls(parts.hostname, parts.port, timeout=self.account.timeout_s)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("POST", target or "/", body=body, headers=dict(headers))
            resp = conn.getresponse()
            raw = resp.read(MAX_ANSWER_BYTES + 1)
        except (OSError, http.client.HTTPException) as e:
            raise self.unavailable(f"{e.__class__.__name__}: {e}") from None
        finally:
            conn.close()
        if resp.status >= 300:
            raise self.unavailable(f"HTTP {resp.status}")
        if len(raw) > MAX_ANSWER_BYTES:
            raise self.unavailable(f"an answer longer than {MAX_ANSWER_BYTES} bytes")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise self.unavailable(f"not JSON: {raw[:60]!r}") from None


def party(doc: Any) -> dict[str, str]:
    """name / phone / address of a party from whatever mapping holds them (strings only)."""
    doc = doc if isinstance(doc, Mapping) else {}
    return {k: str(doc.get(k) or "") for k in ("name", "phone", "address")}


def compact(doc: Any) -> str:
    """JSON as the carriers sign it: the exact text sent, compact, UTF-8 kept."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
