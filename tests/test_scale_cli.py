"""``scanedge scale-sim`` as a process on a real pseudo-terminal and on TCP, read by
``scanedge scale`` (the settings' scale) and by the reader; a weight typed on its standard input
changes what it says; bad arguments are one line (docs/scale.md)."""

import json
import re
import subprocess

import pytest

from scanedge.edge.domain.scale import parse_scale_address
from scanedge.edge.scale import ScaleReader
from tests.support import SCANEDGE, cli_env, free_port, run_cli, wait_until


class ScaleSimProcess:
    def __init__(self, tmp_path, *args: str) -> None:
        self.proc = subprocess.Popen([SCANEDGE, "scale-sim", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=cli_env(tmp_path))
        banner = self.proc.stdout.readline()
        match = re.search(r'scale = "([^"]+)"', banner)
        assert match, banner + self.proc.stderr.read()
        self.address = match.group(1)

    def type(self, line: str) -> str:
        """A line on its standard input; its answer."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def sim_process(tmp_path):
    started = []

    def start(*args: str) -> ScaleSimProcess:
        started.append(ScaleSimProcess(tmp_path, *args))
        return started[-1]

    yield start
    for sim in started:
        sim.stop()


def test_scale_sim_on_a_pseudo_terminal_is_read_by_scanedge_scale(tmp_path, sim_process):
    sim = sim_process("--pty", "--protocol", "sics", "--weight", "0.85")
    assert sim.address.startswith("serial:///dev/pts/") and sim.address.endswith("protocol=sics")
    out = run_cli("scale", data_dir=tmp_path, SCANEDGE_SCALE=sim.address).stdout
    reading = json.loads(out)
    assert (reading["state"], reading["weight_kg"]) == ("stable", 0.85)
    assert reading["scale"].startswith("serial:///dev/pts/")


def test_a_weight_and_a_mode_typed_into_scale_sim_change_what_it_says(tmp_path, sim_process):
    sim = sim_process("--listen", f"127.0.0.1:{free_port()}", "--weight", "1.5", "--unit", "g")
    assert sim.address.startswith("tcp://127.0.0.1:")
    reader = ScaleReader(parse_scale_address(sim.address), retry_s=0.2).start()
    try:
        wait_until(lambda: reader.state().weight_kg == 1.5, timeout=10, what="1.5 kg")
        assert "2.25 kg" in sim.type("2.25")
        wait_until(lambda: reader.state().weight_kg == 2.25, timeout=10, what="2.25 kg")
        assert "unstable" in sim.type("unstable")
        wait_until(lambda: reader.state().state == "unstable", timeout=10, what="moving")
        assert "mode ok" in sim.type("ok")
        assert "a weight in kg" in sim.type("heavy")  # neither: said, and nothing changes
        assert "a weight in kg" in sim.type("nan")
        wait_until(lambda: reader.state().weight_kg == 2.25, timeout=10, what="steady again")
    finally:
        reader.stop()


def test_scanedge_scale_without_a_scale_or_a_steady_weight(tmp_path, sim_process):
    none = run_cli("scale", data_dir=tmp_path, check=False)
    assert none.returncode == 2 and "no scale configured" in none.stderr
    sim = sim_process("--pty", "--mode", "unstable")
    moving = json.loads(run_cli("scale", "--timeout", "0.5", data_dir=tmp_path,
                                SCANEDGE_SCALE=sim.address).stdout)
    assert moving["state"] == "unstable" and moving["weight_kg"] is None


@pytest.mark.parametrize(("args", "says"), [
    (["--mode", "broken"], "--mode 'broken'"),
    (["--protocol", "modbus"], "--protocol 'modbus'"),
    (["--unit", "stone"], "--unit 'stone'"),
    (["--listen", "nowhere"], "--listen 'nowhere'"),
    (["--interval", "0"], "--interval"),
    (["--pty", "--listen", "127.0.0.1:1"], "not allowed with"),
])
def test_bad_scale_sim_arguments_are_one_line(tmp_path, args, says):
    proc = run_cli("scale-sim", *args, data_dir=tmp_path, check=False)
    assert proc.returncode == 2 and says in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_bad_scale_setting_stops_with_one_line_naming_it(tmp_path):
    proc = run_cli("scale", data_dir=tmp_path, check=False, SCANEDGE_SCALE="usb://1:2")
    assert proc.returncode == 2 and "scale" in proc.stderr and "serial://" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("scale", data_dir=tmp_path, check=False, SCANEDGE_WEIGHT_TOLERANCE="lots")
    assert proc.returncode == 2 and "weight_tolerance" in proc.stderr
