"""Freeze interception, part by part: signatures and the device's pin, the GPIO channel (on
gpiozero's mock pins), the offline watcher against an in-process hub, the hub's ack listing and
the interception report."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from gpiozero.pins.mock import MockFactory

from scanedge.edge.alarms import AlarmCenter
from scanedge.edge.bus import EventBus
from scanedge.edge.config import load_settings
from scanedge.edge.domain.interception_report import DeviceEvent, FreezeRecord, build_report, format_table
from scanedge.edge.lifecycle import BackgroundServer
from scanedge.edge.store import Store
from scanedge.sync.apply import apply_changes
from scanedge.sync.hub.app import HubOptions
from scanedge.sync.hub.asgi import create_hub_asgi
from scanedge.sync.hub.storage import Device, open_storage
from scanedge.sync.pinning import pin_configured_key, pinned_key
from scanedge.sync.signing import HubSigner, canonical_json, verify
from tests.proxy import FaultyProxy
from tests.support import run_cli, wait_until

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def command(signer: HubSigner, seq: int, kind: str = "freeze", version: int = 1, **extra) -> dict:
    payload = {"command_id": f"c{seq}", "order_id": "SO-1", "kind": kind,
               "issued_at": "2026-11-22T08:00:00.000Z", "version": version, **extra}
    if kind == "freeze":
        payload.setdefault("reason", "cancel")
    return {"seq": seq, "kind": kind, "order_id": "SO-1", "payload": signer.sign(payload)}


def test_signature_covers_every_field_in_canonical_form():
    signer = HubSigner.generate()
    signed = signer.sign({"kind": "freeze", "order_id": "SO-1", "reason": "地址", "version": 3,
                          "command_id": "c", "issued_at": "2026-11-22T08:00:00.000Z"})
    assert verify(signed, signer.public_b64) is None
    assert verify(dict(reversed(list(signed.items()))), signer.public_b64) is None  # key order
    assert canonical_json({"b": 1, "a": "地"}) == '{"a":"地","b":1}'.encode()
    for key, value in (("version", 4), ("order_id", "SO-2"), ("reason", "hold"), ("kind", "unfreeze")):
        assert verify({**signed, key: value}, signer.public_b64) == "bad_signature", key
    assert verify({k: v for k, v in signed.items() if k != "signature"}, signer.public_b64) == "unsigned"
    assert verify(signed, HubSigner.generate().public_b64) == "unknown_key"
    assert "private" not in repr(signer) and signer.private_b64 not in repr(signer)


def test_device_trusts_on_first_use_and_a_configured_key_wins(tmp_path):
    store = Store(tmp_path / "edge.db")
    a, b = HubSigner.generate(), HubSigner.generate()
    try:
        applied = store.write(lambda db: apply_changes(db, "dev", [command(a, 1)],
                                                       trust_first_key=True))
        assert [f["command_id"] for f in applied.freezes] == ["c1"]
        assert pinned_key(store.read()) == (a.public_b64, "tofu")
        applied = store.write(lambda db: apply_changes(db, "dev", [
            command(b, 2, "unfreeze", 2), command(a, 3, "expedite", 3)]))
        assert [r["problem"] for r in applied.rejected] == ["unknown_key"]
        assert len(applied.expedites) == 1
        # a replay of c1 under a new change number is refused, not applied twice
        replay = {**command(a, 1), "seq": 4}  # Ed25519 is deterministic: the same bytes
        applied = store.write(lambda db: apply_changes(db, "dev", [replay]))
        assert [r["problem"] for r in applied.rejected] == ["replayed"]
        # the configured key replaces the trusted-on-first-use one
        pin_configured_key(store, "dev", b.public_b64)
        assert pinned_key(store.read()) == (b.public_b64, "config")
        applied = store.write(lambda db: apply_changes(db, "dev", [command(b, 5, "unfreeze", 4)]))
        assert len(applied.unfreezes) == 1 and not applied.rejected
        types = [r[0] for r in store.read().execute("SELECT type FROM events ORDER BY seq")]
        assert types.count("hub_key_pinned") == 2 and types.count("command_rejected") == 2
    finally:
        store.close()


def test_gpio_buzzer_and_led_sound_until_the_last_alarm_is_acknowledged(tmp_path):
    store = Store(tmp_path / "edge.db")
    bus = EventBus()
    center = AlarmCenter(store, "dev", bus)
    factory = MockFactory()
    settings = load_settings(env={}, data_dir=str(tmp_path), gpio_buzzer_pin="GPIO17",
                             gpio_led_pin="GPIO27")
    from scanedge.edge.gpio import GpioAlarm

    gpio = GpioAlarm.from_settings(settings, center, bus, pin_factory=factory)
    assert gpio is not None
    try:
        assert factory.pin(27).state is False and not gpio.sounding
        a1 = center.raise_alarm("freeze", {"zh": "订单 SO-1 已取消,请停止操作", "en": "x"},
                                order_id="SO-1", station="bench-1")
        a2 = center.raise_alarm("frozen_scan", {"zh": "z", "en": "e"}, order_id="SO-1")
        assert factory.pin(27).state is True  # the red LED
        wait_until(lambda: len(factory.pin(17).states) >= 4, timeout=3, what="the buzzer beeping")
        center.acknowledge(a1.alarm_id, "王五")
        time.sleep(0.3)
        assert gpio.sounding and factory.pin(27).state is True  # one alarm still waits
        center.acknowledge(a2.alarm_id, "王五")
        wait_until(lambda: not gpio.sounding, timeout=3, what="quiet after the last ack")
        assert factory.pin(27).state is False and factory.pin(17).state is False
        center.raise_alarm("note", {"zh": "z", "en": "e"}, level="warning")
        assert not gpio.sounding  # warnings are for the pages only
    finally:
        gpio.close()
    # no pins: no channel; pins but no GPIO on this machine: off, with a warning, no error
    assert GpioAlarm.from_settings(load_settings(env={}, data_dir=str(tmp_path)), center, bus) is None
    assert GpioAlarm.from_settings(settings, center, bus) is None
    store.close()


@pytest.fixture
def live_hub(tmp_path):
    storage = open_storage(str(tmp_path / "hub.db"))
    storage.ensure_admin_token("admin")
    server = BackgroundServer(create_hub_asgi(storage, HubOptions(heartbeat_s=0.2))).start()
    yield storage, server.url, server
    server.stop()
    storage.close()


def test_freeze_status_unknown_when_the_hub_falls_silent(tmp_path, live_hub):
    from scanedge.edge.context import EdgeContext

    storage, url, _ = live_hub
    proxy = FaultyProxy(int(url.rsplit(":", 1)[1]))
    token = storage.add_device("dev-1")
    settings = load_settings(env={}, data_dir=str(tmp_path / "dev"), device_id="dev-1",
                             hub_url=proxy.url, hub_token=token, offline_after_s=1.0,
                             hub_public_key=storage.signer().public_b64,
                             offline_print="hold_all", sync_poll_s=0.2, hub_timeout_s=1.0)
    ctx = EdgeContext.open(settings)
    try:
        sub = ctx.bus.subscribe(after=0)
        wait_until(lambda: ctx.freeze_status.status == "known", timeout=10, what="online")
        assert ctx.freeze_status.held_priorities() == ()
        proxy.set_mode("blackhole")  # the hub goes silent
        wait_until(lambda: ctx.freeze_status.status == "unknown", timeout=10, what="unknown")
        assert ctx.freeze_status.held_priorities() == ("P0", "P1", "P2", "P3")
        seen = []
        while (m := sub.get(timeout=1.0)) is not None:
            if m.kind == "sync":
                seen.append(m.data["freeze_status"])
        assert seen[-2:] == ["known", "unknown"]
    finally:
        ctx.close()
        proxy.close()


def test_hub_lists_freezes_a_device_did_not_acknowledge(tmp_path, live_hub):
    storage, _, _ = live_hub
    storage.add_device("fast")
    storage.add_device("slow")
    f = storage.add_command("freeze", "SO-1", {"reason": "cancel"})
    storage.store_freeze_acks(Device("fast", "default"),
                              [{"command_id": f["command_id"], "order_id": "SO-1"}])
    fresh = storage.list_freezes(within_s=60)
    assert fresh[0]["late"] == []  # nobody is late yet
    time.sleep(0.1)
    late = storage.list_freezes(within_s=0.05, unacked=True)
    assert [x["command_id"] for x in late] == [f["command_id"]] and "slow" in late[0]["late"]
    assert (late[0]["expected"], late[0]["acked"], late[0]["late_count"]) == (2, 1, 1)
    assert [a["device_id"] for a in late[0]["acks"]] == ["fast"]  # the ones that acked
    acks = {a["device_id"]: a for a in storage.list_freezes(within_s=0.05, all_devices=True)[0]["acks"]}
    assert acks["slow"]["received_at"] is None and acks["fast"]["seconds"] >= 0


def test_report_sorts_each_freeze_into_one_outcome():
    def ev(device, type_, order, seconds, **payload):
        return DeviceEvent(device, type_, order, T0 + timedelta(seconds=seconds), payload)

    freezes = [FreezeRecord(f"c{i}", f"SO-{i}", "cancel", T0) for i in range(1, 6)]
    issued = T0.isoformat()
    events = [
        *(ev("d1", "freeze_applied", f"SO-{i}", 0.2, command_id=f"c{i}") for i in range(1, 6)),
        ev("d1", "interception", "SO-1", 2.0, station="b1", freeze_issued_at=issued,
           seconds_since_freeze=2.0),  # stopped before any label: a save
        ev("d1", "interception", "SO-1", 9.0, station="b1", freeze_issued_at=issued,
           seconds_since_freeze=9.0),  # the same freeze again: counted, not timed
        ev("d1", "print_printed", "SO-2", -30.0),  # labelled before the freeze ...
        ev("d1", "interception", "SO-2", 4.0, station="b1", freeze_issued_at=issued,
           seconds_since_freeze=4.0),  # ... then stopped: pull the parcel
        ev("d1", "print_printed", "SO-3", 1.0),  # printed after the freeze: missed
        ev("d1", "print_printed", "SO-4", 20.0),  # printed after an unfreeze: fine
    ]
    report = build_report(T0 - timedelta(days=1), freezes, [("SO-4", T0 + timedelta(seconds=10))],
                          events, default_station="b1")
    assert report.total.freezes == 5
    assert (report.total.intercepted_before_print, report.total.intercepted_after_print,
            report.total.missed) == (1, 1, 1)
    assert report.total.interceptions == 3
    assert (report.total.median_s, report.total.p95_s) == (3.0, 4.0)
    (row,) = report.rows
    assert (row.device_id, row.station, row.freezes) == ("d1", "b1", 5)
    table = format_table(report)
    assert table.splitlines()[0].startswith("| device | station | freezes | intercepted before print")
    mean = report.total.mean_s
    assert mean is not None and 3.0 <= mean <= 4.0  # beside the median and p95
    assert f"| all | all | 5 | 1 | 1 | 1 | 0 | 3 | {mean:.3f} | 3.000 | 4.000 |" in table
    # a freeze whose countdown ran out before every device applied it: the fuse column
    fused = build_report(T0 - timedelta(days=1), freezes, [], events, default_station="b1",
                         fuses_tripped=[freezes[0].command_id, "not-in-this-report"])
    assert fused.total.fuse_tripped == 1


@pytest.mark.slow
def test_report_command_on_the_device(tmp_path):
    data = tmp_path / "var"
    run_cli("orders", "import", "--demo", data_dir=data)
    run_cli("freeze", "SO-1002", "--reason", "cancel", data_dir=data)
    assert "frozen" in run_cli("scan", "SO-1002", "--operator", "王五", data_dir=data).stdout
    out = run_cli("report", "interceptions", "--since", "2020-01-01", data_dir=data).stdout
    assert "| test-dev | bench-1 | 1 | 1 | 0 | 0 | 0 | 1 |" in out
    bad = run_cli("report", "interceptions", "--since", "yesterday", data_dir=data, check=False)
    assert bad.returncode == 2 and "--since" in bad.stderr


class _QuietHub:
    """A sync worker's face to FreezeStatus: the hub has not answered (yet)."""

    def __init__(self, store) -> None:
        self.store, self.online, self.contacted = store, False, False

    def trust_problem(self):
        return None

    def status(self) -> dict:
        return {"online": self.online, "offline_since": None}


