"""Carrier simulators (``scanedge carrier-sim --carrier sf|zto|jt``): each carrier's API on
127.0.0.1, answering in its format after checking its signature, for the tests and the demo.

What each answers (docs/carriers.md, "Simulators"):
- a good request: a waybill (a number that fits the carrier's format in carriers.json, a sorting
  code, 集包地, SF's 2D code); the same carrier order id again: that same waybill (SF: refused
  ``8016`` 重复下单, then found by ``EXP_RECE_SEARCH_ORDER_RESP``, as SF does);
- a bad signature: the carrier's refusal (SF gateway ``A1006``, ZTO ``S0002``, J&T ``145003``);
- a recipient address containing ``超区``: out of the delivery range (refused);
- no quota left (``--quota N``): refused;
- a scenario queued with ``POST /_sim/next {"fail": "timeout"|"http_500"|"garbage"}`` (or
  :meth:`CarrierSimulator.fail_next`): the next create is made but never answered (the caller
  times out), answers HTTP 500, or answers garbage.
Cancels and status queries answer from the same state. ``GET /_sim/waybills`` lists it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from scanedge.sync.carriers import jt, sf, zto

CARRIERS = ("sf", "zto", "jt")
FAILURES = ("timeout", "http_500", "garbage")
OUT_OF_RANGE = "超区"
# city code, sorting-code city, 集包地 by the first characters of the address (the rest: 020)
CITIES = (("浙江", "571", "杭州"), ("杭州", "571", "杭州"), ("广东", "755", "深圳"),
          ("深圳", "755", "深圳"), ("上海", "021", "上海"), ("北京", "010", "北京"))
ERRORS = {  # (code, message) per carrier; docs/carriers.md says which are the carrier's own
    "sf": {"signature": ("A1006", "数字签名无效"), "range": ("8114", "收件地址超出派送范围"),
           "quota": ("8196", "月结卡号电子面单余额不足"), "duplicate": ("8016", "重复下单"),
           "unknown": ("8018", "未获取到订单信息"), "cancelled": ("8037", "已消单")},
    "zto": {"signature": ("S0002", "签名校验失败"), "range": ("E1012", "收件地址超出服务范围"),
            "quota": ("E2002", "电子面单余额不足"), "unknown": ("E1001", "订单不存在")},
    "jt": {"signature": ("145003", "digest签名校验失败"), "range": ("999001", "收件地址超区"),
           "quota": ("999002", "电子面单余额不足"), "unknown": ("999003", "订单不存在")},
}


def _city(address: str) -> tuple[str, str]:
    for word, code, name in CITIES:
        if word in address:
            return code, name
    return "020", "广州"


class CarrierSimulator:
    def __init__(self, carrier: str, *, key: str, secret: str, customer_code: str = "",
                 customer_password: str = "", host: str = "127.0.0.1", port: int = 0,
                 quota: int | None = None, hang_s: float = 60.0) -> None:
        if carrier not in CARRIERS:
            raise ValueError(f"carrier {carrier!r}: expected one of {', '.join(CARRIERS)}")
        self.carrier, self.key, self.secret = carrier, key, secret
        self.customer_code, self.customer_password = customer_code, customer_password
        self.quota = quota
        self.hang_s = hang_s
        self.waybills: dict[str, dict[str, Any]] = {}  # carrier order id -> waybill
        self.creates = 0  # create requests that made a waybill
        self.calls: list[tuple[str, str]] = []  # (api, outcome)
        self._failures: deque[str] = deque()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        base = f"http://{self.host}:{self.port}"
        return base + "/std/service" if self.carrier == "sf" else base

    def start(self) -> CarrierSimulator:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={
            "poll_interval": 0.01}, name=f"carrier-sim-{self.carrier}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # a hung answer ends now
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, failure: str) -> None:
        if failure not in FAILURES:
            raise ValueError(f"failure {failure!r}: expected one of {', '.join(FAILURES)}")
        with self._lock:
            self._failures.append(failure)

    def live(self) -> dict[str, dict[str, Any]]:
        """The waybills not cancelled, by carrier order id."""
        with self._lock:
            return {k: dict(v) for k, v in self.waybills.items() if v["state"] == "live"}

    # -- the carrier's rules, format aside -------------------------------------------------------
    def _create(self, order_id: str, recipient: dict[str, str],
                sender: dict[str, str]) -> tuple[dict[str, Any] | None, str | None, bool]:
        """(waybill, error kind, made before)."""
        with self._lock:
            if order_id in self.waybills:
                return self.waybills[order_id], None, True
            if OUT_OF_RANGE in recipient.get("address", ""):
                return None, "range", False
            if self.quota is not None and self.quota <= 0:
                return None, "quota", False
            if self.quota is not None:
                self.quota -= 1
            self.creates += 1
            serial = 10_000_000 + len(self.waybills) + 1
            digest = hashlib.md5(order_id.encode()).hexdigest()
            code, city = _city(recipient.get("address", ""))
            number = {"sf": f"SF{int(digest[:8], 16) % 10**4:04d}{serial:08d}",
                      "zto": f"73{int(digest[:8], 16) % 10**4:04d}{serial:08d}",
                      "jt": f"JT{int(digest[:8], 16) % 10**5:05d}{serial:08d}"}[self.carrier]
            bill = {"number": number, "order_id": order_id, "state": "live",
                    "recipient": recipient, "sender": sender, "city": code, "city_name": city,
                    "team": f"{serial % 97:03d}"}
            self.waybills[order_id] = bill
            return bill, None, False

    def _cancel(self, order_id: str) -> str | None:
        """None, or the error kind (unknown, cancelled)."""
        with self._lock:
            bill = self.waybills.get(order_id)
            if bill is None:
                return "unknown"
            if bill["state"] == "cancelled":
                return "cancelled"
            bill["state"] = "cancelled"
            return None

    def _take_failure(self) -> str | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    # -- HTTP ------------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _answer(self, status: int, body: Any, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/_sim/waybills":
                    with sim._lock:
                        self._answer(200, {"waybills": sim.waybills, "creates": sim.creates,
                                           "quota": sim.quota})
                else:
                    self._answer(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 1 << 20)).decode("utf-8", "replace")
                if self.path == "/_sim/next":
                    try:
                        sim.fail_next(json.loads(body).get("fail"))
                    except (ValueError, AttributeError) as e:
                        self._answer(400, {"error": str(e)})
                        return
                    self._answer(200, {"queued": True})
                    return
                answer = {"sf": sim._sf, "zto": sim._zto, "jt": sim._jt}[sim.carrier](
                    self.path, self.headers, body)
                if answer is None:  # a hung answer: the caller times out
                    self.close_connection = True
                    return
                status, doc = answer
                if status == -1:
                    self._answer(200, None, raw=b"<html>gateway busy</html>")
                else:
                    self._answer(status, doc)

        return Handler

    def _failure_answer(self, api: str, make: Any) -> tuple[int, Any] | None:
        """A queued failure for a create: the waybill is made first for ``timeout`` (the answer
        is lost, as when a real carrier answers after the caller gave up)."""
        failure = self._take_failure()
        if failure is None:
            return (0, None)
        self.calls.append((api, failure))
        if failure == "timeout":
            make()
            self._released.wait(self.hang_s)
            return None
        return (500, {"error": "internal"}) if failure == "http_500" else (-1, None)

    # SF 丰桥 -------------------------------------------------------------------------------------
    def _sf(self, path: str, headers: Any, body: str) -> tuple[int, Any] | None:
        form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        service, msg_data = form.get("serviceCode", ""), form.get("msgData", "")
        expected = sf.msg_digest(msg_data, form.get("timestamp", ""), self.secret)
        if form.get("partnerID") != self.key or form.get("msgDigest") != expected:
            self.calls.append((service, "signature"))
            code, message = ERRORS["sf"]["signature"]
            return 200, {"apiResultCode": code, "apiErrorMsg": message, "apiResultData": None}
        try:
            msg = json.loads(msg_data)
        except ValueError:
            return 200, {"apiResultCode": "A1001", "apiErrorMsg": "msgData不是JSON",
                         "apiResultData": None}
        order_id = str(msg.get("orderId", ""))

        def result(data: Any = None, error: str | None = None) -> tuple[int, Any]:
            code, message = ERRORS["sf"][error] if error else ("S0000", None)
            self.calls.append((service, error or "ok"))
            return 200, {"apiResultCode": "A1000", "apiErrorMsg": "", "apiResultData": json.dumps(
                {"success": error is None, "errorCode": code, "errorMsg": message,
                 "msgData": data}, ensure_ascii=False)}

        if service == sf.CREATE:
            contacts = {c.get("contactType"): c for c in msg.get("contactInfoList") or ()}
            recipient = {"name": contacts.get(2, {}).get("contact", ""),
                         "phone": contacts.get(2, {}).get("tel", ""),
                         "address": contacts.get(2, {}).get("address", "")}
            sender = {"name": contacts.get(1, {}).get("contact", "")}
            failed = self._failure_answer(service, lambda: self._create(order_id, recipient,
                                                                        sender))
            if failed is None or failed[0] != 0:
                return failed
            bill, error, before = self._create(order_id, recipient, sender)
            if before:
                return result(error="duplicate")
            return result(self._sf_data(bill) if bill else None, error)
        if service == sf.SEARCH:
            with self._lock:
                bill = self.waybills.get(order_id)
            if bill is None:
                return result(error="unknown")
            return result({**self._sf_data(bill), "orderStatus": bill["state"]})
        if service == sf.UPDATE:
            return result({"orderId": order_id, "resStatus": 2}, self._cancel(order_id))
        return 200, {"apiResultCode": "A1004", "apiErrorMsg": "无对应服务权限",
                     "apiResultData": None}

    def _sf_data(self, bill: dict[str, Any] | None) -> dict[str, Any]:
        assert bill is not None
        route = f"{bill['city']}WE-{bill['team']}"
        return {"orderId": bill["order_id"], "originCode": "571", "destCode": bill["city"],
                "waybillNoInfoList": [{"waybillType": 1, "waybillNo": bill["number"]}],
                "routeLabelInfo": [{"code": "1000", "routeLabelData": {
                    "waybillNo": bill["number"], "destRouteLabel": route,
                    "codingMapping": f"{bill['city'][-2:]}A", "proName": "顺丰标快",
                    "destTeamCode": bill["team"], "twoDimensionCode": (
                        f"MMM={{'k1':'{bill['city']}W','k2':'{bill['city']}WE',"
                        f"'k3':'{bill['team']}','k4':'T4','k5':'{bill['number']}'}}")}}]}

    # ZTO -----------------------------------------------------------------------------------------
    def _zto(self, path: str, headers: Any, body: str) -> tuple[int, Any] | None:
        api = path.strip("/")
        if headers.get("x-appKey") != self.key or \
                headers.get("x-dataDigest") != zto.data_digest(body, self.secret):
            return self._zto_result(api, error="signature")
        try:
            doc = json.loads(body)
        except ValueError:
            return 200, {"status": False, "statusCode": "S0001", "message": "body不是JSON"}
        order_id = str(doc.get("partnerOrderCode", ""))
        if api == zto.CREATE:
            info = doc.get("receiveInfo") or {}
            recipient = {"name": info.get("receiverName", ""),
                         "phone": info.get("receiverMobile", ""),
                         "address": info.get("receiverAddress", "")}
            sender = {"name": (doc.get("senderInfo") or {}).get("senderName", "")}
            failed = self._failure_answer(api, lambda: self._create(order_id, recipient, sender))
            if failed is None or failed[0] != 0:
                return failed
            bill, error, _ = self._create(order_id, recipient, sender)
            if bill is None:
                return self._zto_result(api, error=error)
            return self._zto_result(api, {
                "billCode": bill["number"], "orderCode": f"ZTO{bill['number']}",
                "partnerOrderCode": order_id, "bigMarkInfo": {
                    "mark": f"{bill['city']}-{bill['team']} {bill['team'][-2:]}",
                    "bagAddr": f"{bill['city_name']}中转包"}})
        if api == zto.CANCEL:
            with self._lock:
                order_id = next((k for k, v in self.waybills.items()
                                 if v["number"] == doc.get("billCode")), order_id)
            error = self._cancel(order_id)
            return self._zto_result(api, {}, None if error == "cancelled" else error)
        if api == zto.QUERY:
            with self._lock:
                bill = self.waybills.get(order_id)
            if bill is None:
                return self._zto_result(api, error="unknown")
            return self._zto_result(api, [{"billCode": bill["number"], "orderStatus":
                                           -1 if bill["state"] == "cancelled" else 1}])
        return 200, {"status": False, "statusCode": "S0404", "message": f"no api {api}"}

    def _zto_result(self, api: str, result: Any = None,
                    error: str | None = None) -> tuple[int, Any]:
        self.calls.append((api, error or "ok"))
        if error:
            code, message = ERRORS["zto"][error]
            return 200, {"status": False, "statusCode": code, "message": message}
        return 200, {"status": True, "statusCode": "SYS000", "message": "ok", "result": result}

    # J&T -----------------------------------------------------------------------------------------
    def _jt(self, path: str, headers: Any, body: str) -> tuple[int, Any] | None:
        api = path.rsplit("/", 1)[-1]
        biz = (parse_qs(body, keep_blank_values=True).get("bizContent") or [""])[0]
        try:
            doc = json.loads(biz)
        except ValueError:
            doc = None
        if headers.get("apiAccount") != self.key or \
                headers.get("digest") != jt.header_digest(biz, self.secret) or \
                not isinstance(doc, dict) or doc.get("customerCode") != self.customer_code or \
                doc.get("digest") != jt.business_digest(self.customer_code,
                                                        self.customer_password, self.secret):
            return self._jt_result(api, error="signature")
        order_id = str(doc.get("txlogisticId", ""))
        if api == "addOrder":
            receiver = doc.get("receiver") or {}
            recipient = {"name": receiver.get("name", ""), "phone": receiver.get("mobile", ""),
                         "address": receiver.get("address", "")}
            sender = {"name": (doc.get("sender") or {}).get("name", "")}
            failed = self._failure_answer(api, lambda: self._create(order_id, recipient, sender))
            if failed is None or failed[0] != 0:
                return failed
            bill, error, _ = self._create(order_id, recipient, sender)
            if bill is None:
                return self._jt_result(api, error=error)
            return self._jt_result(api, {
                "txlogisticId": order_id, "billCode": bill["number"],
                "sortingCode": f"{bill['city']} {bill['team']}-{bill['team'][-2:]}",
                "lastCenterName": f"{bill['city_name']}转运中心"})
        if api == "cancelOrder":
            error = self._cancel(order_id)
            return self._jt_result(api, {"txlogisticId": order_id},
                                   None if error == "cancelled" else error)
        if api == "getOrders":
            serials = doc.get("serialNumber") or [""]
            with self._lock:
                bill = self.waybills.get(str(serials[0]))
            if bill is None:
                return self._jt_result(api, error="unknown")
            return self._jt_result(api, [{"billCode": bill["number"],
                                          "orderStatus": bill["state"]}])
        return 200, {"code": "404", "msg": f"no api {api}"}

    def _jt_result(self, api: str, data: Any = None,
                   error: str | None = None) -> tuple[int, Any]:
        self.calls.append((api, error or "ok"))
        if error:
            code, message = ERRORS["jt"][error]
            return 200, {"code": code, "msg": message}
        return 200, {"code": "1", "msg": "success", "data": data}


def run(carrier: str, listen: str, **account: Any) -> None:
    """``scanedge carrier-sim``: serve until interrupted."""
    host, _, port = listen.rpartition(":")
    sim = CarrierSimulator(carrier, host=host.strip("[]") or "127.0.0.1", port=int(port),
                           **account).start()
    print(f"carrier simulator {carrier}: {sim.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    sim.stop()
