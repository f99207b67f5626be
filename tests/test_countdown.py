"""生效倒计时 and 熔断: the rules (edge/domain/countdown.py) and the hub's record of them
(sync/hub/countdowns.py), on SQLite and PostgreSQL. Times are given, not read from the clock:
the same acks at the same times always settle the same way."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from scanedge.edge.domain.countdown import (
    CountdownPolicy,
    check_fuse,
    has_countdown,
    parse_by_category,
)
from scanedge.sync.hub import freezes
from scanedge.sync.hub.countdowns import iso, parse_time
from scanedge.sync.hub.storage import FULL_SCOPE, HubPolicy, open_storage
from scanedge.sync.signing import verify
from tests.support import wait_until

T0 = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- the rules -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "fields", "expected"), [
    ("freeze", {"reason": "cancel"}, True),
    ("freeze", {"reason": "address_change"}, True),
    ("note", {"note": "改发顺丰"}, True),
    ("freeze", {"reason": "hold"}, False),
    ("freeze", {"reason": "needs_decision"}, False),
    ("unfreeze", {}, False),
    ("expedite", {}, False),
])
def test_which_commands_run_on_a_countdown(kind, fields, expected):
    assert has_countdown(kind, fields) is expected


def test_a_category_has_its_own_countdown_and_others_the_default():
    policy = CountdownPolicy(15.0, parse_by_category('{"生鲜": 5, "furniture": 60.5}'))
    assert policy.seconds_for("生鲜") == 5.0
    assert policy.seconds_for("furniture") == 60.5
    assert policy.seconds_for("books") == 15.0
    assert policy.seconds_for(None) == 15.0
    assert policy.effective_by(T0, "生鲜") == at(5)


@pytest.mark.parametrize(("text", "problem"), [
    ("[1, 2]", "expected a JSON object"),
    ('{"fresh": 0}', "category 'fresh'"),
    ('{"fresh": -3}', "above 0"),
    ('{"fresh": "5"}', "expected a number"),
    ('{"fresh": true}', "expected a number"),
    ('{"fresh": 100000}', "at most 86400"),
    ("{fresh: 5}", "not JSON"),
])
def test_a_bad_category_table_is_refused_with_the_entry_named(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_by_category(text)


def test_an_empty_category_table_means_none():
    assert parse_by_category("") == {}
    assert parse_by_category("  ") == {}


# (expected devices, acks: device -> seconds after T0, now, state, missing, late devices)
FUSES = [
    # before the deadline: running until everyone applied, then met at once
    ({"a", "b"}, {"a": 1}, 5, "running", ("b",), ()),
    ({"a", "b"}, {"a": 1, "b": 2}, 5, "met", (), ()),
    # at and after the deadline (15 s)
    ({"a", "b"}, {"a": 1, "b": 15}, 15, "met", (), ()),  # exactly on the deadline is in time
    ({"a", "b"}, {"a": 1}, 15, "tripped", ("b",), ()),
    ({"a", "b"}, {"a": 1, "b": 16}, 20, "tripped", (), ("b",)),  # applied, but late
    ({"a", "b"}, {}, 30, "tripped", ("a", "b"), ()),
    # a device registered after the command is not expected; its ack still counts as applied
    ({"a"}, {"a": 3, "new": 4}, 20, "met", (), ()),
    # nobody to wait for
    (set(), {}, 20, "met", (), ()),
]


@pytest.mark.parametrize(("expected", "acks", "now", "state", "missing", "late"), FUSES)
def test_the_fuse_trips_when_a_device_is_not_in_time(expected, acks, now, state, missing, late):
    check = check_fuse(expected, {d: at(s) for d, s in acks.items()}, at(15), at(now))
    assert check.state == state
    assert check.missing == missing
    assert tuple(d for d, _ in check.late) == late
    assert check.remaining_s == max(0, 15 - now)
    assert set(check.not_in_time) == set(missing) | set(late)


def test_a_late_device_is_named_with_how_late_it_was():
    check = check_fuse({"a", "b"}, {"a": at(1), "b": at(17.25)}, at(15), at(30))
    assert check.late == (("b", 2.25),)
    assert check.applied == ("a",)


# -- the hub's record ----------------------------------------------------------------------------
@pytest.fixture
def hub(hub_database):
    storage = open_storage(hub_database, HubPolicy(countdown=CountdownPolicy(15.0, {"express": 5.0})))
    storage.add_device("dev-1")
    storage.add_device("dev-2")
    storage.add_device("far-1", site="north")
    storage.upsert_order({"order_id": "SO-7", "category": "express",
                          "lines": [{"sku": "6901234567892", "qty": 1}]})
    storage.upsert_order({"order_id": "SO-8", "lines": [{"sku": "6901234567892", "qty": 1}]})
    # the devices were registered "before" every command these tests issue
    with storage.transaction() as tx:
        tx.execute("UPDATE devices SET created_at = ?", [iso(at(-3600))])
    yield storage
    storage.close()


def ack(storage, device_id: str, command: dict, seconds_after_issue: float) -> None:
    received = parse_time(command["issued_at"]) + timedelta(seconds=seconds_after_issue)
    with storage.transaction() as tx:
        freezes.store_acks(tx, device_id, [{"command_id": command["command_id"],
                                            "order_id": command["order_id"]}], iso(received))


def test_a_cancel_is_signed_with_its_deadline_from_the_order_category(hub):
    cancel = hub.add_command("freeze", "SO-7", {"reason": "cancel"})
    issued = parse_time(cancel["issued_at"])
    assert cancel["countdown_s"] == 5.0  # express
    assert parse_time(cancel["effective_by"]) == issued + timedelta(seconds=5)
    signed = {k: v for k, v in cancel.items() if k != "change_seq"}  # as the devices get it
    assert verify(signed, hub.signer().public_b64) is None  # the deadline is signed in
    # the list is newest first by issued_at, to the millisecond: the note comes a tick later
    # (two commands in one millisecond have no order; on a fast machine that happened)
    wait_until(lambda: iso(datetime.now(UTC)) > cancel["issued_at"], timeout=5,
               what="the next millisecond")
    note = hub.add_command("note", "SO-8", {"note": "改发顺丰"})
    assert note["countdown_s"] == 15.0  # no category: the default
    hold = hub.add_command("freeze", "SO-8", {"reason": "hold"})
    assert "effective_by" not in hold
    rows = hub.list_countdowns()
    assert [r["command_id"] for r in rows] == [note["command_id"], cancel["command_id"]]
    assert {r["state"] for r in rows} == {"running"}
    assert rows[1]["expected"] == 2  # the site's devices, not north's


def test_the_sweep_trips_the_fuse_names_the_devices_and_tells_the_site(hub):
    cancel = hub.add_command("freeze", "SO-7", {"reason": "cancel"})
    ack(hub, "dev-1", cancel, 0.4)
    deadline = parse_time(cancel["effective_by"])
    assert hub.sweep_fuses(now=deadline - timedelta(seconds=1)) == []  # not yet
    [trip] = hub.sweep_fuses(now=deadline + timedelta(seconds=0.5))
    assert trip["not_in_time"] == ["dev-2"]
    assert (trip["expected"], trip["applied"]) == (2, 1)
    assert hub.sweep_fuses(now=deadline + timedelta(seconds=9)) == []  # settled once
    # the site's devices hear it; the other site's do not
    fuse = [c for c in hub.changes_since(0, site="default") if c.kind == "fuse"]
    assert [c.payload["command_id"] for c in fuse] == [cancel["command_id"]]
    assert not [c for c in hub.changes_since(0, site="north") if c.kind == "fuse"]
    with hub.transaction() as tx:
        rows = tx.all("SELECT kind, payload FROM hub_notifications")
    assert [(k, json.loads(p)["command_id"]) for k, p in rows] == [
        ("fuse_tripped", cancel["command_id"])]
    # dev-2 applies it after all: named as late, the fuse stays tripped
    ack(hub, "dev-2", cancel, 7.5)
    [row] = hub.list_countdowns(state="tripped")
    assert row["late"] == [{"device_id": "dev-2", "seconds_late": 2.5}]
    assert row["missing"] == [] and row["not_in_time"] == ["dev-2"]


def test_a_command_every_device_applied_in_time_is_met(hub):
    note = hub.add_command("note", "SO-8", {"note": "加急"})
    ack(hub, "dev-1", note, 1)
    ack(hub, "dev-2", note, 14.9)
    assert hub.sweep_fuses(now=parse_time(note["effective_by"]) + timedelta(seconds=1)) == []
    [row] = hub.list_countdowns()
    assert (row["state"], row["applied"], row["expected"]) == ("met", 2, 2)
    assert not [c for c in hub.changes_since(0) if c.kind == "fuse"]


def test_the_interception_report_counts_the_tripped_fuses(hub):
    cancel = hub.add_command("freeze", "SO-7", {"reason": "cancel"})
    hub.add_command("freeze", "SO-8", {"reason": "address_change"})
    hub.sweep_fuses(now=parse_time(cancel["effective_by"]) + timedelta(seconds=1))  # SO-7 only
    report = hub.interception_report(T0 - timedelta(days=1))
    assert report.total.fuse_tripped == 1


def test_an_ack_for_a_note_of_another_site_is_not_stored(hub):
    hub.upsert_order({"order_id": "N-1", "site": "north",
                      "lines": [{"sku": "6901234567892", "qty": 1}]})
    note = hub.add_command("note", "N-1", {"note": "x"})
    from scanedge.sync.hub.storage import Device

    assert hub.store_freeze_acks(Device("dev-1", "default"), [
        {"command_id": note["command_id"], "order_id": "N-1"}]) == 0
    assert hub.store_freeze_acks(Device("far-1", "north"), [
        {"command_id": note["command_id"], "order_id": "N-1"}]) == 1
    [row] = hub.list_countdowns(scope=FULL_SCOPE, site="north")
    assert (row["applied"], row["expected"]) == (1, 1)


def test_a_tripped_fuse_is_posted_to_the_webhook_once_with_retry(hub):
    from scanedge.sync.hub.webhooks import HubWebhooks
    from tests.support import WebhookReceiver

    receiver = WebhookReceiver(answers=(503,))
    now = [1000.0]
    hooks = HubWebhooks(hub, receiver.url, backoff_base_s=10.0, clock=lambda: now[0])
    try:
        cancel = hub.add_command("freeze", "SO-7", {"reason": "address_change"})
        late = parse_time(cancel["effective_by"]) + timedelta(seconds=1)
        hub.sweep_fuses(now=late)
        hub.sweep_fuses(now=late + timedelta(seconds=5))  # settled: no second notification
        assert hooks.deliver_due() == 0 and hooks.pending() == 1  # 503: kept
        assert hooks.deliver_due() == 0  # not due again before its backoff
        now[0] += 11
        assert hooks.deliver_due() == 1 and hooks.pending() == 0
        assert [g["command_id"] for g in receiver.got] == [cancel["command_id"]] * 2
        body = receiver.got[-1]
        assert body["type"] == "fuse_tripped" and body["reason"] == "address_change"
        assert body["not_in_time"] == ["dev-1", "dev-2"] and body["order_id"] == "SO-7"
    finally:
        receiver.close()
