"""The scale's lines, its address and the weight check, as pure rules (docs/scale.md)."""

import re

import pytest

from scanedge.edge.domain.orders import OrderError, parse_order
from scanedge.edge.domain.packing import PackState
from scanedge.edge.domain.print_gate import print_gate
from scanedge.edge.domain.scale import (
    Frame,
    ScaleAddress,
    parse_frame,
    parse_scale_address,
    settled,
)
from scanedge.edge.domain.weighing import (
    Tolerance,
    WeightCheck,
    check_weight,
    expected_weight,
    parse_tolerance,
    weight_words,
)


@pytest.mark.parametrize(("line", "protocol", "frame"), [
    # continuous output (ST/US/OL, gross/net/tare, signed, padded, any unit)
    ("ST,GS,+  1.234kg", "auto", Frame("stable", 1.234)),
    ("ST,GS,+  1.234kg\r\n", "continuous", Frame("stable", 1.234)),
    ("US,GS,+  1.240kg", "auto", Frame("unstable", 1.24)),
    ("ST,NT,-  0.010kg", "auto", Frame("stable", -0.01)),
    ("ST,TR,+0000.500 kg", "auto", Frame("stable", 0.5)),
    ("ST,+1.500kg", "auto", Frame("stable", 1.5)),  # scales that leave out gross/net
    ("ST,GS,+   1234g", "auto", Frame("stable", 1.234)),
    ("st,gs,+ 2.20LB", "auto", Frame("stable", 0.997903)),
    ("OL,GS,+  --.---kg", "auto", Frame("overload")),
    ("OL,GS,+ 99.999kg", "continuous", Frame("overload")),
    ("ST,GS,+  --.---kg", "auto", Frame("error")),
    # MT-SICS
    ("S S      1.234 kg", "auto", Frame("stable", 1.234)),
    ("S S      1.234 kg", "sics", Frame("stable", 1.234)),
    ("S D      1.236 kg", "sics", Frame("unstable", 1.236)),
    ("S S   -   0.020 kg", "sics", Frame("stable", -0.02)),
    ("S S    850 g", "sics", Frame("stable", 0.85)),
    ("S +", "sics", Frame("overload")),
    ("S -", "sics", Frame("underload")),
    ("S I", "sics", Frame("error")),
    ("ES", "auto", Frame("error")),
    # not readings: nothing
    ("", "auto", None),
    ("   ", "auto", None),
    ("Z A", "sics", None),
    ("garbage\x00\xff", "auto", None),
    ("ST,GS,+  1.234kg", "sics", None),  # a protocol reads only its own lines
    ("S S      1.234 kg", "continuous", None),
    ("ST,GS,+  1.234kgX", "auto", None),
])
def test_each_line_of_either_protocol_reads_as_its_frame(line, protocol, frame):
    assert parse_frame(line, protocol) == frame


S, U = Frame("stable", 1.2), Frame("unstable", 1.2)


@pytest.mark.parametrize(("frames", "settle", "weight"), [
    ([S, S, S], 3, 1.2),
    ([U, S, S, S], 3, 1.2),
    ([S, S], 3, None),  # not yet
    ([S, U, S], 3, None),  # moved in between
    ([S, S, Frame("stable", 1.3)], 3, None),  # stable, but not the same value
    ([Frame("stable", 1.3)], 1, 1.3),
    ([S, S, Frame("overload")], 3, None),
    ([], 1, None),
])
def test_a_weight_counts_once_the_last_frames_agree_and_are_stable(frames, settle, weight):
    assert settled(frames, settle) == weight


@pytest.mark.parametrize(("text", "address"), [
    ("none", None),
    ("", None),
    ("serial:///dev/ttyUSB0", ScaleAddress("serial", "/dev/ttyUSB0")),
    ("serial:///dev/ttyUSB0?baud=4800&protocol=sics&parity=e",
     ScaleAddress("serial", "/dev/ttyUSB0", "sics", baudrate=4800, parity="E")),
    ("serial:///dev/pts/3?baudrate=19200&settle=5",
     ScaleAddress("serial", "/dev/pts/3", baudrate=19200, settle=5)),
    ("tcp://10.0.0.5:4001?protocol=continuous", ScaleAddress("tcp", "10.0.0.5:4001", "continuous")),
])
def test_scale_addresses(text, address):
    assert parse_scale_address(text) == address


