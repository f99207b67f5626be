"""Memory and time of image work: decompression bombs, big photos, bursts; raw libraries beside.

    .venv/bin/python benchmarks/image_memory.py [--concurrency 8] [--skip-server]
                                                [--code-root OTHER_CHECKOUT] [--repeat 2]

Makes its images in a temporary directory (a PNG bomb is written row by row: it never exists
in memory here either):

* ``bomb-rgba.png``: 6300 x 6300 RGBA (39.7 MP, under the 40 MP limit), ~150 KB: a transparent
  page with a Code 128 in a white box;
* ``photo-40mp.jpg``: 7744 x 5164 JPEG with the same code;
* ``photo-12mp.jpg``: 4000 x 3000, the size of a phone photo, same code;
* ``strip.png``: 39,000,000 x 1 (a shape, not a size, that is wrong).

Part 1, one image per fresh process (RSS from /proc/self/status, after the libraries are loaded
and one small image was read): the raw libraries (``cv2.imread`` gray + zxing-cpp; Pillow's
``Image.open().convert('L')`` + zxing-cpp) against ``scanedge decode`` and ``scanedge waybill``
(library calls) on the same file.

Part 2, a real ``scanedge serve`` process (its RSS read from /proc/PID/status; its peak reset
with /proc/PID/clear_refs before each phase): one bomb, N bombs at once on /api/v1/decode and on
/api/v1/waybills, then RSS a few seconds after the burst. Beside it, the raw libraries doing the
same burst in N threads of one process.

``--code-root`` runs another checkout's code (``git archive COMMIT | tar -x -C DIR``) with
this venv: the "before" column of docs/benchmarks.md.

The images are made once; each of ``--repeat`` runs (default 2: a run takes ~2 min) does both
parts, with a fresh served process. Prints markdown tables (docs/benchmarks.md, "Image memory")
of the median [min-max] of the runs; the product's time and memory also as ratios to the raw
libraries' in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

from _common import Cell, Num, add_repeat, free_port, import_root, run_repeated, runs_footer, table

ROOT = Path(__file__).resolve().parent.parent
CODE_ROOT = ROOT  # whose ocr/ and edge/ are measured (--code-root)
PY = sys.executable
SCANEDGE = str(Path(PY).with_name("scanedge"))
CODE = "SF1385628716739"
SMALL = ROOT / "tests" / "data" / "barcodes" / "code128-2__12.webp"
WAYBILL = ROOT / "tests" / "data" / "waybills" / "barcode_0031_JT.jpg"


# ---------------------------------------------------------------------------------------------
# images


def _barcode(scale: int):
    import cv2
    import numpy as np
    import zxingcpp

    img = np.asarray(zxingcpp.create_barcode(CODE, zxingcpp.BarcodeFormat.Code128)
                     .to_image(scale=scale))
    return cv2.copyMakeBorder(img, 10 * scale, 10 * scale, 10 * scale, 10 * scale,
                              cv2.BORDER_CONSTANT, value=255)


def png_bomb(path: Path, width: int = 6300, height: int = 6300) -> None:
    """RGBA, transparent black everywhere but a white box with a Code 128 in the middle."""
    import numpy as np

    code = _barcode(6)
    ch, cw = code.shape
    y0, x0 = (height - ch) // 2, (width - cw) // 2
    empty = b"\0" + bytes(width * 4)
    rows: dict[int, bytes] = {}

    def row(y: int) -> bytes:
        if not y0 <= y < y0 + ch:
            return empty
        line = code[y - y0]
        key = hash(line.tobytes())
        if key not in rows:
            px = np.zeros((width, 4), np.uint8)
            px[x0:x0 + cw, :3] = line[:, None]
            px[x0:x0 + cw, 3] = 255
            rows[key] = b"\0" + px.tobytes()
        return rows[key]

    comp = zlib.compressobj(9)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        _chunk(f, b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
        buf = bytearray()
        for y in range(height):
            buf += comp.compress(row(y))
            if len(buf) > 1 << 16:
                _chunk(f, b"IDAT", bytes(buf))
                buf.clear()
        buf += comp.flush()
        _chunk(f, b"IDAT", bytes(buf))
        _chunk(f, b"IEND", b"")


def png_strip(path: Path, width: int = 39_000_000) -> None:
    comp = zlib.compressobj(9)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        _chunk(f, b"IHDR", struct.pack(">IIBBBBB", width, 1, 8, 0, 0, 0, 0))
        data = comp.compress(b"\0" + b"\xff" * width) + comp.flush()
        _chunk(f, b"IDAT", data)
        _chunk(f, b"IEND", b"")


def _chunk(f, kind: bytes, payload: bytes) -> None:
    f.write(struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def jpeg_photo(path: Path, width: int, height: int) -> None:
    """A smooth, textured page (a photo compresses like this) with the code in the middle."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(7)
    small = rng.integers(90, 230, (height // 64 + 1, width // 64 + 1)).astype(np.uint8)
    page = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    code = _barcode(max(2, width // 1300))
    ch, cw = code.shape
    y0, x0 = (height - ch) // 2, (width - cw) // 2
    page[y0:y0 + ch, x0:x0 + cw] = code
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(page, cv2.COLOR_GRAY2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    path.write_bytes(data.tobytes())


# ---------------------------------------------------------------------------------------------
# part 1: one image per process

CHILD = r"""
import json, sys, time
sys.path.insert(0, ROOT)
def status():
    out = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) / 1024
    return out
what, path, small = sys.argv[1], sys.argv[2], sys.argv[3]
found, error = [], ""
if what.startswith("raw"):
    import cv2, numpy as np, zxingcpp
    from PIL import Image
    def run(p):
        if what == "raw-cv2":
            g = cv2.imread(p, cv2.IMREAD_GRAYSCALE)
            if g is None:
                raise ValueError("cv2.imread: None")
        else:
            Image.MAX_IMAGE_PIXELS = None
            g = np.asarray(Image.open(p).convert("L"))
        return [b.text for b in zxingcpp.read_barcodes(g)]
elif what == "decode":
    from scanedge.ocr.decode import decode_report
    from scanedge.ocr.views import warm_up
    warm_up()
    def run(p):
        return [s.text for s in decode_report(p, budget_ms=10**9).symbols]
else:
    from scanedge.ocr.waybill import read_waybill
    def run(p):
        r = read_waybill(p, budget_ms=10**9)
        return [r.tracking_number] if r.tracking_number else []
run(small)
base = status()
t = time.perf_counter()
try:
    found = run(path)
except Exception as e:
    error = getattr(e, "code", type(e).__name__)
ms = (time.perf_counter() - t) * 1000
peak = status()
print(json.dumps({"base": base["VmRSS"], "peak": peak["VmHWM"], "after": peak["VmRSS"],
                  "ms": ms, "found": found, "error": error}))
"""


def one_process(what: str, path: Path, small: Path) -> dict:
    code = CHILD.replace("ROOT", repr(import_root(CODE_ROOT)))
    proc = subprocess.run([PY, "-c", code, what, str(path), str(small)], capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
        return {"base": 0, "peak": 0, "after": 0, "ms": 0, "found": [], "error": tail[0][:60]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# part 2: a real scanedge serve


class Served:
    def __init__(self, data_dir: Path, memory_mb: float | None) -> None:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCANEDGE_")}
        env.update(SCANEDGE_DATA_DIR=str(data_dir), SCANEDGE_LISTEN=f"127.0.0.1:{port}",
                   SCANEDGE_LOG_LEVEL="warning", PYTHONPATH=import_root(CODE_ROOT))
        if memory_mb:
            env["SCANEDGE_IMAGE_MEMORY_MB"] = str(memory_mb)
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([SCANEDGE, "serve"], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("scanedge serve did not start")

    def status(self) -> dict[str, float]:
        out = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) / 1024
        return out

    def reset_peak(self) -> None:
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS

    def post(self, path: str, data: bytes, name: str) -> tuple[int, dict, float]:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
                f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
        req = urllib.request.Request(self.url + path, data=body, headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=600) as r:
                status, out = r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            status, out = e.code, json.loads(e.read() or b"{}")
        return status, out, (time.perf_counter() - t) * 1000

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def burst(server: Served, path: str, data: bytes, name: str, n: int) -> dict:
    server.reset_peak()
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(server.status()["VmRSS"])
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda _: server.post(path, data, name), range(n)))
    wall = (time.perf_counter() - t) * 1000
    stop.set()
    sampler.join()
    peak = server.status()["VmHWM"]
    time.sleep(3)
    after = server.status()["VmRSS"]
    codes: dict[int, int] = {}
    for status, _, _ in results:
        codes[status] = codes.get(status, 0) + 1
    first = results[0][1]
    found = [s["text"] for s in first.get("symbols", [])] or (
        [first["tracking_number"]] if first.get("tracking_number") else [])
    return {"peak": peak, "after": after, "wall": wall,
            "latency": statistics.median(r[2] for r in results),
            "codes": codes, "found": found, "error": first.get("error", "")}


RAW_BURST = r"""
import json, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import cv2, zxingcpp
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
path, n = sys.argv[1], int(sys.argv[2])
cv2.setNumThreads(1)
zxingcpp.read_barcodes(cv2.imread(sys.argv[3], cv2.IMREAD_GRAYSCALE))
base = rss()
t = time.perf_counter()
def one(_):
    return [b.text for b in zxingcpp.read_barcodes(cv2.imread(path, cv2.IMREAD_GRAYSCALE))]
with ThreadPoolExecutor(n) as pool:
    found = list(pool.map(one, range(n)))
wall = (time.perf_counter() - t) * 1000
peak = hwm()
time.sleep(3)
print(json.dumps({"base": base, "peak": peak, "after": rss(), "wall": wall, "found": found[0]}))
"""


def raw_burst(path: Path, n: int) -> dict:
    proc = subprocess.run([PY, "-c", RAW_BURST, str(path), str(n), str(SMALL)],
                          capture_output=True, text=True, timeout=600)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------


def fmt_found(r: dict) -> str:
    if r.get("error"):
        return f"refused: {r['error']}"
    return "read " + ", ".join(r["found"]) if r["found"] else "nothing read"


def part_one(images: dict[str, Path]) -> list[list[Cell]]:
    """Each image with each reader in a fresh process; time and memory as ratios to the raw
    ``cv2.imread`` + zxing-cpp process on the same image in this run."""
    rows: list[list[Cell]] = []
    readers = (("raw-cv2", "raw: cv2.imread gray + zxing-cpp", SMALL),
               ("raw-pil", "raw: Pillow convert('L') + zxing-cpp", SMALL),
               ("decode", "scanedge decode (no budget)", SMALL),
               ("waybill", "scanedge waybill (rapidocr)", WAYBILL))
    for name, path in images.items():
        raw: dict = {}
        for what, label, warm in readers:
            r = one_process(what, path, warm)
            raw = raw or r
            grown, raw_grown = r["peak"] - r["base"], raw["peak"] - raw["base"]
            rows.append([name, f"{path.stat().st_size / 1024:.0f} KB", label, Num(r["ms"]),
                         Num(r["base"]), Num(r["peak"]), Num(grown),
                         Num(r["ms"] / raw["ms"], "{:.2f}") if raw["ms"] >= 1 else "-",
                         Num(grown / raw_grown, "{:.2f}") if raw_grown >= 1 else "-",
                         fmt_found(r)])
    return rows


def part_two(images: dict[str, Path], n: int, memory_mb: float | None,
             work: Path) -> list[list[Cell]]:
    """A served process through its phases, then the raw libraries' burst of the bomb; each
    bomb burst's wall time and peak as ratios to the raw burst's in this run."""
    rows: list[list[Cell]] = []
    server = Served(work, memory_mb)
    try:
        server.post("/api/v1/decode", SMALL.read_bytes(), SMALL.name)
        server.post("/api/v1/waybills", WAYBILL.read_bytes(), WAYBILL.name)
        time.sleep(1)
        baseline = server.status()["VmRSS"]
        rows.append(["warm (one small decode and one waybill read)", "", "-", "-",
                     Num(baseline), Num(server.status()["VmHWM"]), "-", ""])
        bomb = images["bomb-rgba.png"].read_bytes()
        phases = [
            ("1 bomb, /decode", "/api/v1/decode", bomb, 1),
            (f"{n} bombs at once, /decode", "/api/v1/decode", bomb, n),
            (f"{n} bombs at once, /waybills", "/api/v1/waybills", bomb, n),
            (f"{n} 40 MP JPEGs at once, /decode", "/api/v1/decode",
             images["photo-40mp.jpg"].read_bytes(), n),
            (f"{n} strips 39,000,000x1, /decode", "/api/v1/decode",
             images["strip.png"].read_bytes(), n),
        ]
        for label, path, data, count in phases:
            before = server.status()["VmRSS"]
            r = burst(server, path, data, "x.png", count)
            answers = ", ".join(f"{c}x{k}" for k, c in sorted(r["codes"].items()))
            rows.append([label, answers, Num(r["wall"]), Num(r["latency"]), Num(before),
                         Num(r["peak"]), Num(r["after"]), fmt_found(r)])
    finally:
        server.stop()
    raw = raw_burst(images["bomb-rgba.png"], n)
    for row in rows:  # a burst of n bombs against the raw libraries' burst of n
        bombs = f"{n} bombs at once" in str(row[0])
        row += ([Num(cast(Num, row[2]).value / raw["wall"], "{:.2f}"),
                 Num(cast(Num, row[5]).value / raw["peak"], "{:.2f}")] if bombs else ["-", "-"])
    rows.append([f"raw: {n} threads of cv2.imread gray + zxing-cpp on the bomb, one process", "",
                 Num(raw["wall"]), "-", Num(raw["base"]), Num(raw["peak"]), Num(raw["after"]),
                 f"read {', '.join(raw['found']) or 'nothing'}", "1", "1"])
    return rows


def one_run(images: dict[str, Path], args: argparse.Namespace,
            work: Path) -> dict[str, list[list[Cell]]]:
    out = {"one": part_one(images)}
    if not args.skip_server:
        with tempfile.TemporaryDirectory(dir=work) as var:  # a fresh data dir per run
            out["served"] = part_two(images, args.concurrency, args.memory_mb, Path(var))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--memory-mb", type=float, help="image_memory_mb for the served process")
    ap.add_argument("--code-root", type=Path, help="measure another checkout's code")
    add_repeat(ap, 2, why="a run takes ~2 min on 2 busy cores")
    args = ap.parse_args(argv)
    global CODE_ROOT
    if args.code_root:
        CODE_ROOT = args.code_root.resolve()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="scanedge-mem-") as tmp:
        d = Path(tmp)
        images = {
            "bomb-rgba.png": d / "bomb-rgba.png",
            "photo-40mp.jpg": d / "photo-40mp.jpg",
            "photo-12mp.jpg": d / "photo-12mp.jpg",
            "strip.png": d / "strip.png",
        }
        png_bomb(images["bomb-rgba.png"])
        jpeg_photo(images["photo-40mp.jpg"], 7744, 5164)
        jpeg_photo(images["photo-12mp.jpg"], 4000, 3000)
        png_strip(images["strip.png"])
        runs, loads = run_repeated(args.repeat, lambda: one_run(images, args, d))

    print("### One image, one process (RSS MB: after warm-up / peak / peak minus warm-up)\n")
    print(table(["image", "file", "reader", "time ms", "RSS warm", "RSS peak", "peak - warm",
                 "time / raw cv2's", "peak - warm / raw cv2's", "result"],
                [r["one"] for r in runs]))
    if not args.skip_server:
        print(f"\n### scanedge serve, one process (RSS MB read from /proc/PID/status), "
              f"bursts of {args.concurrency}\n")
        print(table(["phase", "answers", "wall ms", "median latency ms", "RSS before",
                     "RSS peak", "RSS 3 s after", "result", "wall / raw threads'",
                     "peak / raw threads'"], [r["served"] for r in runs]))
    print(f"\n{runs_footer(loads, started)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
