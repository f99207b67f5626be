"""J&T Express China (极兔) through its open platform (docs/carriers.md, sources).

Each API is a form POST of ``bizContent`` (the JSON of the call) to ``<url>/api/order/<name>``
(``addOrder``, ``cancelOrder``, ``getOrders``) with the headers ``apiAccount``, ``timestamp``
(ms) and ``digest`` = Base64(MD5(bizContent + privateKey)). Inside ``bizContent`` the customer
signs too: ``customerCode`` and ``digest`` = Base64(MD5(customerCode + ciphertext + privateKey)),
where ciphertext = upper-case hex MD5(password + "jadada236t2"). The answer is
``{code, msg, data}``, ``code`` "1" for success.

Idempotency: J&T keys an order by ``txlogisticId`` (our carrier order id); the same id again
answers the bill already made.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any
from urllib.parse import urlencode

from scanedge.edge.domain.ewaybill import EWaybill
from scanedge.sync.carriers.base import Carrier, Shipment, compact, party

PASSWORD_SALT = "jadada236t2"  # J&T's published constant for the customer password's MD5


def _b64md5(text: str) -> str:
    return base64.b64encode(hashlib.md5(text.encode("utf-8")).digest()).decode("ascii")


def header_digest(biz_content: str, private_key: str) -> str:
    """The ``digest`` header: Base64(MD5(bizContent + privateKey))."""
    return _b64md5(biz_content + private_key)


def business_digest(customer_code: str, password: str, private_key: str) -> str:
    """``digest`` inside bizContent: Base64(MD5(customerCode + MD5hex(password + salt).upper()
    + privateKey))."""
    cipher = hashlib.md5((password + PASSWORD_SALT).encode("utf-8")).hexdigest().upper()
    return _b64md5(customer_code + cipher + private_key)


class JtCarrier(Carrier):
    code = "JT"

    def _call(self, api: str, doc: dict[str, Any]) -> Any:
        account = self.account
        biz = compact({"customerCode": account.customer_code,
                       "digest": business_digest(account.customer_code,
                                                 account.customer_password, account.secret),
                       **doc})
        answer = self.post(f"/api/order/{api}", urlencode({"bizContent": biz}).encode(), {
            "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
            "apiAccount": account.key, "digest": header_digest(biz, account.secret),
            "timestamp": str(int(time.time() * 1000))})
        if not isinstance(answer, dict):
            raise self.unavailable("the answer is not an object")
        if str(answer.get("code")) != "1":
            raise self.refused(answer.get("code"), answer.get("msg"))
        return answer.get("data")

    def create(self, shipment: Shipment) -> EWaybill:
        sender, recipient = party(self.account.sender), party(shipment.recipient)
        data = self._call("addOrder", {
            "txlogisticId": shipment.carrier_order_id, "expressType": "EZ", "orderType": "1",
            "serviceType": "01", "deliveryType": "06", "payType": "PP_PM",
            "sender": {"name": sender["name"], "mobile": sender["phone"],
                       "address": sender["address"]},
            "receiver": {"name": recipient["name"], "mobile": recipient["phone"],
                         "address": recipient["address"]},
            "goodsType": "bm000006", "weight": "0.5",
            "items": [{"itemName": name, "number": 1} for name in shipment.items],
        })
        if not isinstance(data, dict) or not isinstance(data.get("billCode"), str) \
                or not data["billCode"]:
            raise self.unavailable("the answer names no billCode")
        return EWaybill(
            carrier=self.code, number=data["billCode"], order_id=shipment.order_id,
            sort_code=str(data.get("sortingCode") or ""),
            package_center=str(data.get("lastCenterName") or ""),
            recipient=recipient, sender=sender, qr=None,
            service=self.account.service or "极兔标快",
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def cancel(self, number: str, carrier_order_id: str) -> None:
        self._call("cancelOrder", {"orderType": "1", "txlogisticId": carrier_order_id,
                                   "reason": "order cancelled"})

    def status(self, number: str, carrier_order_id: str) -> str:
        data = self._call("getOrders", {"command": 1, "serialNumber": [carrier_order_id]})
        rows = data if isinstance(data, list) else []
        states = {str(r.get("orderStatus")) for r in rows if isinstance(r, dict)}
        return "cancelled" if states == {"cancelled"} else "live"
