"""StereoSync: pairing by stamp within a tolerance, reordering, bounded queues and drop accounting."""
from __future__ import annotations

import pytest

from perception.sources.sync import StereoSync

MS = 1_000_000
PERIOD = 50 * MS


def run(sync: StereoSync, feed) -> list:
    events = []
    for kind, stamp, payload in feed:
        events += sync.add(kind, stamp, payload)
    return events + sync.flush()


def pairs(events):
    return [(e.left, e.right) for e in events if e.ok]


def drops(events):
    return [(e.reason, e.left, e.right) for e in events if not e.ok]


def test_in_order_pairs_are_released_immediately():
    sync = StereoSync(5 * MS)
    out = []
    for i in range(5):
        assert sync.add_left(i * PERIOD, f"L{i}") == []
        released = sync.add_right(i * PERIOD + 2 * MS, f"R{i}")
        assert [(e.left, e.right) for e in released] == [(f"L{i}", f"R{i}")]  # no waiting with reorder_ns=0
        out += released
    assert sync.flush() == [] and sync.pending == 0
    assert [e.dt_ns for e in out] == [2 * MS] * 5 and [e.stamp_ns for e in out] == [i * PERIOD for i in range(5)]


def test_tolerance_is_inclusive_and_far_pairs_are_one_dropped_frame():
    sync = StereoSync(5 * MS)
    feed = [("left", 0, "L0"), ("right", 5 * MS, "R0"),  # exactly at the tolerance: a pair
            ("left", PERIOD, "L1"), ("right", PERIOD + 5 * MS + 1, "R1"),  # 1 ns too far
            ("left", 2 * PERIOD, "L2"), ("right", 2 * PERIOD, "R2")]
    events = run(sync, feed)
    assert pairs(events) == [("L0", "R0"), ("L2", "R2")]
    assert drops(events) == [("stamps too far apart", "L1", "R1")]
    assert sync.drops == {"stamps too far apart": 1}
    assert "+5.0 ms" in next(e.detail for e in events if not e.ok)


def test_lost_messages_drop_only_their_own_frame():
    sync = StereoSync(5 * MS)
    feed = []
    for i in range(6):
        if i != 2:
            feed.append(("left", i * PERIOD, f"L{i}"))
        if i != 4:
            feed.append(("right", i * PERIOD + MS, f"R{i}"))
    events = run(sync, feed)
    assert pairs(events) == [(f"L{i}", f"R{i}") for i in (0, 1, 3, 5)]
    assert drops(events) == [("no left image", None, "R2"), ("no right image", "L4", None)]
    assert [e.stamp_ns for e in events] == sorted(e.stamp_ns for e in events)


def test_reordering_within_the_window_still_pairs_and_releases_in_stamp_order():
    sync = StereoSync(5 * MS, queue_size=8, reorder_ns=3 * PERIOD)
    # arrival order shuffled within +-2 frames on each stream
    feed = [("left", 1 * PERIOD, "L1"), ("left", 0, "L0"), ("right", 2 * PERIOD, "R2"), ("right", 0, "R0"),
            ("left", 3 * PERIOD, "L3"), ("right", 1 * PERIOD, "R1"), ("left", 2 * PERIOD, "L2"), ("right", 3 * PERIOD, "R3"),
            ("left", 4 * PERIOD, "L4"), ("right", 4 * PERIOD, "R4")]
    events = run(sync, feed)
    assert pairs(events) == [(f"L{i}", f"R{i}") for i in range(5)]
    assert not drops(events)


def test_without_a_hold_a_late_message_is_dropped_and_counted():
    sync = StereoSync(5 * MS, reorder_ns=0)
    feed = [("left", 0, "L0"), ("left", PERIOD, "L1"), ("right", PERIOD, "R1"), ("right", 0, "R0")]
    events = run(sync, feed)
    assert pairs(events) == [("L1", "R1")]
    # R1 moved the right stream past L0, so L0 was given up; R0 then came after newer events were released
    assert drops(events) == [("no right image", "L0", None), ("out of order", None, "R0")]
    assert sync.drops == {"no right image": 1, "out of order": 1}
    # the same arrival order with a hold pairs everything
    held = StereoSync(5 * MS, reorder_ns=2 * PERIOD)
    assert pairs(run(held, feed)) == [("L0", "R0"), ("L1", "R1")]


def test_queues_are_bounded_and_every_message_is_accounted_for():
    sync = StereoSync(5 * MS, queue_size=4)
    for i in range(100):  # the right camera is dead
        sync.add_left(i * PERIOD, i)
        assert len(sync.left.items) <= 4 and sync.pending <= 4 + 4 * 4
    events = sync.flush()
    released = sync.drops["queue full"] + sync.drops["no right image"]
    assert released == 100 and sync.drops["queue full"] >= 90
    assert sync.pairs == 0 and sync.pending == 0 and len(events) <= 100


def test_camera_info_is_attached_by_stamp():
    sync = StereoSync(5 * MS)
    sync.add_info("left", 0, "info-L0")
    sync.add_info("left", PERIOD, "info-L1")
    sync.add_info("right", 0, "info-R0")
    sync.add_left(0, "L0")
    (first,) = sync.add_right(0, "R0")
    assert (first.left_info, first.right_info) == ("info-L0", "info-R0")
    sync.add_left(2 * PERIOD, "L2")
    (second,) = sync.add_right(2 * PERIOD, "R2")
    assert (second.left_info, second.right_info) == ("info-L1", "info-R0")  # the latest older ones
    lonely = StereoSync(5 * MS)
    lonely.add_left(0, "L")
    (event,) = lonely.add_right(0, "R")
    assert event.left_info is None and event.right_info is None


def test_mono_mode_passes_frames_through_with_info():
    sync = StereoSync(stereo=False)
    sync.add_info("left", 0, "cam")
    out = [e for i in range(3) for e in sync.add_left(i * PERIOD, i)] + sync.flush()
    assert [(e.left, e.left_info, e.right) for e in out] == [(0, "cam", None), (1, "cam", None), (2, "cam", None)]
    with pytest.raises(ValueError):
        sync.add_right(0, "R")


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError):
        StereoSync(-1)
    with pytest.raises(ValueError):
        StereoSync(queue_size=0)
    with pytest.raises(ValueError, match="unknown stream"):
        StereoSync().add("middle", 0, None)
