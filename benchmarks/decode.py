"""Barcode decoding benchmark: raw pyzbar, raw zxing-cpp and scanedge's cascade, same run.

    .venv/bin/python benchmarks/decode.py [DATASET_DIR] [--budget-ms 300] [--no-frames] [--repeat 3]
    .venv/bin/python benchmarks/decode.py --build-heldout ZXING_CPP_CHECKOUT OUT_DIR

DATASET_DIR (default ../shared/data/barcodes) holds images and ``manifest.csv`` with columns
``file, format, expected_text`` (format ``none`` = no code in the image; expected_text is a
JSON string body). Prints markdown tables:

1. overall, per reader: read rate, wrong reads, false positives, median / p95 / max ms;
2. per format, per reader: read and wrong;
3. 1920x1080 frames: each sample with a code pasted at a random place on a cluttered background
   (the no-code images of the set, scaled up), and the backgrounds alone (and mirrored).

Timing starts from a decoded grayscale array for every reader (file decoding is the same for
all and is not what is compared). A read is "wrong" when a reader returns any text other than
the expected one for an image with one code; a "false positive" is any text from an image
with no code. scanedge runs twice: with the time budget (a safety net: "cut" counts the images
where it stopped the cascade) and without it (the plan alone: what every machine reads).
Every run reads every image with every reader; the tables give each number as median [min-max]
of the runs and each reader's median as a ratio to zxing-cpp's in the same run.

``--build-heldout`` makes a set of photos the cascade was never tuned on: the upstream samples
(zxing-cpp's ``test/samples``) of the same folders as the dev set that the dev set does not
use (its ``sources.csv``), with the same ``manifest.csv`` columns.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import Cell, Num, add_repeat, percentile, run_repeated, runs_footer, table  # noqa: E402

from scanedge.ocr.decode import decode_report  # noqa: E402
from scanedge.ocr.images import load_image  # noqa: E402
from scanedge.ocr.views import warm_up  # noqa: E402

DEFAULT_SET = ROOT.parent / "shared" / "data" / "barcodes"
FRAME_SIZE = (1920, 1080)


@dataclass
class Sample:
    file: str
    format: str  # manifest format, "none" for no code
    expected: str
    gray: np.ndarray


@dataclass
class Tally:
    n_codes: int = 0
    n_none: int = 0
    read: int = 0
    wrong: int = 0
    false_pos: int = 0
    ms: list[float] = field(default_factory=list)
    wrong_files: list[str] = field(default_factory=list)
    over_budget: int = 0
    cut: int = 0  # the safety net stopped the cascade

    def add(self, sample: Sample, texts: list[str], ms: float) -> None:
        self.ms.append(ms)
        if sample.format == "none":
            self.n_none += 1
            if texts:
                self.false_pos += 1
                self.wrong_files.append(f"{sample.file} (no code) -> {texts!r}")
            return
        self.n_codes += 1
        if sample.expected in texts:
            self.read += 1
        if any(t != sample.expected for t in texts):
            self.wrong += 1
            self.wrong_files.append(f"{sample.file}: expected {sample.expected!r}, got {texts!r}")


def pyzbar_reader(gray: np.ndarray) -> list[str]:
    from pyzbar import pyzbar

    return [d.data.decode("utf-8", errors="replace") for d in pyzbar.decode(gray)]


def zxing_reader(gray: np.ndarray) -> list[str]:
    import zxingcpp

    # Plain text mode: FNC1 as GS, like the expected texts (the default HRI mode writes "(01)")
    return [b.text for b in zxingcpp.read_barcodes(gray, text_mode=zxingcpp.TextMode.Plain)]


CUT: list[bool] = []  # whether the last product read was cut short by the safety net


def product_reader(budget_ms: float | None) -> Callable[[np.ndarray], list[str]]:
    def read(gray: np.ndarray) -> list[str]:
        report = decode_report(gray, budget_ms=budget_ms)
        CUT[:] = [report.cut_short]
        return [s.text for s in report.symbols]

    return read


def load_set(root: Path) -> list[Sample]:
    samples = []
    with open(root / "manifest.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            expected = json.loads('"' + row["expected_text"] + '"')
            gray = load_image(root / row["file"], grayscale=True)
            samples.append(Sample(row["file"], row["format"], expected, gray))
    return samples


def run(readers: dict[str, Callable[[np.ndarray], list[str]]], samples: list[Sample],
        budget_ms: float) -> dict[str, dict[str, Tally]]:
    """tallies[reader][format or 'all']"""
    tallies: dict[str, dict[str, Tally]] = {name: defaultdict(Tally) for name in readers}
    for sample in samples:
        for name, reader in readers.items():
            CUT[:] = [False]
            start = time.perf_counter()
            texts = reader(sample.gray)
            ms = (time.perf_counter() - start) * 1000.0
            for key in ("all", sample.format):
                tallies[name][key].add(sample, texts, ms)
                if key == "all":
                    tallies[name][key].over_budget += ms > budget_ms
                    tallies[name][key].cut += CUT[0]
    return tallies


def frames(samples: list[Sample], seed: int = 7) -> tuple[list[Sample], list[Sample]]:
    """Codes pasted into 1080p clutter, and the clutter alone."""
    rng = np.random.default_rng(seed)
    backgrounds = [cv2.resize(s.gray, FRAME_SIZE, interpolation=cv2.INTER_LINEAR)
                   for s in samples if s.format == "none"]
    if not backgrounds:  # a set without no-code images: a mid-grey noisy background
        backgrounds = [np.clip(rng.normal(128, 30, FRAME_SIZE[::-1]), 0, 255).astype(np.uint8)]
    with_code, without = [], []
    originals = [s for s in samples if s.format != "none" and s.file.count("__") == 1]
    for i, s in enumerate(originals):
        frame = backgrounds[i % len(backgrounds)].copy()
        h, w = s.gray.shape[:2]
        if h >= FRAME_SIZE[1] or w >= FRAME_SIZE[0]:
            continue
        y = int(rng.integers(0, FRAME_SIZE[1] - h))
        x = int(rng.integers(0, FRAME_SIZE[0] - w))
        frame[y:y + h, x:x + w] = s.gray
        with_code.append(Sample("frame+" + s.file, s.format, s.expected, frame))
    for i, bg in enumerate(backgrounds):
        without.append(Sample(f"frame-empty-{i}", "none", "", bg))
        without.append(Sample(f"frame-empty-{i}-mirrored", "none", "", np.ascontiguousarray(
            bg[:, ::-1])))
    return with_code, without


def pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:.1f} %" if b else "-"


def ms_cells(ms: list[float]) -> list[Cell]:
    """median, p95 and max of one run's times, as table cells."""
    if not ms:
        return ["-", "-", "-"]
    return [Num(statistics.median(ms), "{:.1f}"), Num(percentile(ms, 0.95), "{:.1f}"),
            Num(max(ms))]


