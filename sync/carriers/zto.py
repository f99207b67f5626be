"""ZTO Express (中通) through its open platform's JSON gateway (docs/carriers.md, sources).

Each API is a POST of a JSON body to ``<url>/<api name>`` (``zto.open.createOrder``,
``zto.open.cancelPreOrder``, ``zto.open.getOrderInfo``) with the headers ``x-appKey`` and
``x-dataDigest`` = Base64(MD5(body + appSecret)): the body exactly as sent, UTF-8. (The older
form-encoded gateway signed ``data`` the same way and called it ``data_digest``, with
``x-companyid`` for the key.) The answer is ``{status, statusCode, message, result}``.

Idempotency: ZTO keys a pre-order by ``partnerOrderCode`` (our carrier order id); asking again
with the same code answers the bill already made.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

from scanedge.edge.domain.ewaybill import EWaybill
from scanedge.sync.carriers.base import Carrier, Shipment, compact, party

CREATE = "zto.open.createOrder"
CANCEL = "zto.open.cancelPreOrder"
QUERY = "zto.open.getOrderInfo"


def data_digest(body: str, app_secret: str) -> str:
    """ZTO's ``x-dataDigest``: Base64(MD5(body + appSecret))."""
    return base64.b64encode(hashlib.md5((body + app_secret).encode("utf-8")).digest()).decode()


class ZtoCarrier(Carrier):
    code = "ZTO"

    def _call(self, api: str, doc: dict[str, Any]) -> Any:
        body = compact(doc)
        answer = self.post(f"/{api}", body.encode("utf-8"), {
            "Content-Type": "application/json;charset=UTF-8", "x-appKey": self.account.key,
            "x-dataDigest": data_digest(body, self.account.secret)})
        if not isinstance(answer, dict):
            raise self.unavailable("the answer is not an object")
        if answer.get("status") is not True:
            raise self.refused(answer.get("statusCode"), answer.get("message"))
        return answer.get("result")

    def create(self, shipment: Shipment) -> EWaybill:
        sender, recipient = party(self.account.sender), party(shipment.recipient)
        result = self._call(CREATE, {
            "partnerType": "2", "orderType": "1", "partnerOrderCode": shipment.carrier_order_id,
            "accountInfo": {"accountId": self.account.customer_code, "type": 1},
            "senderInfo": {"senderName": sender["name"], "senderMobile": sender["phone"],
                           "senderAddress": sender["address"]},
            "receiveInfo": {"receiverName": recipient["name"],
                            "receiverMobile": recipient["phone"],
                            "receiverAddress": recipient["address"]},
            "orderItems": [{"name": name} for name in shipment.items],
        })
        if not isinstance(result, dict) or not isinstance(result.get("billCode"), str) \
                or not result["billCode"]:
            raise self.unavailable("the answer names no billCode")
        mark = result.get("bigMarkInfo") if isinstance(result.get("bigMarkInfo"), dict) else {}
        return EWaybill(
            carrier=self.code, number=result["billCode"], order_id=shipment.order_id,
            sort_code=str(mark.get("mark") or ""), package_center=str(mark.get("bagAddr") or ""),
            recipient=recipient, sender=sender, qr=None,
            service=self.account.service or "中通标快",
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def cancel(self, number: str, carrier_order_id: str) -> None:
        self._call(CANCEL, {"cancelType": "1", "billCode": number,
                            "partnerOrderCode": carrier_order_id})

    def status(self, number: str, carrier_order_id: str) -> str:
        result = self._call(QUERY, {"type": 1, "partnerOrderCode": carrier_order_id})
        rows = result if isinstance(result, list) else []
        states = {str(r.get("orderStatus")) for r in rows if isinstance(r, dict)}
        return "cancelled" if states == {"-1"} else "live"
