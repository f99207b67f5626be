"""The carrier adapters (sync/carriers/) against their simulators on 127.0.0.1: signatures, the
waybill they make, every error path, idempotent retries. In-process servers: fast."""

from __future__ import annotations

import base64
import hashlib

import pytest

from scanedge.edge.domain.carriers import identify
from scanedge.edge.domain.refusal import Refusal
from scanedge.sync.carriers import jt, sf, zto
from scanedge.sync.carriers.base import CarrierAccount, Shipment
from scanedge.sync.carriers.registry import adapter_for
from scanedge.sync.carriers.sim import CarrierSimulator

SENDER = {"name": "杭州仓", "phone": "0571-88888888", "address": "浙江省杭州市余杭区仓前街道1号"}
TO = {"name": "李四", "phone": "13800001234", "address": "浙江省杭州市西湖区文三路 90 号"}
ACCOUNTS = {  # carrier -> (key, secret, customer code, customer password)
    "SF": ("Y7hHmkqf", "sandbox-checkword", "7551234567", ""),
    "ZTO": ("zto-app-key", "zto-app-secret", "ZTO-ACCOUNT", ""),
    "JT": ("178337126125932605", "0258d71b55fc45e3ad7a7f38bf4b201a", "J0086474299", "H5CD3zE6"),
}


# -- signatures ------------------------------------------------------------------------------------
def test_the_jt_business_digest_matches_the_published_example():
    # J&T China's UAT demo values: customerCode J0086474299, password H5CD3zE6, privateKey
    # 0258d71b...; the published digest is qonqb4O1eNr6VCWS07Ieeg== (docs/carriers.md, sources)
    assert jt.business_digest("J0086474299", "H5CD3zE6",
                              "0258d71b55fc45e3ad7a7f38bf4b201a") == "qonqb4O1eNr6VCWS07Ieeg=="


# SF publishes the algorithm but no worked example: these vectors are the text url-encoded by
# hand (the first) and by SF's own Python SDK's quote_plus (docs/carriers.md says so).
@pytest.mark.parametrize(("msg_data", "timestamp", "checkword", "digest"), [
    ('{"orderId":"SO-1"}', "1700000000", "abc", "bXgUGcKxH+ZuRHBEtk9AwA=="),
    ('{"contact":"李 四","address":"文三路 90 号 *~"}', "1700000001", "ck",
     "878pJiT+VGTt7lagdgOyYQ=="),  # a space is "+", CJK is %XX of its UTF-8
])
def test_the_sf_digest_is_base64_md5_of_the_url_encoded_text(msg_data, timestamp, checkword,
                                                             digest):
    assert sf.msg_digest(msg_data, timestamp, checkword) == digest


def test_the_sf_digest_hashes_the_url_encoded_text_not_the_raw_one():
    encoded = "%7B%22orderId%22%3A%22SO-1%22%7D1700000000abc"  # urlencode by hand
    assert sf.msg_digest('{"orderId":"SO-1"}', "1700000000", "abc") == base64.b64encode(
        hashlib.md5(encoded.encode()).digest()).decode()


@pytest.mark.parametrize(("fn", "args", "want"), [
    # Base64 of the 16-byte MD5 of the UTF-8 text, computed here from the standard library
    (zto.data_digest, ('{"a":"中"}', "s"),
     base64.b64encode(hashlib.md5('{"a":"中"}s'.encode()).digest()).decode()),
    (jt.header_digest, ('{"b":1}', "k"),
     base64.b64encode(hashlib.md5(b'{"b":1}k').digest()).decode()),
])
def test_the_zto_and_jt_digests_sign_the_exact_body_and_the_secret(fn, args, want):
    assert fn(*args) == want
    assert fn(args[0] + " ", args[1]) != want  # one byte more: another digest


# -- the simulators through the adapters -----------------------------------------------------------
@pytest.fixture(params=["SF", "ZTO", "JT"])
def rig(request):
    code = request.param
    key, secret, customer, password = ACCOUNTS[code]
    sim = CarrierSimulator(code.lower(), key=key, secret=secret, customer_code=customer,
                           customer_password=password, quota=3, hang_s=10).start()
    account = CarrierAccount(carrier=code, url=sim.url, key=key, secret=secret,
                             customer_code=customer, customer_password=password,
                             sender=SENDER, timeout_s=0.5)
    yield code, sim, account
    sim.stop()


def shipment(n: int = 1, address: str = TO["address"]) -> Shipment:
    return Shipment(order_id=f"SO-{n}", carrier_order_id=f"SO-{n}",
                    recipient={**TO, "address": address}, items=("保温杯",))


def test_a_waybill_has_the_carriers_number_format_and_sorting_code(rig):
    code, sim, account = rig
    ewb = adapter_for(account).create(shipment())
    assert ewb.carrier == code and ewb.order_id == "SO-1"
    assert code in [m.carrier.code for m in identify(ewb.number)]  # fits carriers.json
    assert ewb.sort_code.startswith("571") and ewb.package_center
    assert ewb.recipient["address"] == TO["address"] and ewb.sender["name"] == "杭州仓"
    assert (ewb.qr is not None) == (code == "SF")
    assert sim.live()["SO-1"]["number"] == ewb.number


