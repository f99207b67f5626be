"""Crash points for the durability tests (off unless ``SCANEDGE_FAULT`` is set).

``SCANEDGE_FAULT="after_send:0.3:42"`` makes the process kill itself with SIGKILL at that point of
a push with probability 0.3, drawn from a generator seeded with 42 (so a test round is
repeatable). Points: ``before_send``, ``after_send`` (the hub stored the batch, the device has not
seen the answer), ``after_ack`` (marked acknowledged, before anything else).
"""

from __future__ import annotations

import os
import random
import signal

POINTS = ("before_send", "after_send", "after_ack")
_spec = os.environ.get("SCANEDGE_FAULT", "")
_point, _prob, _rng = None, 0.0, None
if _spec:
    _point, prob, seed = ([*_spec.split(":"), "1", "0"])[:3]
    if _point not in POINTS:
        raise ValueError(f"SCANEDGE_FAULT: point must be one of {', '.join(POINTS)}")
    _prob, _rng = float(prob), random.Random(int(seed))


def maybe_crash(point: str) -> None:
    if _rng is not None and point == _point and _rng.random() < _prob:
        os.kill(os.getpid(), signal.SIGKILL)
