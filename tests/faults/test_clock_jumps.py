"""Fault: clock jumps in the stamps (a bag replayed after a sim-time reset, a camera re-synchronising its clock).

Each time-dependent component directly (the core, no ROS): the stereo synchroniser, the tracker, the terrain map;
then the whole pipeline on synthetic frames whose stamps jump back and far forward. None may crash or produce
NaN/inf; each resets its time state with a counted, logged reason and works normally on the frames after the jump.
Reduced form: a handful of frames; the full form is the same on a long drive with repeated resets.
"""
from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import pytest

from perception.detect.tracking import Tracker
from perception.frame import Header, Pose
from perception.io.detections import Detection2D
from perception.mapping import MapConfig
from perception.mapping.terrain_map import TerrainMap
from perception.sources.sync import StereoSync

MS = 1_000_000
S = 1_000_000_000
T0 = 1_403_715_273 * S  # an epoch stamp like EuRoC's


# --- stereo synchroniser -------------------------------------------------------------------------------------------
def _feed(sync, stamps, dt_right=MS):
    events = []
    for s in stamps:
        events += sync.add_left(s, f"L{s}")
        events += sync.add_right(s + dt_right, f"R{s}")
    return events


def test_sync_pairs_again_after_the_clock_jumps_back(caplog):
    sync = StereoSync(5 * MS)
    before = [T0 + i * 50 * MS for i in range(5)]
    after = [i * 50 * MS for i in range(5)]  # sim time restarted at 0
    with caplog.at_level(logging.WARNING, "perception.sources"):
        events = _feed(sync, before) + _feed(sync, after) + sync.flush()
    paired = [e.stamp_ns for e in events if e.ok]
    assert paired == before + after  # without the reset every frame after the jump is dropped "out of order"
    assert sync.resets == {"clock jumped back": 1} and "out of order" not in sync.drops
    assert any("clock jumped back" in r.getMessage() for r in caplog.records)


def test_sync_drops_only_what_was_pending_across_a_backward_jump():
    sync = StereoSync(5 * MS)
    events = _feed(sync, [T0, T0 + 50 * MS])
    events += sync.add_left(T0 + 100 * MS, "L-lonely")  # its right never comes: the clock jumps first
    events += _feed(sync, [0, 50 * MS]) + sync.flush()
    drops = [(e.reason, e.left) for e in events if not e.ok]
    assert drops == [("clock jumped back", "L-lonely")]
    assert [e.stamp_ns for e in events if e.ok] == [T0, T0 + 50 * MS, 0, 50 * MS]
    assert sync.pending == 0


def test_sync_across_a_far_forward_jump_and_a_camera_info_from_before_it():
    sync = StereoSync(5 * MS)
    sync.add_info("left", T0, "info-L")
    sync.add_info("right", T0, "info-R")
    events = _feed(sync, [T0, T0 + 50 * MS]) + _feed(sync, [T0 + 3600 * S + i * 50 * MS for i in range(3)])
    events += sync.flush()
    pairs = [e for e in events if e.ok]
    assert len(pairs) == 5 and not sync.drops and not sync.resets
    assert all(e.left_info == "info-L" and e.right_info == "info-R" for e in pairs)


def test_sync_keeps_the_calibration_across_a_reset():
    sync = StereoSync(5 * MS)
    sync.add_info("left", T0, "info-L")
    sync.add_info("right", T0, "info-R")
    events = _feed(sync, [T0]) + _feed(sync, [0, 50 * MS])
    assert [(e.left_info, e.right_info) for e in events if e.ok] == [("info-L", "info-R")] * 3


# --- tracker ---------------------------------------------------------------------------------------------------------
def _car(x_fwd: float) -> Detection2D:
    """A car straight ahead at x_fwd metres, as the detector + stereo ranging give it (camera X, Z)."""
    z, f, cx, cy = x_fwd, 500.0, 320.0, 240.0
    return Detection2D(cx=cx, cy=cy, width=f * 1.8 / z, height=f * 1.5 / z, class_id="car", score=0.9,
                       position=(0.0, 0.0, z))


def _drive(tracker, stamps_s, x0=40.0, speed=5.0):
    """The car closes at `speed` m/s in real time (k-th frame at 0.1 s real steps) whatever the stamps say."""
    out = []
    for k, stamp in enumerate(stamps_s):
        tracks = tracker.update([_car(x0 - speed * 0.1 * k)], stamp)
        for t in tracks:
            assert all(math.isfinite(v) for v in (*t.position, *(t.velocity or (0, 0)))), t
            ttc = t.ttc()
            assert ttc == math.inf or 0 < ttc < 1e3, ttc
        out.append(tracks)
    return out


@pytest.mark.parametrize("jump_s, reason", [(-1000.0, "clock jumped back"), (1e6, "stamp gap"),
                                             (-T0 / S, "clock jumped back")], ids=["back", "forward", "to-zero"])