def test_asking_again_for_the_same_order_gives_the_same_waybill(rig):
    _, sim, account = rig
    carrier = adapter_for(account)
    first = carrier.create(shipment())
    assert carrier.create(shipment()).number == first.number
    assert sim.creates == 1 and len(sim.live()) == 1


def test_a_timeout_then_a_retry_leaves_one_live_waybill(rig):
    _, sim, account = rig
    carrier = adapter_for(account)
    sim.fail_next("timeout")
    with pytest.raises(Refusal) as e:
        carrier.create(shipment())
    assert e.value.code == "carrier_unavailable" and e.value.status == 503
    assert len(sim.live()) == 1  # made at the carrier, the answer lost
    again = carrier.create(shipment())
    assert sim.live()["SO-1"]["number"] == again.number and sim.creates == 1


@pytest.mark.parametrize(("how", "code"), [
    ("bad_signature", "carrier_refused"), ("out_of_range", "carrier_refused"),
    ("quota", "carrier_refused"), ("http_500", "carrier_unavailable"),
    ("garbage", "carrier_unavailable"), ("down", "carrier_unavailable"),
])
def test_every_simulator_error_comes_back_as_a_refusal(rig, how, code):
    carrier_code, sim, account = rig
    address = TO["address"]
    if how == "bad_signature":
        account = CarrierAccount(**{**account.__dict__, "secret": "wrong"})
    elif how == "out_of_range":
        address = "新疆维吾尔自治区 超区 某地"
    elif how == "quota":
        sim.quota = 0
    elif how in ("http_500", "garbage"):
        sim.fail_next(how)
    elif how == "down":
        sim.stop()
    with pytest.raises(Refusal) as e:
        adapter_for(account).create(shipment(address=address))
    assert e.value.code == code and e.value.details["carrier"] == carrier_code
    if code == "carrier_refused":
        assert e.value.status == 502 and e.value.details["carrier_code"]
        assert e.value.details["carrier_message"]
    assert sim.live() == {}


def test_a_cancel_cancels_at_the_carrier_and_twice_is_harmless(rig):
    _, sim, account = rig
    carrier = adapter_for(account)
    ewb = carrier.create(shipment())
    assert carrier.status(ewb.number, "SO-1") == "live"
    carrier.cancel(ewb.number, "SO-1")
    carrier.cancel(ewb.number, "SO-1")
    assert sim.live() == {} and carrier.status(ewb.number, "SO-1") == "cancelled"


def test_a_cancel_of_a_waybill_the_carrier_never_made_is_refused(rig):
    _, _, account = rig
    with pytest.raises(Refusal) as e:
        adapter_for(account).cancel("SF000000000000", "SO-404")
    assert e.value.code == "carrier_refused"


# -- the hub's accounts file -------------------------------------------------------------------------
GOOD = {"url": "https://sfapi-sbox.sf-express.com/std/service", "key": "k", "secret": "s"}


@pytest.mark.parametrize(("doc", "words"), [
    ({"sites": []}, "[sites] must be a table"),
    ({"sites": {"default": {"DHL": GOOD}}}, "sites.default.DHL: no adapter"),
    ({"sites": {"default": {"default": "DHL"}}}, "sites.default.default: expected one of"),
    ({"sites": {"default": {"SF": {**GOOD, "key": ""}}}}, "sites.default.SF.key is required"),
    ({"sites": {"default": {"SF": {**GOOD, "url": "ftp://x"}}}}, "url: expected http(s)"),
    ({"sites": {"default": {"SF": {**GOOD, "secret": 5}}}}, "secret: expected a string"),
    ({"sites": {"default": {"SF": {**GOOD, "sender": {"name": 1}}}}}, "sender: expected"),
    ({"sites": {"default": {"SF": {**GOOD, "timeout_s": 0}}}}, "timeout_s: expected a positive"),
])
def test_a_bad_accounts_file_is_refused_naming_the_key(doc, words):
    from scanedge.sync.carriers.accounts import AccountsError, parse_accounts

    with pytest.raises(AccountsError) as e:
        parse_accounts(doc, "carriers.toml")
    assert words in str(e.value) and str(e.value).startswith("carriers.toml: ")


def test_the_site_default_carrier_is_used_when_the_bench_names_none():
    from scanedge.sync.carriers.accounts import parse_accounts

    accounts = parse_accounts({"sites": {"sh": {"default": "ZTO", "SF": GOOD, "ZTO": GOOD}}})
    assert accounts.account("sh", None).carrier == "ZTO"
    assert accounts.account("sh", "SF").carrier == "SF"
    assert accounts.account("sh", "JT") is None and accounts.account("bj", None) is None
