"""The e-waybill as data (edge/domain/ewaybill.py): its JSON form round-trips, a bad one is refused."""

from __future__ import annotations

import pytest

from scanedge.edge.domain.ewaybill import EWaybill
from scanedge.edge.domain.refusal import Refusal

EWB = EWaybill(carrier="SF", number="SF1385628716739", order_id="SO-1", sort_code="755WF-010-A1",
               package_center="755WF", recipient={"name": "李四", "phone": "13800000000",
                                                  "address": "广东省深圳市南山区科技园1号"},
               sender={"name": "仓库", "phone": "0755-1234567", "address": "深圳市宝安区1号"},
               qr="MMM={'k1':'755WF'}", service="顺丰标快", created_at="2026-01-01T00:00:00Z")


def test_an_ewaybill_round_trips_through_its_json_form():
    doc = EWB.to_json()
    assert EWaybill.from_json(doc) == EWB
    assert doc["recipient"]["name"] == "李四" and doc["qr"].startswith("MMM=")


def test_the_optional_fields_default_to_empty_and_the_qr_to_none():
    ewb = EWaybill.from_json({"carrier": "ZTO", "number": "73100000000001", "order_id": "SO-2"})
    assert (ewb.sort_code, ewb.package_center, ewb.qr, ewb.service) == ("", "", None, "")
    assert dict(ewb.recipient) == {} and dict(ewb.sender) == {}


def test_its_parties_cannot_be_changed_after_it_is_made():
    ewb = EWaybill.from_json(EWB.to_json())
    with pytest.raises(TypeError):
        ewb.recipient["name"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(("doc", "field"), [
    ([], "ewaybill"),
    ({"number": "SF1", "order_id": "SO-1"}, "carrier"),
    ({"carrier": "SF", "number": " ", "order_id": "SO-1"}, "number"),
    ({"carrier": "SF", "number": "SF1"}, "order_id"),
    ({"carrier": "SF", "number": "SF1", "order_id": "SO-1", "recipient": "x"}, "recipient"),
    ({"carrier": "SF", "number": "SF1", "order_id": "SO-1", "sender": {"name": 3}}, "sender"),
    ({"carrier": "SF", "number": "SF1", "order_id": "SO-1", "qr": 5}, "qr"),
    ({"carrier": "SF", "number": "SF1", "order_id": "SO-1", "service": 5}, "service"),
])
def test_a_document_it_cannot_trust_is_refused_naming_the_field(doc, field):
    with pytest.raises(Refusal) as e:
        EWaybill.from_json(doc)
    assert e.value.code == "bad_field" and e.value.details["field"] == field
