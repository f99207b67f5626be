"""The print queue against the virtual printer over real TCP: every fault holds the queue,
no label is lost or printed twice. Only USB is mocked (hardware)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from scanedge.edge.commands import load_demo_orders
from scanedge.edge.config import load_settings
from scanedge.edge.freezes.local import freeze_order
from scanedge.edge.store import Store
from scanedge.printers import status as st
from scanedge.printers.queue import QueueError
from scanedge.printers.selfcheck import decode_symbols
from scanedge.printers.service import PrintService
from scanedge.printers.sim import VirtualPrinter
from scanedge.printers.transports import PrintPayload, make_transport


def wait_for(cond: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def sim() -> Iterator[VirtualPrinter]:
    with VirtualPrinter(dots=576) as printer:
        yield printer


@pytest.fixture
def rig(tmp_path, sim):
    settings = load_settings(env={}, data_dir=str(tmp_path / "var"), device_id="test-dev",
                             station="bench-1", printer=sim.address, printer_model="generic-80",
                             print_policy="off")  # the queue's mechanics; the gate: test_print_gate
    store = Store(settings.edge_db_path)
    load_demo_orders(store)
    service = PrintService(store, settings, poll_interval=0.05, retry_base=0.05, retry_max=0.2,
                           status_timeout=0.3, connect_timeout=2.0)
    yield service, sim, store
    service.stop()
    store.close()


def events(store: Store, type_: str) -> list[dict]:
    rows = store.read().execute(
        "SELECT payload, order_id FROM events WHERE type = ? ORDER BY seq", [type_]).fetchall()
    return [{**json.loads(p), "order_id": o} for p, o in rows]


def printed_orders(sim: VirtualPrinter) -> list[str]:
    out = []
    for label in sim.labels:
        # the QR names the label (SO-1001:L1): its order is the part before ":L"
        qr = [s.text.rsplit(":L", 1)[0] for s in decode_symbols(label.image) if s.format == "QRCode"]
        out.extend(qr)
    return out


def state(service: PrintService, job_id: str) -> str:
    job = service.get(job_id)
    assert job is not None
    return job.state


def test_prints_over_tcp_and_decodes_back(rig) -> None:
    service, sim, store = rig
    job = service.submit("SO-1002", copies=2)
    wait_for(lambda: state(service, job.job_id) == "printed")
    assert sim.wait_labels(2)
    assert printed_orders(sim) == ["SO-1002", "SO-1002"]
    assert all(label.cut for label in sim.labels)
    assert sim.status_queries >= 6  # DLE EOT 1, 2, 4 before and after
    assert [e["job_id"] for e in events(store, "print_printed")] == [job.job_id]
    assert events(store, "print_queued")[0]["order_id"] == "SO-1002"


@pytest.mark.parametrize("fault", ["paper_out", "cover_open", "offline", "silent"])
def test_fault_holds_queue_raises_alarm_and_prints_once_after_recovery(rig, fault: str) -> None:
    service, sim, store = rig
    alarms: list[dict] = []
    service.bus.on("printer_alarm", alarms.append)
    sim.set_mode(fault)
    first = service.submit("SO-1002")
    second = service.submit("SO-1003")
    expected = "no_answer" if fault == "silent" else fault
    wait_for(lambda: service.state.hold == expected)
    time.sleep(0.3)  # the held queue keeps polling, and sends nothing
    assert state(service, first.job_id) == state(service, second.job_id) == "queued"
    assert sim.labels == [] and sim.lost_labels == 0
    assert any(a["kind"] == expected for a in alarms)
    assert any(e["kind"] == expected for e in events(store, "alarm"))
    sim.set_mode("ok")
    wait_for(lambda: state(service, first.job_id) == state(service, second.job_id) == "printed")
    assert service.state.hold is None
    assert printed_orders(sim) == ["SO-1003", "SO-1002"]  # each once, P1 before P2
    assert events(store, "printer_ready")


def test_p0_jumps_the_queue(rig) -> None:
    service, sim, _ = rig
    sim.set_mode("paper_out")
    jobs = [service.submit(o) for o in ("SO-1002", "SO-1003", "SO-1001")]  # P2, P1, P0
    wait_for(lambda: service.state.hold == "paper_out")
    sim.set_mode("ok")
    wait_for(lambda: all(state(service, j.job_id) == "printed" for j in jobs))
    assert printed_orders(sim) == ["SO-1001", "SO-1003", "SO-1002"]
    assert sim.labels[0].beeps == 1  # a P0 label beeps


def test_disconnect_mid_job_waits_for_confirmation_then_resends_once(rig) -> None:
    service, sim, store = rig
    sim.set_mode("disconnect_mid_job")
    job = service.submit("SO-1002")
    wait_for(lambda: state(service, job.job_id) == "needs_confirmation")
    got = service.get(job.job_id)
    assert got is not None and got.bytes_sent > 0
    time.sleep(0.3)
    assert sim.labels == []  # never resent blindly
    assert events(store, "print_needs_confirmation")
    service.confirm(job.job_id, outcome="resend", operator="wang")
    wait_for(lambda: state(service, job.job_id) == "printed")
    assert printed_orders(sim) == ["SO-1002"]
    assert events(store, "print_confirmed")[0]["operator"] == "wang"


def test_paper_out_mid_job_holds_and_operator_confirms(rig) -> None:
    service, sim, _ = rig
    sim.set_mode("paper_out_mid_job")
    job = service.submit("SO-1003")
    later = service.submit("SO-1002")
    wait_for(lambda: state(service, job.job_id) == "needs_confirmation")
    assert service.state.hold == "paper_out"
    assert state(service, later.job_id) == "queued"
    assert sim.labels == [] and sim.lost_labels == 1
    sim.set_mode("ok")
    wait_for(lambda: state(service, later.job_id) == "printed")
    assert state(service, job.job_id) == "needs_confirmation"
    service.confirm(job.job_id, outcome="resend", operator="li")
    wait_for(lambda: state(service, job.job_id) == "printed")
    assert sorted(printed_orders(sim)) == ["SO-1002", "SO-1003"]


def test_unreachable_printer_retries_with_backoff(tmp_path) -> None:
    with VirtualPrinter() as probe:
        address = probe.address  # a port that is closed once the probe stops
    settings = load_settings(env={}, data_dir=str(tmp_path / "var"), device_id="d", printer=address,
                             print_policy="off")
    store = Store(settings.edge_db_path)
    load_demo_orders(store)
    service = PrintService(store, settings, poll_interval=0.05, retry_base=0.05, retry_max=0.2)
    try:
        job = service.submit("SO-1002")
        wait_for(lambda: service.state.hold == "unreachable")
        wait_for(lambda: (service.get(job.job_id) or job).attempts >= 1)
        assert state(service, job.job_id) == "queued"
    finally:
        service.stop()
        store.close()


def test_idempotency_key_gives_one_job_and_one_label(rig) -> None:
    service, sim, _ = rig
    a = service.submit("SO-1002", idempotency_key="k-1")
    b = service.submit("SO-1002", idempotency_key="k-1")
    assert a.job_id == b.job_id
    wait_for(lambda: state(service, a.job_id) == "printed")
    time.sleep(0.2)
    assert printed_orders(sim) == ["SO-1002"]
    with pytest.raises(QueueError) as e:
        service.submit("SO-1003", idempotency_key="k-1")
    assert e.value.status == 409


def test_frozen_order_does_not_print(rig) -> None:
    service, sim, store = rig
    freeze_order(store, "test-dev", "SO-1003", "cancel", source="hub")
    with pytest.raises(QueueError) as e:
        service.submit("SO-1003")
    assert e.value.code == "frozen"
    assert events(store, "print_blocked")[0]["order_id"] == "SO-1003"
    # frozen while queued (printer held): the check right before sending stops it
    sim.set_mode("cover_open")
    job = service.submit("SO-1002")
    wait_for(lambda: service.state.hold == "cover_open")
    freeze_order(store, "test-dev", "SO-1002", "address_change", source="hub")
    sim.set_mode("ok")
    wait_for(lambda: state(service, job.job_id) == "cancelled")
    assert sim.labels == []


def test_cancel_order_jobs_is_one_call(rig) -> None:
    service, sim, store = rig
    sim.set_mode("offline")
    jobs = [service.submit("SO-1001"), service.submit("SO-1001", copies=2), service.submit("SO-1002")]
    wait_for(lambda: service.state.hold == "offline")
    result = service.cancel_order_jobs("SO-1001")
    assert sorted(result["cancelled"]) == sorted(j.job_id for j in jobs[:2])
    sim.set_mode("ok")
    wait_for(lambda: state(service, jobs[2].job_id) == "printed")
    assert printed_orders(sim) == ["SO-1002"]
    assert len(events(store, "print_cancelled")) == 2


def test_reprint_is_logged_and_marked(rig) -> None:
    service, sim, store = rig
    job = service.submit("SO-1002")
    wait_for(lambda: state(service, job.job_id) == "printed")
    again = service.reprint(job.job_id, operator="zhang", reason="label torn")
    assert again.reprint_no == 1 and again.reprint_of == job.job_id
    wait_for(lambda: state(service, again.job_id) == "printed")
    assert printed_orders(sim) == ["SO-1002", "SO-1002"]
    logged = events(store, "print_reprint")
    assert logged[0]["operator"] == "zhang" and logged[0]["reason"] == "label torn"
    assert service.reprint(again.job_id, operator="zhang", reason="again").reprint_no == 2


def test_paper_near_end_is_a_warning_not_a_hold(rig) -> None:
    service, sim, store = rig
    sim.set_mode("paper_near_end")
    job = service.submit("SO-1002")
    wait_for(lambda: state(service, job.job_id) == "printed")
    assert service.state.hold is None
    assert [e["kind"] for e in events(store, "warning")] == ["paper_near_end"]


def test_status_and_transmit_status_answers(sim) -> None:
    t = make_transport(sim.address, status_timeout=0.3)
    t.open()
    try:
        assert t.status().fault is None
        sim.set_mode("cover_open")
        assert t.status().fault == "cover_open"
        sim.set_mode("paper_out")
        assert t.status().fault == "paper_out"
        t.printer._raw(b"\x1dr\x01")  # GS r 1: paper sensor
        assert t._read_one() == 0x0C
        sim.set_mode("silent")
        assert t.status().fault == "no_answer"
    finally:
        t.close()
    assert st.parse_status(0x12, 0x12, 0x1E).warning == "paper_near_end"
    assert st.parse_status(0x41, 0x12, 0x12).answered is False  # not a status byte


def test_status_bytes_inside_image_data_are_not_queries(sim) -> None:
    # a raster whose data is DLE EOT 1 over and over: a printer must not answer it
    t = make_transport(sim.address, status_timeout=0.3)
    t.open()
    try:
        data = b"\x1b@" + b"\x1dv0\x00\x03\x00\x20\x00" + b"\x10\x04\x01" * 32 + b"\x1dV\x01"
        t.send(PrintPayload(data))
        assert sim.wait_labels(1, timeout=3)
        assert sim.status_queries == 0
    finally:
        t.close()


def test_usb_address_uses_escpos_usb_with_keyword_arguments(monkeypatch) -> None:
    import escpos.printer

    made: list[dict] = []

    class FakeUsb:  # USB needs hardware: the only mock in these tests
        def __init__(self, **kwargs) -> None:
            made.append(kwargs)
            self.written = bytearray()

        def open(self) -> None:
            pass

        def _raw(self, data: bytes) -> None:
            self.written += data

        def _read(self) -> bytes:
            return b"\x12"

        def close(self) -> None:
            pass

    monkeypatch.setattr(escpos.printer, "Usb", FakeUsb)
    t = make_transport("usb://0416:5011?in_ep=0x81&out_ep=0x03&timeout=500")
    t.open()
    assert t.status().fault is None
    assert t.send(PrintPayload(b"x" * 10000)) == 10000
    assert made == [{"idVendor": 0x0416, "idProduct": 0x5011, "in_ep": 0x81, "out_ep": 0x03,
                     "timeout": 500}]
    assert bytes(t.printer.written).endswith(b"x" * 10000)
    with pytest.raises(ValueError):
        make_transport("usb://nothing")


def test_preview_and_dummy_transports(tmp_path) -> None:
    from PIL import Image

    t = make_transport(f"preview://{tmp_path / 'labels'}")
    t.open()
    t.send(PrintPayload(b"\x1b@", [Image.new("1", (8, 8), 1)], name="job-1"))
    assert (tmp_path / "labels" / "job-1.bin").read_bytes() == b"\x1b@"
    assert (tmp_path / "labels" / "job-1.png").exists()
    d = make_transport("dummy://")
    d.send(PrintPayload(b"abc"))
    assert d.jobs == [b"abc"]
