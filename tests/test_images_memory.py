"""Image work in bounded memory: the gate (ocr.memory), and a real ``scanedge serve`` reading
decompression bombs and absurd shapes (its RSS read from /proc; no timing asserts)."""

from __future__ import annotations

import json
import struct
import threading
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import zxingcpp

from scanedge.ocr import memory
from scanedge.ocr.images import ImageError
from tests.support import EdgeServer

DATA = Path(__file__).parent / "data"
CODE = "SF1385628716739"
MB = 1024 * 1024


# -- the gate -----------------------------------------------------------------------------------


def test_a_job_bigger_than_the_budget_is_refused() -> None:
    gate = memory.ImageGate(100 * MB, 2)
    with pytest.raises(ImageError) as info, gate.reserve(101 * MB, "this image"):
        pass
    assert info.value.code == "too_many_pixels" and info.value.status == 413
    assert "image_memory_mb" in info.value.message


def test_jobs_share_the_budget_in_arrival_order() -> None:
    gate = memory.ImageGate(100 * MB, 4)
    order: list[str] = []
    first_in = threading.Event()
    release_first = threading.Event()

    def job(name: str, need: int, hold: threading.Event | None = None) -> None:
        with gate.reserve(need):
            order.append(name)
            if hold is not None:
                first_in.set()
                hold.wait(10)

    a = threading.Thread(target=job, args=("a", 60 * MB, release_first))
    a.start()
    assert first_in.wait(10)
    b = threading.Thread(target=job, args=("b", 60 * MB))  # does not fit beside a: waits
    b.start()
    time.sleep(0.1)
    c = threading.Thread(target=job, args=("c", 10 * MB))  # would fit, but b came first
    c.start()
    time.sleep(0.1)
    assert order == ["a"] and gate.used == 60 * MB
    release_first.set()
    for t in (a, b, c):
        t.join(10)
    assert order == ["a", "b", "c"]
    assert gate.used == 0 and gate.running == 0 and gate.peak_used <= 100 * MB


def test_one_job_per_cpu_slot() -> None:
    gate = memory.ImageGate(1000 * MB, 2)
    running, most = [0], [0]
    lock = threading.Lock()

    def job(_: int) -> None:
        with gate.reserve(MB):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.02)
            with lock:
                running[0] -= 1

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(job, range(12)))
    assert most[0] == 2


def test_nested_jobs_run_inside_the_outer_reservation() -> None:
    gate = memory.ImageGate(50 * MB, 1)
    # a waybill read's decode: no second reservation
    with gate.reserve(40 * MB), gate.reserve(40 * MB) as inner:
        assert inner == 0 and gate.used == 40 * MB
    assert gate.used == 0


def test_too_many_waiting_is_busy(monkeypatch) -> None:
    monkeypatch.setattr(memory, "MAX_WAITING", 1)
    gate = memory.ImageGate(10 * MB, 1)
    hold, inside = threading.Event(), threading.Event()

    def holder() -> None:
        with gate.reserve(MB):
            inside.set()
            hold.wait(10)

    def waiter() -> None:
        with gate.reserve(MB):
            pass

    threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
    threads[0].start()
    inside.wait(10)
    threads[1].start()
    time.sleep(0.1)
    with pytest.raises(ImageError) as info, gate.reserve(MB):
        pass
    assert info.value.code == "busy" and info.value.status == 503
    monkeypatch.setattr(memory, "MAX_WAIT_S", 0.05)
    monkeypatch.setattr(memory, "MAX_WAITING", 5)
    with pytest.raises(ImageError) as info, gate.reserve(MB):  # waited too long
        pass
    assert info.value.code == "busy"
    hold.set()
    for t in threads:
        t.join(10)
    assert gate.used == 0 and not gate._queue


def test_decode_and_waybill_estimates_fit_the_default_budget() -> None:
    from scanedge.ocr.decode import job_bytes as decode_bytes
    from scanedge.ocr.images import open_image
    from scanedge.ocr.waybill import job_bytes as waybill_bytes

    bomb = open_image(png_bomb())
    budget = memory.DEFAULT_MEMORY_MB * MB
    assert decode_bytes(bomb) < budget and waybill_bytes(bomb) < budget
    # the same pixels whole, as Pillow would hold them, would not have fitted
    assert bomb.width * bomb.height * 4 > budget / 2


# -- a real server --------------------------------------------------------------------------------


