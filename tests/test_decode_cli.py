"""``scanedge decode`` as installed, in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import run_cli

DATA = Path(__file__).parent / "data" / "barcodes"


def test_json_lines_and_bad_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    files = [DATA / "ean13-1__8.webp", empty, tmp_path / "missing.png", text,
             DATA / "falsepositives-1__21.webp", DATA / "pdf417-3__12.webp"]
    proc = run_cli("decode", *map(str, files), "--json", data_dir=tmp_path / "var",
                   check=False)
    assert proc.returncode == 2
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]  # every file, in order
    ean, bad_empty, bad_missing, bad_text, nothing, pdf = lines
    assert set(ean) == {"file", "symbols", "elapsed_ms"}
    assert [(s["format"], s["text"]) for s in ean["symbols"]] == [("EAN13", "8480017507990")]
    assert isinstance(ean["elapsed_ms"], float)
    assert (bad_empty["error"], bad_missing["error"], bad_text["error"]) == (
        "empty", "not_found", "not_an_image")
    assert nothing["symbols"] == [] and "error" not in nothing
    assert pdf["symbols"][0]["text"].startswith("[)>\x1e01\x1d")
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 4  # one line per bad file, then the summary
    assert errors[0].startswith(f"scanedge decode: {empty}: ")
    assert "3 of 6 files could not be read" in errors[-1]
    assert "Traceback" not in proc.stderr


def test_table_and_directory(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("datamatrix-3__n794.png", "code39-1__4.png"):
        (folder / name).write_bytes((DATA / name).read_bytes())
    proc = run_cli("decode", str(folder), data_dir=tmp_path / "var")
    assert proc.returncode == 0 and proc.stderr == ""  # no progress bar: stderr is not a tty
    out = proc.stdout.splitlines()
    assert out[0].split() == ["FILE", "FORMAT", "TEXT", "MS"]
    assert any("Code39" in line and "ABC123" in line for line in out)
    assert any("DataMatrix (GS1)" in line and "<GS>" in line for line in out)


def test_bad_budget_is_a_one_line_error(tmp_path: Path) -> None:
    proc = run_cli("decode", str(DATA / "code39-1__4.png"), "--budget-ms", "-5",
                   data_dir=tmp_path / "var", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    # 0 turns the safety net off: the same steps, whatever the machine's speed
    proc = run_cli("decode", str(DATA / "code39-1__4.png"), "--budget-ms", "0", "--json",
                   data_dir=tmp_path / "var")
    assert json.loads(proc.stdout)["symbols"][0]["text"] == "ABC123"


def test_absurd_shapes_are_one_line_and_exit_2(tmp_path: Path) -> None:
    from tests.test_decode_images import png_header_only
    from tests.test_images_memory import strip_png

    strip = tmp_path / "strip.png"
    strip.write_bytes(strip_png())  # 39,000,000 x 1: under the pixel limit
    tall = tmp_path / "tall.png"
    tall.write_bytes(png_header_only(1, 39_000_000))
    good = DATA / "code39-1__4.png"
    for command in ("decode", "waybill"):
        proc = run_cli(command, str(strip), str(good), str(tall), "--json",
                       data_dir=tmp_path / "var", check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        errors = proc.stderr.strip().splitlines()
        assert len(errors) == 3, errors  # one line per bad file, then the summary
        assert "39000000x1" in errors[0] and "1x39000000" in errors[1]
        rows = [json.loads(line) for line in proc.stdout.splitlines()]
        assert [r.get("error") for r in rows] == ["bad_shape", None, "bad_shape"]
