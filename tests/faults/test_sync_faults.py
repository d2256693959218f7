"""Fault: dropped and reordered messages. Left/right out of order, one side missing, camera_info late.

Directly on StereoSync (the core; its basic cases are in tests/sources/test_sync.py): a long seeded stream with
every fault mixed in, where each image must end in exactly one event (a correct pair, or a drop with its reason),
every frame that can be paired is, and memory stays bounded. Then through the perception node over DDS (the
tests/ros machinery, peer in tests/faults/peer.py): camera_info late, right before left, a missing right image,
left/right too far apart, a clock jump back; each is counted under its reason on /diagnostics and the next good
frame's disparity arrives. Reduced form: 400 synthetic frames; 4 EuRoC frames over DDS (about 30 s).
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from perception.sources.sync import StereoSync
from tests.ros.conftest import run_peer as ros_peer

MS = 1_000_000
PERIOD = 50 * MS
REASONS = {"no right image", "no left image", "stamps too far apart", "queue full", "out of order"}


def _faulty_stream(n: int, seed: int, max_delay_ms: float):
    """(arrival time, kind, stamp, payload) for n frames with lost sides, far partners, late infos, jitter."""
    rng = np.random.default_rng(seed)
    plan, msgs = {}, []
    for i in range(n):
        stamp = i * PERIOD
        fate = rng.choice(["ok", "no-left", "no-right", "far"], p=[0.7, 0.1, 0.1, 0.1])
        plan[i] = fate
        dt_right = int(rng.integers(-2, 3)) * MS if fate != "far" else 20 * MS
        if fate != "no-left":
            msgs.append((stamp + rng.uniform(0, max_delay_ms) * MS, "left", stamp, f"L{i}"))
        if fate != "no-right":
            msgs.append((stamp + rng.uniform(0, max_delay_ms) * MS, "right", stamp + dt_right, f"R{i}"))
        late = rng.uniform(0, 3 * max_delay_ms) * MS  # camera_info often arrives after its images
        msgs += [(stamp + late, "left_info", stamp, f"IL{i}"), (stamp + late, "right_info", stamp, f"IR{i}")]
    msgs.sort(key=lambda m: m[0])
    return plan, msgs


@pytest.mark.parametrize("max_delay_ms, reorder_ms", [(0.0, 0), (30.0, 40), (80.0, 100)],
                         ids=["in-order", "reordered", "reordered-more-than-a-period"])
def test_every_image_is_accounted_for_once_and_what_can_pair_does(max_delay_ms, reorder_ms):
    plan, msgs = _faulty_stream(400, seed=int(max_delay_ms), max_delay_ms=max_delay_ms)
    sync = StereoSync(5 * MS, queue_size=10, reorder_ns=reorder_ms * MS)
    events, peak = [], 0
    for _, kind, stamp, payload in msgs:
        events += sync.add(kind, stamp, payload)
        peak = max(peak, sync.pending)
    events += sync.flush()

    seen = Counter()
    for e in events:
        for p in (e.left, e.right):
            if p is not None:
                seen[p] += 1
    sent = Counter(p for _, k, _, p in msgs if k in ("left", "right"))
    assert seen == sent  # every image exactly once: never lost silently, never used twice
    pairs = [(e.left, e.right) for e in events if e.ok]
    assert all(left[1:] == right[1:] for left, right in pairs)  # a left is paired only with its own right
    assert {e.reason for e in events if not e.ok} <= REASONS and all(e.detail for e in events if not e.ok)
    assert sum(sync.drops.values()) == sum(1 for e in events if not e.ok) and sync.pairs == len(pairs)
    pairable = {i for i, fate in plan.items() if fate == "ok"}
    paired = {int(left[1:]) for left, _ in pairs}
    assert paired <= pairable
    if max_delay_ms <= reorder_ms:  # reordering within the hold: every pairable frame is paired
        assert paired == pairable
    else:  # beyond it: counted losses, but most frames still pair
        assert len(paired) > 0.6 * len(pairable)
    stamps = [e.stamp_ns for e in events if e.ok]
    assert stamps == sorted(stamps)  # released in stamp order
    assert peak <= 2 * sync.queue_size + 4 * sync.queue_size + 2  # bounded memory


def test_a_late_camera_info_is_found_by_stamp_once_it_arrives():
    """Images before their camera_info: the pair is released without it (the node then looks it up again by
    stamp, `_info`), and the store has it by stamp afterwards."""
    sync = StereoSync(5 * MS)
    events = sync.add_left(0, "L0") + sync.add_right(0, "R0")
    assert [(e.left_info, e.right_info) for e in events] == [(None, None)]
    sync.add_info("left", 0, "IL0")
    sync.add_info("right", 0, "IR0")
    assert sync.infos["left"].lookup(0) == "IL0" and sync.infos["right"].lookup(0) == "IR0"
    events = sync.add_left(PERIOD, "L1") + sync.add_right(PERIOD, "R1")
    assert [(e.left_info, e.right_info) for e in events] == [("IL0", "IR0")]  # the latest older one


def test_one_side_gone_for_a_while_then_back():
    sync = StereoSync(5 * MS, queue_size=5)
    events = []
    for i in range(30):
        events += sync.add_left(i * PERIOD, f"L{i}")
        if not 5 <= i < 20:  # the right camera stalls for 15 frames
            events += sync.add_right(i * PERIOD, f"R{i}")
    events += sync.flush()
    assert [e.left for e in events if e.ok] == [f"L{i}" for i in (*range(5), *range(20, 30))]
    assert sum(sync.drops.values()) == 15 and set(sync.drops) <= {"no right image", "queue full"}


# --- through the node over DDS ----------------------------------------------------------------------------------------
def run_peer(namespace_runner, tmp, scenario, bag, timeout=200):
    """tests/faults/peer.py SCENARIO on the bag in a private network namespace (tests.ros.conftest.run_peer)."""
    return ros_peer(namespace_runner, "tests.faults.peer", tmp, scenario, "--bag", str(bag), timeout=timeout)


@pytest.mark.ros
def test_the_node_pairs_what_it_can_and_counts_the_rest(namespace_runner, euroc_bag, tmp_path):
    r = run_peer(namespace_runner, tmp_path, "sync", euroc_bag)
    d = r["diagnostics"]
    # camera_info late: the frame without one is counted under that reason, the next frame (with it) goes through
    assert r["no_info_counted"] and not r["no_info_output"], d
    assert r["after_info_attempts"] > 0
    # right before left: still one pair
    assert r["reordered_paired"]
    # one side missing: that frame is dropped and counted; the next complete one is processed
    assert r["missing_counted"] and not r["missing_output"] and r["after_missing_attempts"] > 0, d
    # left and right too far apart: one dropped frame, counted
    assert r["far_counted"] and r["after_far_attempts"] > 0, d
    # a clock jump back: pairing restarts (counted), frames after the jump are processed
    assert r["after_jump_attempts"] > 0 and r["after_jump_attempts_2"] > 0, r["_node_log"][-2000:]
    assert "clock jumped back" in r["_node_log"]
    assert r["node_alive"]
    assert int(d["frames_processed"]) >= 6