def ratio(ms: list[float], raw_ms: list[float]) -> Cell:
    """This reader's median over zxing-cpp's median in the same run (the load moves both)."""
    if not ms or not raw_ms:
        return "-"
    return Num(statistics.median(ms) / statistics.median(raw_ms), "{:.2f}")


def one_run(readers: dict[str, Callable[[np.ndarray], list[str]]], samples: list[Sample],
            frame_sets: tuple[list[Sample], list[Sample]] | None,
            budget_ms: float) -> dict[str, list[list[Cell]]]:
    """Every reader on the set (and the frames): the rows of each table for one run."""
    tallies = run(readers, samples, budget_ms)
    raw = tallies["zxing-cpp alone"]["all"].ms
    out: dict[str, list[list[Cell]]] = {"all": [], "formats": [], "frames": []}
    for name in readers:
        t = tallies[name]["all"]
        out["all"].append([name, f"{t.read}/{t.n_codes} = {pct(t.read, t.n_codes)}", Num(t.wrong),
                           f"{t.false_pos}/{t.n_none}", *ms_cells(t.ms), ratio(t.ms, raw),
                           Num(t.over_budget),
                           Num(t.cut) if name.startswith("scanedge") else "-"])
    for fmt in sorted({s.format for s in samples} - {"none"}):
        row: list[Cell] = [fmt, str(tallies["scanedge decode"][fmt].n_codes)]
        for name in readers:
            t = tallies[name][fmt]
            row.append(f"{pct(t.read, t.n_codes)} / {t.wrong}")
        row += [Num(statistics.median(tallies[name][fmt].ms), "{:.1f}") for name in readers]
        out["formats"].append(row)
    out["wrong"] = [[w] for name in ("scanedge decode", "scanedge decode, no time limit")
                    for w in tallies[name]["all"].wrong_files]
    if frame_sets is not None:
        ft_code = run(readers, frame_sets[0], budget_ms)
        ft_none = run(readers, frame_sets[1], budget_ms)
        raw = ft_code["zxing-cpp alone"]["all"].ms + ft_none["zxing-cpp alone"]["all"].ms
        for name in readers:
            a, b = ft_code[name]["all"], ft_none[name]["all"]
            out["frames"].append([
                name, f"{a.read}/{a.n_codes} = {pct(a.read, a.n_codes)}", Num(a.wrong),
                *ms_cells(a.ms)[:2], f"{b.false_pos}/{b.n_none}", *ms_cells(b.ms)[:2],
                Num(max(a.ms + b.ms)), ratio(a.ms + b.ms, raw),
                Num(a.cut + b.cut) if name.startswith("scanedge") else "-"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", nargs="?", default=str(DEFAULT_SET))
    ap.add_argument("--budget-ms", type=float, default=300.0,
                    help="the product's time budget (a safety net; its plan is the same)")
    ap.add_argument("--no-frames", action="store_true", help="skip the 1080p frames")
    ap.add_argument("--build-heldout", nargs=2, metavar=("ZXING_CPP_CHECKOUT", "OUT_DIR"),
                    help="make the held-out set from a zxing-cpp checkout, then stop")
    add_repeat(ap)
    args = ap.parse_args(argv)
    if args.build_heldout:
        return build_heldout(Path(args.build_heldout[0]), Path(args.build_heldout[1]))
    root = Path(args.dataset)
    if not (root / "manifest.csv").is_file():
        print(f"benchmarks/decode.py: {root}/manifest.csv not found", file=sys.stderr)
        return 2
    started = time.monotonic()
    warm_up()
    samples = load_set(root)
    readers = {"pyzbar alone": pyzbar_reader, "zxing-cpp alone": zxing_reader,
               "scanedge decode": product_reader(args.budget_ms),
               "scanedge decode, no time limit": product_reader(None)}
    frame_sets = None if args.no_frames else frames(samples)
    runs, loads = run_repeated(args.repeat,
                               lambda: one_run(readers, samples, frame_sets, args.budget_ms))
    n_codes = sum(1 for s in samples if s.format != "none")
    n_none = len(samples) - n_codes

    print(f"### Dev set: {root.name}, {n_codes} codes + {n_none} images without a code\n")
    print(table(["reader", "read", "wrong", "false positives", "median ms", "p95 ms", "max ms",
                 "median / zxing-cpp's", "over budget", "cut by the safety net"],
                [r["all"] for r in runs]))
    print("\n### Per format (read / wrong; median ms)\n")
    print(table(["format", "n", *readers, *(f"{name}: median ms" for name in readers)],
                [r["formats"] for r in runs]))
    if frame_sets is not None:
        print(f"\n### 1920x1080 frames: {len(frame_sets[0])} with one code (a sample pasted on "
              f"clutter), {len(frame_sets[1])} without\n")
        print(table(["reader", "read (one code)", "wrong", "median ms", "p95 ms",
                     "false positives (no code)", "median ms", "p95 ms", "max ms (all)",
                     "median / zxing-cpp's (all)", "cut"], [r["frames"] for r in runs]))
    wrongs = sorted({w[0] for r in runs for w in r["wrong"]})
    if wrongs:
        print("\nscanedge decode, reads that differ from the manifest (any run):")
        for w in wrongs:
            print(f"- {w}")
    print(f"\n{runs_footer(loads, started)}")
    return 0


HELDOUT_KINDS = {"code128": "code128", "ean13": "ean13", "qrcode": "qrcode",
                 "datamatrix": "datamatrix", "pdf417": "pdf417", "itf": "itf",
                 "code39": "code39", "falsepositives": "none"}
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".pgm", ".pbm")
# The dev set's ATTRIBUTION.md corrects upstream's ground truth for this photo (the digits
# printed under its bars); the held-out set does the same.
HELDOUT_CORRECTIONS = {"test/samples/ean13-2/23.webp": "9784872348880"}


def build_heldout(checkout: Path, out: Path) -> int:
    """Upstream samples of the dev set's folders that the dev set does not use."""
    import subprocess

    sources = DEFAULT_SET / "sources.csv"
    with open(sources, newline="", encoding="utf-8") as f:
        used = {r["source_path"] for r in csv.DictReader(f)}
    def git(*args: str) -> bytes:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True,
                              check=True).stdout

    # the commit's tree (a clone or a bare mirror alike)
    listing = git("ls-tree", "-r", "--name-only", "HEAD", "test/samples").decode().split()
    present = set(listing)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for rel in sorted(listing):
        p = Path(rel)
        kind = HELDOUT_KINDS.get(p.parent.name.rsplit("-", 1)[0])
        if kind is None or p.suffix.lower() not in IMAGE_EXTS or rel in used:
            continue
        text = ""
        if kind != "none":
            txt = str(p.with_suffix(".txt"))
            if txt not in present:
                continue
            text = git("show", f"HEAD:{txt}").decode("utf-8", errors="replace")
            if kind in ("ean13", "itf"):
                text = text.strip()
            text = HELDOUT_CORRECTIONS.get(rel, text)
        name = f"{p.parent.name}__{p.stem}{p.suffix}".replace("#", "n")
        (out / name).write_bytes(git("show", f"HEAD:{rel}"))
        rows.append((name, kind, json.dumps(text, ensure_ascii=False)[1:-1]))
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file", "format", "expected_text"])
        w.writerows(rows)
    print(f"{len(rows)} images in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
