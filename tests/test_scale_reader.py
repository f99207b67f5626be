"""The scale reader (edge/scale.py, pyserial) against the virtual scale (edge/scale_sim.py) over a
real pseudo-terminal and a real TCP port, in both protocols: stable readings only; unstable,
overload and a pulled cable read as such, and the reader comes back by itself."""

import os

import pytest
import serial

from scanedge.edge.domain.scale import parse_frame, parse_scale_address
from scanedge.edge.scale import ScaleReader
from scanedge.edge.scale_sim import VirtualScale
from tests.support import wait_until

LINKS = [pytest.param(True, id="pty"), pytest.param(False, id="tcp")]
# TCP in the fast loop through the cable test; both protocols there through the pseudo-terminal
LINKS_PTY_FAST = [pytest.param(True, id="pty"), pytest.param(False, id="tcp", marks=pytest.mark.slow)]
PROTOCOLS = ["continuous", "sics"]


def reader_for(scale: VirtualScale, **kwargs) -> ScaleReader:
    return ScaleReader(parse_scale_address(scale.address), poll_s=0.02, retry_s=0.2, **kwargs)


def settles_at(reader: ScaleReader, kg: float, what: str) -> None:
    wait_until(lambda: reader.state().weight_kg == kg, timeout=10, what=what)


@pytest.mark.parametrize("pty", LINKS_PTY_FAST)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_stable_weight_is_read_and_a_moving_or_overloaded_one_is_not(pty, protocol):
    with VirtualScale(protocol=protocol, weight_kg=1.234, pty=pty, interval=0.02) as scale:
        reader = reader_for(scale).start()
        try:
            settles_at(reader, 1.234, "the first stable weight")
            scale.set_mode("unstable")
            wait_until(lambda: reader.state().state == "unstable", timeout=10, what="moving")
            assert reader.state().weight_kg is None  # a parcel being put down is not weighed
            assert reader.state().live_kg is not None  # ... but the display may follow it
            scale.set_mode("overload")
            wait_until(lambda: reader.state().state == "overload", timeout=10, what="overload")
            assert reader.state().weight_kg is None
            scale.set_mode("ok")
            scale.set_weight(0.7)
            settles_at(reader, 0.7, "the next parcel")
        finally:
            reader.stop()


@pytest.mark.parametrize("pty", LINKS)
def test_a_pulled_cable_reads_as_disconnected_and_the_reader_comes_back(pty):
    with VirtualScale(weight_kg=2.5, pty=pty, interval=0.02) as scale:
        reader = reader_for(scale, stale_after_s=0.5).start()
        try:
            settles_at(reader, 2.5, "the weight before the cut")
            scale.set_mode("disconnect")
            wait_until(lambda: reader.state().state == "disconnected", timeout=10,
                       what="the cut noticed")
            assert reader.state().weight_kg is None and reader.state().error
            scale.set_mode("ok")
            scale.set_weight(2.75)
            settles_at(reader, 2.75, "readings again after the cable is back")
            if not pty:  # TCP: the connection was cut and opened again
                assert reader.connections >= 2
        finally:
            reader.stop()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_protocol_auto_reads_a_streaming_scale_and_asks_one_that_must_be_asked(protocol):
    with VirtualScale(protocol=protocol, weight_kg=0.85, pty=True, interval=0.02) as scale:
        address = scale.address.replace(f"protocol={protocol}", "protocol=auto")
        reader = ScaleReader(parse_scale_address(address), poll_s=0.02, retry_s=0.2).start()
        try:
            settles_at(reader, 0.85, f"a {protocol} scale read with protocol auto")
        finally:
            reader.stop()


@pytest.mark.parametrize(("unit", "kg"), [("g", 1.234), ("lb", 1.233771)])
def test_grams_and_pounds_are_read_as_kilograms(unit, kg):
    with VirtualScale(weight_kg=1.234, unit=unit, interval=0.02) as scale:
        reader = reader_for(scale).start()
        try:
            settles_at(reader, kg, f"a weight in {unit}")
        finally:
            reader.stop()


def test_a_scale_that_is_not_there_reads_as_disconnected_with_the_reason():
    reader = ScaleReader(parse_scale_address("serial:///dev/nonexistent-scale"), retry_s=0.2).start()
    try:
        wait_until(lambda: "nonexistent-scale" in (reader.state().error or ""), timeout=10,
                   what="the open error")
        assert reader.state().state == "disconnected"
    finally:
        reader.stop()


def test_the_simulator_speaks_mt_sics_on_a_pseudo_terminal_through_pyserial():
    """The protocol as a serial port sees it, without our reader: pyserial opens the /dev/pts
    path like /dev/ttyUSB0, sends MT-SICS commands and reads the answers."""
    with VirtualScale(protocol="sics", weight_kg=0.85, pty=True) as scale:
        assert os.path.exists(scale.device)
        with serial.serial_for_url(scale.device, baudrate=9600, timeout=2) as port:
            answers = []
            for command in (b"S\r\n", b"SI\r\n", b"XYZ\r\n"):
                port.write(command)
                answers.append(port.readline().decode())
            scale.set_mode("overload")
            port.write(b"SI\r\n")
            answers.append(port.readline().decode())
    assert [parse_frame(a, "sics") for a in answers[:2]] == [parse_frame("S S 0.850 kg")] * 2
    assert answers[2] == "ES\r\n"  # an unknown command: a syntax error, as MT-SICS says
    assert answers[3] == "S +\r\n"


def test_a_continuous_scale_streams_on_a_pseudo_terminal_through_pyserial():
    with VirtualScale(weight_kg=12.5, pty=True, interval=0.02) as scale, \
            serial.serial_for_url(scale.device, baudrate=9600, timeout=2) as port:
        port.readline()  # the first may be cut: the line the reader opened into
        lines = [port.readline().decode() for _ in range(3)]
    assert all(parse_frame(line, "continuous") == parse_frame("ST,GS,+ 12.500kg") for line in lines)
    assert lines[0] == "ST,GS,+  12.500kg\r\n"
