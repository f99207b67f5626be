"""SF Express (顺丰) through 丰桥's unified gateway ``/std/service`` (docs/carriers.md, sources).

Every call is a form POST of ``partnerID`` (顾客编码), ``requestID`` (unique per call),
``serviceCode``, ``timestamp`` (seconds), ``msgDigest`` and ``msgData`` (the JSON of the
service). ``msgDigest`` = Base64(MD5(urlencode(msgData + timestamp + checkword))), urlencode in
UTF-8 with a space as ``+`` (as SF's own Python SDK does, ``urllib.parse.quote_plus``). The
answer is ``{apiResultCode, apiErrorMsg, apiResultData}``: ``A1000`` is "the gateway took it", and
``apiResultData`` (a JSON string) says ``success`` / ``errorCode`` / ``errorMsg`` / ``msgData``.

Idempotency: SF keys an order by our ``orderId``. A second create with the same ``orderId`` is
refused as ``8016`` (重复下单); the adapter then reads the order back
(``EXP_RECE_SEARCH_ORDER_RESP``), so a retry after a timeout returns the waybill that was made.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import quote_plus, urlencode

from scanedge.edge.domain.ewaybill import EWaybill
from scanedge.sync.carriers.base import Carrier, CarrierRefused, Shipment, compact, party

CREATE = "EXP_RECE_CREATE_ORDER"
SEARCH = "EXP_RECE_SEARCH_ORDER_RESP"
UPDATE = "EXP_RECE_UPDATE_ORDER"  # dealType 2: cancel
GATEWAY_OK = "A1000"
DUPLICATE_ORDER = "8016"  # 重复下单: this orderId already has an order
ALREADY_CANCELLED = "8037"  # 已消单


def msg_digest(msg_data: str, timestamp: str, checkword: str) -> str:
    """丰桥's ``msgDigest``: Base64(MD5(urlencode(msgData + timestamp + checkword)))."""
    text = quote_plus(msg_data + timestamp + checkword, encoding="utf-8")
    return base64.b64encode(hashlib.md5(text.encode("utf-8")).digest()).decode("ascii")


def request_form(partner_id: str, checkword: str, service_code: str, msg_data: str,
                 timestamp: str, request_id: str) -> dict[str, str]:
    """The form fields of one gateway call."""
    return {"partnerID": partner_id, "requestID": request_id, "serviceCode": service_code,
            "timestamp": timestamp, "msgDigest": msg_digest(msg_data, timestamp, checkword),
            "msgData": msg_data}


class SfCarrier(Carrier):
    code = "SF"

    def _call(self, service_code: str, msg: dict[str, Any]) -> dict[str, Any]:
        """One gateway call: the business answer's ``msgData`` when ``success``; else the
        refusal (gateway or business) with SF's code."""
        form = request_form(self.account.key, self.account.secret, service_code, compact(msg),
                            str(int(time.time())), secrets.token_hex(16))
        answer = self.post("", urlencode(form).encode(), {
            "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"})
        if not isinstance(answer, dict):
            raise self.unavailable("the gateway's answer is not an object")
        if answer.get("apiResultCode") != GATEWAY_OK:
            raise self.refused(answer.get("apiResultCode"), answer.get("apiErrorMsg"))
        try:
            result = json.loads(answer.get("apiResultData") or "")
        except (TypeError, ValueError, RecursionError):
            raise self.unavailable("apiResultData is not JSON") from None
        if not isinstance(result, dict):
            raise self.unavailable("apiResultData is not an object")
        if result.get("success") is not True:
            raise self.refused(result.get("errorCode"), result.get("errorMsg"))
        data = result.get("msgData")
        return data if isinstance(data, dict) else {}

    def create(self, shipment: Shipment) -> EWaybill:
        sender, recipient = party(self.account.sender), party(shipment.recipient)
        msg = {
            "language": "zh-CN", "orderId": shipment.carrier_order_id,
            "cargoDetails": [{"name": name} for name in (shipment.items or ("商品",))],
            "contactInfoList": [
                {"contactType": 1, "contact": sender["name"], "tel": sender["phone"],
                 "address": sender["address"]},
                {"contactType": 2, "contact": recipient["name"], "tel": recipient["phone"],
                 "address": recipient["address"]}],
            "monthlyCard": self.account.customer_code, "payMethod": 1, "expressTypeId": 1,
            "isReturnRoutelabel": 1,
        }
        try:
            data = self._call(CREATE, msg)
        except CarrierRefused as e:
            if e.details["carrier_code"] != DUPLICATE_ORDER:
                raise
            # made before (an answer lost to a timeout): read it back, never order again
            data = self._call(SEARCH, {"orderId": shipment.carrier_order_id, "searchType": 1,
                                       "language": "zh-CN"})
        return self._waybill(shipment, data, sender, recipient)

    def _waybill(self, shipment: Shipment, data: dict[str, Any], sender: dict[str, str],
                 recipient: dict[str, str]) -> EWaybill:
        numbers = [w.get("waybillNo") for w in data.get("waybillNoInfoList") or ()
                   if isinstance(w, dict) and w.get("waybillType", 1) == 1]
        if not numbers or not isinstance(numbers[0], str) or not numbers[0]:
            raise self.unavailable("the answer names no waybill number")
        labels = [r.get("routeLabelData") for r in data.get("routeLabelInfo") or ()
                  if isinstance(r, dict) and isinstance(r.get("routeLabelData"), dict)]
        route: dict[str, Any] = labels[0] if labels else {}
        return EWaybill(
            carrier=self.code, number=numbers[0], order_id=shipment.order_id,
            sort_code=str(route.get("destRouteLabel") or ""),
            package_center=str(route.get("codingMapping") or ""),
            recipient=recipient, sender=sender,
            qr=str(route["twoDimensionCode"]) if route.get("twoDimensionCode") else None,
            service=str(route.get("proName") or self.account.service or ""),
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def cancel(self, number: str, carrier_order_id: str) -> None:
        try:
            self._call(UPDATE, {"orderId": carrier_order_id, "dealType": 2,
                                "waybillNoInfoList": [{"waybillType": 1, "waybillNo": number}]})
        except CarrierRefused as e:
            if e.details["carrier_code"] != ALREADY_CANCELLED:
                raise

    def status(self, number: str, carrier_order_id: str) -> str:
        data = self._call(SEARCH, {"orderId": carrier_order_id, "searchType": 1,
                                   "language": "zh-CN"})
        return "cancelled" if data.get("orderStatus") == "cancelled" else "live"