def test_tracker_resets_on_a_jump_and_tracks_again_with_sane_ttc(jump_s, reason, caplog):
    tracker = Tracker()
    start = T0 / S
    stamps = [start + 0.1 * k for k in range(10)]
    stamps += [stamps[-1] + jump_s + 0.1 * k for k in range(1, 11)]
    with caplog.at_level(logging.WARNING, "perception.detect"):
        tracks = _drive(tracker, stamps)
    assert tracker.resets == {reason: 1}
    assert any(reason in r.getMessage() for r in caplog.records)
    before, after = tracks[9][0], tracks[-1][0]
    assert after.track_id != before.track_id  # a new track, not the old one predicted across the jump
    # the new track's velocity is the car's: closing at 5 m/s, TTC = range / 5
    assert after.velocity[0] == pytest.approx(-5.0, abs=1.0)
    assert after.ttc() == pytest.approx(after.range_m / 5.0, rel=0.25)


def test_tracker_without_a_jump_keeps_its_track():
    tracker = Tracker()
    tracks = _drive(tracker, [T0 / S + 0.1 * k for k in range(20)])
    assert not tracker.resets and len({t[0].track_id for t in tracks if t}) == 1


# --- terrain map -----------------------------------------------------------------------------------------------------
POSE = Pose(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))


def _observe(tmap, stamp_ns):
    xy = np.array([[5.05, 0.05], [6.05, 1.05], [7.05, -0.95]])
    tmap.add_observations(xy, np.array([1, 1, 3]), POSE, stamp_ns=stamp_ns)
    grid = tmap.cost_grid(0.1, 20.0)
    data = np.asarray(grid[0])
    assert data.dtype == np.int8 and ((data == -1) | ((data >= 0) & (data <= 100))).all()
    return data


def _evidence(tmap) -> float:
    return float(np.asarray(tmap.histogram_grid(0.1, 20.0)[0], np.float64).sum())


def test_map_restarts_its_time_base_when_the_clock_jumps_back_and_forgets_again():
    tmap = TerrainMap(MapConfig(half_life_s=10.0))
    for k in range(3):
        _observe(tmap, T0 + k * 100 * MS)
    assert tmap.clock_resets == 0
    _observe(tmap, 0)  # sim time reset
    assert tmap.clock_resets == 1 and tmap.stamp_ns == 0
    known = _evidence(tmap)
    tmap.add_observations(np.zeros((0, 2)), np.zeros((0, 5)), POSE, stamp_ns=10 * S)  # one half-life later
    # forgetting works on the new clock (before the fix it froze until the stamps passed the old clock)
    assert _evidence(tmap) == pytest.approx(known / 2, rel=0.05)


def test_map_across_a_far_forward_jump_forgets_and_learns_again():
    tmap = TerrainMap(MapConfig(half_life_s=10.0))
    _observe(tmap, T0)
    data = _observe(tmap, T0 + 10 ** 9 * S)  # ~30 years later: everything before is forgotten, this frame counts
    assert (data >= 0).any() and np.isfinite(_evidence(tmap)) and tmap.clock_resets == 0


# --- end to end: the pipeline -----------------------------------------------------------------------------------------
def test_pipeline_on_frames_whose_stamps_jump(caplog):
    from perception.pipeline.core import Pipeline
    from perception.sources.synthetic import SyntheticSource

    stamps = [T0, T0 + 100 * MS, T0 + 200 * MS, 0, 100 * MS, 100 * MS + 7200 * S]  # back to 0, then +2 h
    pipeline = Pipeline()
    try:
        with SyntheticSource(seed=3, frames=len(stamps), size="640x480") as source:
            frames = [dataclasses.replace(f, header=Header(s, f.header.frame_id)) for f, s in zip(source, stamps)]
        with caplog.at_level(logging.WARNING):
            results = [pipeline.process(f) for f in frames]
    finally:
        pipeline.close()
    assert [r.error for r in results] == [""] * len(stamps)
    assert [r.header.stamp_ns for r in results] == stamps  # outputs keep their input's stamp, jumped or not
    for r in results:
        assert r.fused_map is not None and r.terrain_map is not None
        for grid in (r.fused_map, r.terrain_map):
            data = np.asarray(grid[0])
            assert ((data == -1) | ((data >= 0) & (data <= 100))).all()
        for track in r.detections.tracks:
            assert all(math.isfinite(v) for v in (*track.position, *(track.velocity or (0, 0))))
            assert track.ttc() == math.inf or 0 < track.ttc() < 1e3
    terrain = pipeline.terrain
    assert terrain.map.clock_resets == 1 and terrain.fused.clock_resets == 1
    assert terrain.map.stamp_ns == stamps[-1]
    assert pipeline.detect.tracker.resets == {"clock jumped back": 1, "stamp gap": 1}
    assert pipeline.resets() == {"tracker: clock jumped back": 1, "tracker: stamp gap": 1,
                                 "terrain map: clock jumped back": 1, "fused map: clock jumped back": 1}