@pytest.mark.parametrize(("text", "says"), [
    ("usb://0x0416:0x5011", "a scale address"),
    ("/dev/ttyUSB0", "a scale address"),
    ("serial://", "a device file"),
    ("serial:///dev/ttyUSB0?baud=1234", "baud"),
    ("serial:///dev/ttyUSB0?protocol=modbus", "protocol"),
    ("serial:///dev/ttyUSB0?speed=9600", "speed"),
    ("serial:///dev/ttyUSB0?parity=X", "parity"),
    ("serial:///dev/ttyUSB0?settle=0", "settle"),
    ("tcp://10.0.0.5", "tcp://HOST:PORT"),
    ("tcp://10.0.0.5:99999", "tcp://HOST:PORT"),
    ("tcp://10.0.0.5:4001?baud=9600", "baud"),
])
def test_a_bad_scale_address_is_refused_in_words(text, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_scale_address(text)


@pytest.mark.parametrize(("text", "tolerance"), [
    ("0.05kg, 5%", Tolerance(0.05, 5.0)),
    ("50g", Tolerance(0.05, 0.0)),
    ("3%", Tolerance(0.0, 3.0)),
    ("5 % , 0.1 KG", Tolerance(0.1, 5.0)),
    ("0kg", Tolerance(0.0, 0.0)),
])
def test_tolerances(text, tolerance):
    assert parse_tolerance(text) == tolerance


@pytest.mark.parametrize("text", ["", "5", "five%", "0.05kg, 0.1kg", "5%, 6%", "150%", "-1kg",
                                  "0.05 lb"])
def test_a_bad_tolerance_is_refused(text):
    with pytest.raises(ValueError):
        parse_tolerance(text)


TOL = Tolerance(0.05, 5.0)  # 50 g, or 5 % where that is more (above 1 kg)


@pytest.mark.parametrize(("measured", "expected", "reading", "verdict", "allowed"), [
    (1.000, 1.000, "stable", "ok", 0.05),
    (1.050, 1.000, "stable", "ok", 0.05),  # the edge itself passes (no float surprise)
    (0.950, 1.000, "stable", "ok", 0.05),
    (1.051, 1.000, "stable", "too_heavy", 0.05),
    (0.949, 1.000, "stable", "too_light", 0.05),
    (0.300, 0.200, "stable", "too_heavy", 0.05),  # light parcel: the absolute part
    (10.45, 10.0, "stable", "ok", 0.5),  # heavy parcel: the percentage
    (10.55, 10.0, "stable", "too_heavy", 0.5),
    (1.234, None, "stable", "unchecked", None),  # nothing expected: only recorded
    (None, 1.0, "unstable", "unstable", 0.05),
    (None, 1.0, "overload", "overload", 0.05),
    (None, 1.0, "disconnected", "disconnected", 0.05),
    (None, 1.0, "error", "unstable", 0.05),  # no weight, whatever the scale said
    (None, None, "disconnected", "disconnected", None),
])
def test_the_weight_check(measured, expected, reading, verdict, allowed):
    check = check_weight(measured, expected, TOL, reading=reading)
    assert (check.verdict, check.allowed_kg) == (verdict, allowed)
    assert check.passes == (verdict in ("ok", "unchecked"))
    zh, en = weight_words(check)
    assert zh and en


def _order(**doc):
    return parse_order({"order_id": "W-1", "lines": [{"sku": "A", "qty": 2}], **doc})


@pytest.mark.parametrize(("doc", "packaging", "expected"), [
    ({}, 0.0, None),
    ({"expected_weight_kg": 1.5}, 0.2, 1.5),  # the parcel as shipped: packaging included
    ({"lines": [{"sku": "A", "qty": 2, "unit_weight_kg": 0.35}]}, 0.0, 0.7),
    ({"lines": [{"sku": "A", "qty": 2, "unit_weight_kg": 0.35}]}, 0.1, 0.8),
    ({"lines": [{"sku": "A", "qty": 2, "unit_weight_kg": 0.35}, {"sku": "B", "qty": 1}]}, 0.0,
     None),  # one line without a weight: no sum to trust
    ({"lines": [{"sku": "A", "qty": 3, "unit_weight_kg": 0.1}],
      "expected_weight_kg": 2}, 0.0, 2.0),
])
def test_the_expected_weight_comes_from_the_order_or_its_lines(doc, packaging, expected):
    assert expected_weight(_order(**doc), packaging) == expected


def test_order_weights_round_trip_and_bad_ones_are_refused_naming_the_field():
    order = _order(expected_weight_kg=1.25, lines=[{"sku": "A", "qty": 1, "unit_weight_kg": 0.5}])
    assert parse_order(order.to_json()) == order
    assert order.extra == {}
    for doc, field in (({"expected_weight_kg": -1}, "expected_weight_kg"),
                       ({"expected_weight_kg": "1kg"}, "expected_weight_kg"),
                       ({"expected_weight_kg": True}, "expected_weight_kg"),
                       ({"lines": [{"sku": "A", "qty": 1, "unit_weight_kg": 20000}]},
                        "lines[0].unit_weight_kg")):
        with pytest.raises(OrderError, match=field.replace("[", r"\[").replace("]", r"\]")):
            _order(**doc)


@pytest.mark.parametrize(("check", "policy", "allowed", "codes"), [
    (None, "strict", True, []),
    (WeightCheck("ok", 1.0, 1.0, 0.05), "strict", True, []),
    (WeightCheck("unchecked", 1.0), "strict", True, []),
    (WeightCheck("too_heavy", 1.2, 1.0, 0.05), "strict", False, ["weight_off"]),
    (WeightCheck("too_light", 0.8, 1.0, 0.05), "warn", True, ["weight_off"]),
    (WeightCheck("unstable", None, 1.0, 0.05), "strict", False, ["weight_missing"]),
    (WeightCheck("disconnected"), "strict", False, ["weight_missing"]),
    (WeightCheck("too_heavy", 1.2, 1.0, 0.05), "off", True, []),
])
def test_the_weight_is_part_of_the_print_gate(check, policy, allowed, codes):
    state = PackState(_order(), (2,))
    verdict = print_gate(state, frozenset(), None, "bench-1", policy, weight=check)
    assert (verdict.allowed, verdict.codes) == (allowed, codes)
