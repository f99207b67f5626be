"""Carrier labels through the print queue (issue 19 item 3): ``submit_ewaybill`` queues a job of
kind ``ewaybill`` that prints the carrier's layout on the virtual printer over real TCP and reads
back; the same waybill never prints twice; a frozen order, a 58 mm printer, a waybill that would
not scan are refused before anything is queued; a reprint keeps the carrier layout."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from scanedge.edge.commands import load_demo_orders
from scanedge.edge.config import load_settings
from scanedge.edge.domain.ewaybill import EWaybill
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.freezes.local import freeze_order
from scanedge.edge.store import Store
from scanedge.printers import queue as q
from scanedge.printers.ewaybill_print import EWAYBILL, submit_ewaybill
from scanedge.printers.selfcheck import ewaybill_problems
from scanedge.printers.service import PrintService
from scanedge.printers.sim import VirtualPrinter
from tests.support import DATA, SCANEDGE, free_port, wait_until

SF = replace(EWaybill.from_json(json.loads((DATA / "printers" / "ewaybill_sf.json").read_text(
    encoding="utf-8"))), order_id="SO-1001")  # a P0 demo order with a gift
JT = replace(EWaybill.from_json(json.loads((DATA / "printers" / "ewaybill_jt.json").read_text(
    encoding="utf-8"))), order_id="SO-1002")


def _service(tmp_path, printer: str, model: str) -> tuple[PrintService, Store]:
    settings = load_settings(env={}, data_dir=str(tmp_path / "var"), device_id="test-dev",
                             station="bench-1", printer=printer, printer_model=model)
    store = Store(settings.edge_db_path)
    load_demo_orders(store)
    service = PrintService(store, settings, poll_interval=0.05, retry_base=0.05, retry_max=0.2,
                           status_timeout=0.3, connect_timeout=2.0)
    return service, store


@pytest.fixture
def rig(tmp_path):
    with VirtualPrinter(dots=576) as sim:
        service, store = _service(tmp_path, sim.address, "generic-80")
        yield service, sim, store
        service.stop()
        store.close()


def state(service: PrintService, job_id: str) -> str:
    job = service.get(job_id)
    assert job is not None
    return job.state


def events(store: Store, type_: str) -> list[dict]:
    rows = store.read().execute("SELECT payload FROM events WHERE type = ? ORDER BY seq", [type_])
    return [json.loads(p) for (p,) in rows.fetchall()]


def test_an_ewaybill_job_prints_the_carrier_layout_over_tcp_and_reads_back(rig) -> None:
    service, sim, store = rig
    job_id = submit_ewaybill(service, SF, station="bench-1", operator="li")
    wait_until(lambda: state(service, job_id) == "printed", 10, what="the carrier label printed")
    assert sim.wait_labels(1)
    (label,) = sim.labels
    assert ewaybill_problems(label.image, SF.number, SF.qr) == []
    assert label.image.shape[0] >= 1040  # the 76 x 130 stock, on the 80 mm printer
    job = service.get(job_id)
    assert job is not None and job.kind == EWAYBILL and job.operator == "li"
    assert job.payload == {"ewaybill": SF.to_json(), "station": "bench-1"}
    queued = events(store, "print_queued")
    assert queued[0]["kind"] == EWAYBILL and queued[0]["job_id"] == job_id
    assert label.beeps == 1  # SO-1001 is P0: the bench hears it like its label


def test_the_same_waybill_twice_is_one_job_and_one_label(rig) -> None:
    service, sim, _ = rig
    first = submit_ewaybill(service, JT, station="bench-1", operator="li")
    again = submit_ewaybill(service, JT, station="bench-1", operator="li")
    assert again == first
    wait_until(lambda: state(service, first) == "printed", 10, what="printed")
    assert len(service.recent(order_id="SO-1002")) == 1
    assert sim.wait_labels(1) and len(sim.labels) == 1


def test_a_reprint_keeps_the_carrier_layout_and_is_marked(rig) -> None:
    service, sim, store = rig
    job_id = submit_ewaybill(service, JT, station="bench-1", operator="li")
    wait_until(lambda: state(service, job_id) == "printed", 10, what="printed")
    again = service.reprint(job_id, operator="zhang", reason="label torn")
    assert again.kind == EWAYBILL and again.reprint_no == 1 and again.payload == service.get(job_id).payload
    wait_until(lambda: state(service, again.job_id) == "printed", 10, what="reprinted")
    assert sim.wait_labels(2)
    assert all(ewaybill_problems(label.image, JT.number, JT.qr) == [] for label in sim.labels)
    assert events(store, "print_reprint")[0]["reason"] == "label torn"


def test_a_frozen_order_gets_no_carrier_label(rig) -> None:
    service, sim, store = rig
    freeze_order(store, "test-dev", "SO-1002", "cancel", source="hub")
    with pytest.raises(q.QueueError) as e:
        submit_ewaybill(service, JT, station="bench-1", operator="li")
    assert e.value.code == "frozen" and service.recent(order_id="SO-1002") == []
    assert events(store, "print_blocked")[0]["what"] == "print_request"
    # frozen while queued (the printer held): the check before the first byte stops it
    sim.set_mode("cover_open")
    job_id = submit_ewaybill(service, SF, station="bench-1", operator="li")
    wait_until(lambda: service.state.hold == "cover_open", 10, what="held")
    freeze_order(store, "test-dev", "SO-1001", "address_change", source="hub")
    assert service.cancel_order_jobs("SO-1001")["cancelled"] == [job_id]
    sim.set_mode("ok")
    wait_until(lambda: service.state.hold is None, 10, what="released")
    assert state(service, job_id) == "cancelled" and sim.labels == []


def test_a_58mm_printer_is_refused_before_anything_is_queued(tmp_path) -> None:
    service, store = _service(tmp_path, "dummy://", "generic-58")
    try:
        with pytest.raises(Refusal) as e:
            submit_ewaybill(service, SF, station="bench-1", operator="li")
        assert e.value.code == "paper_too_narrow" and e.value.status == 422
        assert "58" in e.value.message
        assert service.recent() == []
    finally:
        service.stop()
        store.close()


@pytest.mark.parametrize("change,code", [
    ({"number": "SF 单号"}, "cannot_render"),  # Code 128 cannot carry it
    ({"carrier": "YTO"}, "unknown_carrier"),  # no layout for that carrier
    ({"order_id": "SO-9999"}, "not_found"),
])
def test_a_waybill_that_cannot_print_is_refused_with_a_clear_error(rig, change, code) -> None:
    service, _, _ = rig
    with pytest.raises(Refusal) as e:
        submit_ewaybill(service, replace(JT, **change), station="bench-1", operator="li")
    assert e.value.code == code and e.value.message
    assert service.recent() == []


@pytest.mark.parametrize("model,length", [("generic-100x150", 1200), ("generic-100x180", 1440)])
def test_a_4_inch_label_printer_prints_the_layout_of_its_stock(tmp_path, model, length) -> None:
    with VirtualPrinter(dots=832) as sim:
        service, store = _service(tmp_path, sim.address, model)
        try:
            job_id = submit_ewaybill(service, SF, station="bench-1", operator="li")
            wait_until(lambda: state(service, job_id) == "printed", 10, what="printed")
            assert sim.wait_labels(1)
            (label,) = sim.labels
            assert length <= label.image.shape[0] <= length + 120  # the stock, and the feed
            assert ewaybill_problems(label.image, SF.number, SF.qr) == []
        finally:
            service.stop()
            store.close()


@pytest.mark.slow  # a process; the in-process virtual printer above is the same TCP path
def test_the_carrier_label_prints_on_the_printer_sim_process(tmp_path) -> None:
    port = free_port()
    saved = tmp_path / "printed"
    saved.mkdir()
    proc = subprocess.Popen([SCANEDGE, "printer-sim", "--listen", f"127.0.0.1:{port}", "--dots", "576",
                             "--save", str(saved)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        service, store = _service(tmp_path, f"tcp://127.0.0.1:{port}", "generic-80")
        try:
            job_id = submit_ewaybill(service, SF, station="bench-1", operator="li")
            wait_until(lambda: state(service, job_id) == "printed", 30, what="printed on printer-sim")
            job = service.get(job_id)
            assert job is not None and job.bytes_sent == job.bytes_total > 0
            # what the printer printed, saved by it: the carrier label reads back
            png = wait_until(lambda: sorted(saved.glob("label-*.png")), 10, what="the saved label")
            image = np.asarray(Image.open(png[0]).convert("L"))
            assert ewaybill_problems(image, SF.number, SF.qr) == []
        finally:
            service.stop()
            store.close()
    finally:
        proc.terminate()
        proc.wait(10)