def png_bomb(width: int = 6300, height: int = 6300) -> bytes:
    """RGBA under the 40 MP limit (~150 KB): transparent, with a Code 128 in a white box in the
    middle (readable after the reduction to the working size). Written row by row."""
    bars = np.asarray(zxingcpp.create_barcode(CODE, zxingcpp.BarcodeFormat.Code128)
                      .to_image(scale=6))[0]
    bars = np.concatenate([np.full(60, 255, np.uint8), bars, np.full(60, 255, np.uint8)])
    px = np.zeros((width, 4), np.uint8)
    x0 = (width - len(bars)) // 2
    px[x0:x0 + len(bars), :3] = bars[:, None]
    px[x0:x0 + len(bars), 3] = 255
    code_row, empty_row = b"\0" + px.tobytes(), b"\0" + bytes(width * 4)
    y0, y1 = height // 2 - 200, height // 2 + 200
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(code_row if y0 <= y < y1 else empty_row)
                    for y in range(height)) + comp.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6,
                                                              0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def strip_png(width: int = 39_000_000) -> bytes:
    """39,000,000 x 1: under the pixel limit, but no photo (a few KB)."""
    comp = zlib.compressobj(9)
    idat = comp.compress(b"\0") + b"".join(comp.compress(b"\xff" * 1_000_000)
                                           for _ in range(width // 1_000_000)) + comp.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, 1, 8, 0, 0, 0,
                                                              0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def post(server: EdgeServer, path: str, data: bytes, name: str) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(server.url + path, data=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def rss_mb(server: EdgeServer) -> dict[str, float]:
    assert server.proc is not None
    out = {}
    with open(f"/proc/{server.proc.pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def reset_peak(server: EdgeServer) -> None:
    assert server.proc is not None
    with open(f"/proc/{server.proc.pid}/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = EdgeServer(tmp_path_factory.mktemp("mem") / "var")
    server.start()
    try:
        # warm: the libraries, the OCR engine's models, the HTTP threads
        small = (DATA / "barcodes" / "code128-2__12.webp").read_bytes()
        assert post(server, "/api/v1/decode", small, "small.webp")[0] == 200
        waybill = (DATA / "waybills" / "barcode_0031_JT.jpg").read_bytes()
        assert post(server, "/api/v1/waybills", waybill, "jt.jpg")[0] == 201
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_a_png_bomb_decodes_within_the_memory_budget(served) -> None:
    bomb = png_bomb()
    assert len(bomb) < 300_000
    before = rss_mb(served)["VmRSS"]
    reset_peak(served)
    status, body = post(served, "/api/v1/decode", bomb, "bomb.png")
    assert status == 200, body
    assert [s["text"] for s in body["symbols"]] == [CODE]
    peak = rss_mb(served)["VmHWM"]
    # Before: 6300 x 6300 RGBA decoded whole, composited, converted: +600 MB. Now the image
    # work holds at most image_memory_mb (256) whatever it reads; measured: ~+40 MB.
    assert peak - before < memory.DEFAULT_MEMORY_MB, (before, peak)


@pytest.mark.slow
def test_bombs_at_once_stay_within_the_budget_and_memory_goes_back(served) -> None:
    bomb = png_bomb()
    before = rss_mb(served)["VmRSS"]
    reset_peak(served)
    with ThreadPoolExecutor(4) as pool:
        decodes = [pool.submit(post, served, "/api/v1/decode", bomb, "bomb.png")
                   for _ in range(3)]
        waybill = pool.submit(post, served, "/api/v1/waybills", bomb, "bomb.png")
        answers = [f.result() for f in decodes] + [waybill.result()]
    assert [a[0] for a in answers] == [200, 200, 200, 201], answers
    assert all(CODE in json.dumps(a[1]) for a in answers)
    peak = rss_mb(served)["VmHWM"]
    assert peak - before < memory.DEFAULT_MEMORY_MB + 32, (before, peak)  # 4 x 160 MB before
    time.sleep(1.0)
    after = rss_mb(served)["VmRSS"]
    assert after - before < 64, (before, after)  # freed memory went back to the system


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/api/v1/decode", "/api/v1/waybills"])
def test_an_absurd_shape_is_a_4xx_json_answer(served, path: str) -> None:
    status, body = post(served, path, strip_png(), "strip.png")
    assert status == 400 and body["error"] == "bad_shape"
    assert "39000000x1" in body["message"]
