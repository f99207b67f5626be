"""Pack evidence rules (edge/domain/evidence.py), as tables: what a clip must be, what each
evidence_policy asks of an order, and the chunked upload's arithmetic."""

from __future__ import annotations

import pytest

from scanedge.edge.domain.evidence import (
    Evidence,
    check_clip,
    clip_kind,
    content_range,
    evidence_problems,
    next_chunk,
    parse_content_range,
    with_evidence,
)
from scanedge.edge.domain.print_gate import GateProblem, GateVerdict
from scanedge.edge.domain.refusal import Refusal

VIDEO_12S = Evidence("video", "a" * 64, 1000, 12.0)
VIDEO_3S = Evidence("video", "b" * 64, 300, 3.0)
PHOTO = Evidence("photo", "c" * 64, 50, None)


@pytest.mark.parametrize(("mime", "kind"), [
    ("video/webm", "video"), ("video/webm;codecs=vp8", "video"), ("VIDEO/MP4", "video"),
    ("image/jpeg", "photo"), ("image/png", "photo"),
])
def test_the_content_type_says_whether_it_is_a_video_or_a_photo(mime, kind):
    assert clip_kind(mime) == kind


@pytest.mark.parametrize("mime", ["", "text/plain", "video/avi", "image/gif", "application/json"])
def test_other_content_types_are_refused_in_words(mime):
    with pytest.raises(Refusal) as e:
        clip_kind(mime)
    assert e.value.code == "bad_evidence" and "video/webm" in e.value.message


@pytest.mark.parametrize(("kind", "size", "duration", "code"), [
    ("video", 0, 12.0, "bad_evidence"),  # an empty body
    ("video", 2000, 12.0, "too_large"),  # beyond the per-clip cap (1000 here)
    ("video", 500, None, "bad_evidence"),  # a video without its length
    ("video", 500, 0.0, "bad_evidence"),
    ("video", 500, -3.0, "bad_evidence"),
    ("video", 500, 7200.0, "bad_evidence"),  # a recorder left running
    ("video", 500, 9.9, "clip_too_short"),  # the default 10 s: refused before it counts
    ("photo", 0, None, "bad_evidence"),
    ("photo", 2000, None, "too_large"),
])
def test_a_clip_that_cannot_count_is_refused(kind, size, duration, code):
    with pytest.raises(Refusal) as e:
        check_clip(kind, size, duration, min_video_s=10.0, max_bytes=1000)
    assert e.value.code == code and e.value.message


@pytest.mark.parametrize(("kind", "duration"), [("video", 10.0), ("video", 600.0),
                                                ("photo", None), ("photo", 3.0)])
def test_a_clip_within_the_rules_passes(kind, duration):
    check_clip(kind, 500, duration, min_video_s=10.0, max_bytes=1000)


@pytest.mark.parametrize(("policy", "items", "codes"), [
    ("off", [], []),
    ("off", [VIDEO_3S], []),
    ("require_video", [], ["video_missing"]),
    ("require_video", [PHOTO], ["video_missing"]),  # a photo is not a video of the packing
    ("require_video", [VIDEO_3S], ["video_missing"]),  # too short (kept as recorded)
    ("require_video", [VIDEO_3S, VIDEO_12S], []),
    ("require_photo", [], ["photo_missing"]),
    ("require_photo", [PHOTO], []),
    ("require_photo", [VIDEO_12S], []),  # a video shows more than a photo
    ("require_photo", [VIDEO_3S], ["photo_missing"]),
])
def test_what_each_policy_asks_of_an_order(policy, items, codes):
    problems = evidence_problems(policy, items, 10.0)
    assert [p.code for p in problems] == codes
    for p in problems:
        assert p.zh and p.en and ("10 s" in p.en) == (p.code == "video_missing")


def test_evidence_problems_refuse_whatever_the_print_gate_allowed():
    warned = GateVerdict(True, (GateProblem("gifts_unconfirmed", "赠品", "gift"),))  # print_policy warn
    missing = evidence_problems("require_video", [], 10.0)
    verdict = with_evidence(warned, missing)
    assert verdict.allowed is False and verdict.codes == ["gifts_unconfirmed", "video_missing"]
    assert with_evidence(warned, ()) is warned


@pytest.mark.parametrize(("held", "size", "chunk", "span"), [
    (0, 10, 4, (0, 4)), (4, 10, 4, (4, 8)), (8, 10, 4, (8, 10)), (10, 10, 4, None),
    (0, 1, 1024, (0, 1)), (3, 10, 100, (3, 10)),
])
def test_the_next_chunk_starts_where_the_hub_stands(held, size, chunk, span):
    assert next_chunk(held, size, chunk) == span


@pytest.mark.parametrize(("held", "size", "chunk"), [(11, 10, 4), (-1, 10, 4), (0, 10, 0)])
def test_an_impossible_position_is_an_error_not_a_loop(held, size, chunk):
    with pytest.raises(ValueError):
        next_chunk(held, size, chunk)


@pytest.mark.parametrize(("start", "end", "size"), [(0, 1, 1), (0, 4, 10), (8, 10, 10)])
def test_content_range_reads_back(start, end, size):
    assert parse_content_range(content_range(start, end, size)) == (start, end, size)


@pytest.mark.parametrize("value", ["", "bytes 0-3", "bytes 4-3/10", "bytes 0-10/10", "bytes -1-3/10",
                                   "items 0-3/10", "bytes 0-3/x", "bytes 0-3/10 junk"])
def test_a_malformed_content_range_is_refused(value):
    with pytest.raises(ValueError):
        parse_content_range(value)
