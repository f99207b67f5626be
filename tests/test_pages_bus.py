"""The bus's side for the page streams (edge/bus.py AsyncFanout, edge/web/stream.py SharedStatus):
publishers on threads, subscribers on one event loop. No server, no timing."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from scanedge.edge.bus import AsyncFanout, EventBus, Message
from scanedge.edge.web.stream import SharedStatus


def encode(message: Message) -> bytes:
    return f"{message.id}:{message.kind}:{message.data.get('station')}".encode()


def publish_from_a_thread(bus: EventBus, items: list[tuple[str, dict[str, Any]]]) -> None:
    """Publish on another thread and wait for it: the loop is blocked meanwhile, so everything
    published arrives at the loop as one burst."""
    t = threading.Thread(target=lambda: [bus.publish(kind, data) for kind, data in items])
    t.start()
    t.join()


def counting_hops(loop: asyncio.AbstractEventLoop) -> list[int]:
    hops = [0]
    real = loop.call_soon_threadsafe

    def call_soon_threadsafe(*args: Any, **kwargs: Any) -> Any:
        hops[0] += 1
        return real(*args, **kwargs)

    loop.call_soon_threadsafe = call_soon_threadsafe  # type: ignore[method-assign]
    return hops


def test_a_burst_costs_one_hop_and_reaches_each_stream_as_one_write() -> None:
    async def main() -> None:
        bus = EventBus()
        loop = asyncio.get_running_loop()
        hops = counting_hops(loop)
        fanout = AsyncFanout(bus, loop, encode)
        streams = [fanout.subscribe("bench-1") for _ in range(50)]
        other = fanout.subscribe("bench-2")
        everything = fanout.subscribe(None)
        publish_from_a_thread(bus, [("scan", {"station": "bench-1"})] * 20
                              + [("scan", {"station": "bench-2"})] * 20
                              + [("sync", {"online": False}), ("alarm", {"station": None})])
        assert hops[0] == 1  # 42 messages, 52 streams: one wake-up of the loop
        await asyncio.sleep(0)  # the delivery runs
        for sub in streams:
            await sub.wait()
            got = sub.take()
            assert len(got) == 22  # its station's 20 and the 2 device-wide, pending together
            assert got[-2:] == [b"41:sync:None", b"42:alarm:None"]
            assert sub.take() == []
        assert len(other.take()) == 22 and len(everything.take()) == 42
        for sub in [*streams, other, everything]:
            sub.close()
        assert fanout.subscribers == 0
        fanout.close()
        bus.publish("scan", {"station": "bench-1"})
        assert hops[0] == 1  # a closed fanout is no longer woken

    asyncio.run(main())


def test_replay_after_an_id_without_duplicates_or_gaps() -> None:
    async def main() -> None:
        bus = EventBus(history=10)
        loop = asyncio.get_running_loop()
        fanout = AsyncFanout(bus, loop, encode)
        for i in range(12):
            bus.publish("scan", {"station": f"bench-{i % 2}"})  # ids 1..12, 3..12 kept
        await asyncio.sleep(0)
        # published, not yet delivered to the loop: in the replay, and not delivered twice
        publish_from_a_thread(bus, [("scan", {"station": "bench-0"})] * 2)  # 13, 14
        sub = fanout.subscribe("bench-0", after=8)
        fresh = fanout.subscribe("bench-0")  # no replay: only what comes after it
        restarted = fanout.subscribe(None, after=99)  # ids began again: everything kept
        await asyncio.sleep(0)
        bus.publish("scan", {"station": "bench-0"})  # 15
        await asyncio.sleep(0)
        ids = [int(p.split(b":")[0]) for p in sub.take()]
        assert ids == [9, 11, 13, 14, 15]
        assert fresh.take() == [b"15:scan:bench-0"]
        assert [int(p.split(b":")[0]) for p in restarted.take()] == list(range(5, 16))

    asyncio.run(main())


def test_a_slow_stream_loses_its_oldest_messages_not_the_publisher() -> None:
    async def main() -> None:
        bus = EventBus()
        fanout = AsyncFanout(bus, asyncio.get_running_loop(), encode)
        sub = fanout.subscribe(None, maxsize=5)
        publish_from_a_thread(bus, [("job", {})] * 12)
        await asyncio.sleep(0)
        assert [int(p.split(b":")[0]) for p in sub.take()] == [8, 9, 10, 11, 12]

    asyncio.run(main())


def test_the_heartbeat_status_is_computed_once_for_all_streams() -> None:
    calls: list[int] = []

    def compute() -> bytes:
        calls.append(1)
        return b"event: status\n\n"

    async def main() -> None:
        status = SharedStatus(compute, max_age=3600)
        got = await asyncio.gather(*(status.current() for _ in range(300)))
        assert set(got) == {b"event: status\n\n"} and len(calls) == 1
        await status.current()
        assert len(calls) == 1  # still fresh
        status.max_age = 0
        await status.current()
        assert len(calls) == 2

    asyncio.run(main())


def test_a_thread_subscription_still_works_beside() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    bus.publish("alarm_ack", {"alarm_id": "a"})
    message = sub.get(timeout=1)
    assert message is not None and message.kind == "alarm_ack"
    sub.close()
    bus.publish("alarm_ack", {"alarm_id": "b"})
    assert sub.get(timeout=0) is None