def test_a_start_warns_of_a_silent_hub_only_after_it_had_offline_after_s_to_answer(
        edge_ctx, caplog):
    from scanedge.edge.freezes.status import FreezeStatus

    now = [100.0]
    hub = _QuietHub(edge_ctx.store)
    watch = FreezeStatus(edge_ctx.settings, hub, edge_ctx.printing, edge_ctx.bus,
                         clock=lambda: now[0])
    silent = "hub silent for more than"
    with caplog.at_level("INFO", logger="scanedge.edge.freezes.status"):
        watch.check()  # just started: unknown, but no warning
        assert watch.status == "unknown" and silent not in caplog.text
        hub.online = hub.contacted = True  # the first contact
        watch.check()
        assert watch.status == "known" and "again" not in caplog.text
        hub.online = False  # a real silence (online turns false after offline_after_s)
        watch.check()
        assert caplog.text.count(silent) == 1
        watch.check()
        assert caplog.text.count(silent) == 1  # once per silence
    caplog.clear()
    late = FreezeStatus(edge_ctx.settings, _QuietHub(edge_ctx.store), edge_ctx.printing,
                        edge_ctx.bus, clock=lambda: now[0])
    with caplog.at_level("INFO", logger="scanedge.edge.freezes.status"):
        late.check()
        assert silent not in caplog.text
        now[0] += edge_ctx.settings.offline_after_s + 1  # never answered since the start
        late.check()
        assert caplog.text.count(silent) == 1
