"""A carrier's electronic waybill (电子面单) as the device holds it: the carrier's number, its sorting
code (三段码 / 大头笔), 集包地, the two parties and the 2D code's payload (pure data; the hub's
carrier adapters in sync/carriers/ make one, the printers render it, the device stores it as JSON).

The JSON form is the contract between the hub, the device and the printers (docs/carriers.md):
``to_json`` / ``from_json`` round-trip, and ``from_json`` refuses a document it cannot trust with
``bad_field`` naming the field, never a KeyError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from scanedge.edge.domain.refusal import Refusal

PARTY_FIELDS = ("name", "phone", "address")


def _party(doc: Any, field: str) -> Mapping[str, str]:
    if not isinstance(doc, Mapping):
        raise Refusal("bad_field", f"ewaybill {field} must be an object", field=field)
    out: dict[str, str] = {}
    for key, value in doc.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise Refusal("bad_field", f"ewaybill {field} holds only strings", field=field)
        out[key] = value
    return MappingProxyType(out)


def _text(doc: Mapping[str, Any], field: str, *, required: bool = False) -> str:
    value = doc.get(field, "")
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise Refusal("bad_field", f"ewaybill {field} must be a{' non-empty' if required else ''}"
                      " string", field=field)
    return value


@dataclass(frozen=True)
class EWaybill:
    carrier: str  # the code in edge/domain/carriers.json: "SF", "ZTO", "JT"
    number: str  # the carrier's waybill number (运单号)
    order_id: str
    sort_code: str  # 三段码 / 大头笔, e.g. "755WF-010-A1"; "" if none
    package_center: str  # 集包地 / 集包地编码; "" if none
    recipient: Mapping[str, str]  # name, phone, address (full; the layout masks the phone)
    sender: Mapping[str, str]  # name, phone, address
    qr: str | None  # the 2D code's payload where the carrier's layout has one
    service: str = ""  # product/service name printed on the layout (e.g. 顺丰标快)
    created_at: str = ""  # ISO time the carrier issued it

    def to_json(self) -> dict[str, Any]:
        return {
            "carrier": self.carrier, "number": self.number, "order_id": self.order_id,
            "sort_code": self.sort_code, "package_center": self.package_center,
            "recipient": dict(self.recipient), "sender": dict(self.sender), "qr": self.qr,
            "service": self.service, "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, doc: Any) -> EWaybill:
        if not isinstance(doc, Mapping):
            raise Refusal("bad_field", "an ewaybill must be a JSON object", field="ewaybill")
        qr = doc.get("qr")
        if qr is not None and not isinstance(qr, str):
            raise Refusal("bad_field", "ewaybill qr must be a string or null", field="qr")
        return cls(
            carrier=_text(doc, "carrier", required=True),
            number=_text(doc, "number", required=True),
            order_id=_text(doc, "order_id", required=True),
            sort_code=_text(doc, "sort_code"),
            package_center=_text(doc, "package_center"),
            recipient=_party(doc.get("recipient", {}), "recipient"),
            sender=_party(doc.get("sender", {}), "sender"),
            qr=qr or None,
            service=_text(doc, "service"),
            created_at=_text(doc, "created_at"),
        )
