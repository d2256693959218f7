"""Tracker velocity, ids and time to collision; warning zones; detections as map obstacles."""
from __future__ import annotations

import numpy as np
import pytest

from perception.detect.alerts import WarningConfig, evaluate_warnings
from perception.detect.obstacles import camera_to_base, detections_to_map_obstacles
from perception.detect.tracking import Tracker, TrackerConfig
from perception.errors import InputError
from perception.io.detections import Detection2D

FX, CX, CY = 500.0, 320.0, 240.0


def det_at(x_fwd: float, y_left: float, cls: str = "car", width_m: float = 1.8, height_m: float = 1.5):
    """A Detection2D of an object at base-aligned (x forward, y left), its camera position (X right, Z fwd)."""
    X, Z = -y_left, x_fwd
    u = CX + FX * X / Z
    w, h = FX * width_m / Z, FX * height_m / Z
    return Detection2D(cx=u, cy=CY, width=w, height=h, class_id=cls, score=0.9, position=(X, 0.0, Z))


def run(tracker, path, dt=0.1, rng=None, noise=0.0):
    tracks = []
    for k, objs in enumerate(path):
        dets = []
        for x, y, cls in objs:
            n = rng.normal(0, noise * x, 2) if rng is not None else (0, 0)
            dets.append(det_at(x + n[0], y + n[1], cls))
        tracks = tracker.update(dets, k * dt)
    return tracks, dets


def test_tracker_velocity_sign_magnitude_and_ttc():
    rng = np.random.default_rng(1)
    # a car closing from 30 m at 5 m/s; a pedestrian walking right-to-left (y increasing) at 1.5 m/s, 12 m ahead
    path = [[(30 - 5 * 0.1 * k, 0.0, "car"), (12.0, -3 + 1.5 * 0.1 * k, "pedestrian")] for k in range(25)]
    tracks, dets = run(Tracker(), path, rng=rng, noise=0.01)
    assert len(tracks) == 2 and {d.track_id for d in dets} == {"1", "2"}  # ids kept all along
    car = next(t for t in tracks if t.class_id == "car")
    ped = next(t for t in tracks if t.class_id == "pedestrian")
    assert car.velocity[0] == pytest.approx(-5.0, abs=0.6) and abs(car.velocity[1]) < 0.5
    assert ped.velocity[1] == pytest.approx(1.5, abs=0.4) and abs(ped.velocity[0]) < 0.6
    range_now = 30 - 5 * 0.1 * 24
    assert car.ttc() == pytest.approx(range_now / 5.0, rel=0.15)
    assert ped.ttc() == float("inf") or ped.ttc() > 10  # crossing, barely closing


def test_receding_object_has_no_ttc_and_lost_tracks_end():
    tracker = Tracker(TrackerConfig(max_missed=2))
    tracks, _ = run(tracker, [[(10 + 0.5 * k, 0.0, "car")] for k in range(10)])
    assert tracks[0].velocity[0] > 4 and tracks[0].ttc() == float("inf")
    for k in range(3):
        tracker.update([], 1.0 + 0.1 * k)
    assert tracker.tracks == []
    with pytest.raises(InputError):
        TrackerConfig(min_hits=0)


def test_tracker_keeps_ids_apart_for_neighbours_of_other_classes():
    path = [[(15.0, 0.0, "pedestrian"), (15.2, 0.3, "cyclist")] for _ in range(5)]
    tracks, dets = run(Tracker(), path)
    assert sorted(t.class_id for t in tracks) == ["cyclist", "pedestrian"]
    assert len({d.track_id for d in dets}) == 2


class T:  # a track stand-in with the fields evaluate_warnings reads
    def __init__(self, p, v, cls, tid=1):
        self.position, self.velocity, self.class_id, self.track_id = p, v, cls, tid

    def ttc(self, min_closing=0.2):
        p, v = np.array(self.position), np.array(self.velocity)
        c = -(p @ v) / np.linalg.norm(p)
        return float(np.linalg.norm(p) / c) if c >= min_closing else float("inf")


def test_warning_zones():
    cfg = WarningConfig(path_half_width=1.5, fcw_ttc_s=2.0, fcw_caution_ttc_s=3.5, vru_half_width=2.0, vru_range=15)
    w = evaluate_warnings([T((15.0, 0.2), (-10.0, 0.0), "car")], cfg)  # 1.5 s to collision, in path
    assert [(x.kind, x.level) for x in w] == [("forward_collision", "warning")]
    w = evaluate_warnings([T((30.0, 0.0), (-10.0, 0.0), "car")], cfg)  # 3 s: caution
    assert [(x.kind, x.level) for x in w] == [("forward_collision", "caution")]
    assert evaluate_warnings([T((15.0, 5.0), (-10.0, 0.0), "car")], cfg) == []  # next lane, stays there
    assert evaluate_warnings([T((15.0, 0.0), (2.0, 0.0), "car")], cfg) == []  # moving away
    w = evaluate_warnings([T((10.0, 1.0), (0.0, 0.0), "pedestrian")], cfg)  # standing in the zone
    assert [(x.kind, x.level) for x in w] == [("pedestrian_in_path", "warning")]
    w = evaluate_warnings([T((10.0, 4.0), (0.0, -1.5), "pedestrian")], cfg)  # walking in within 2 s
    assert [(x.kind, x.level) for x in w] == [("pedestrian_in_path", "caution")]
    assert evaluate_warnings([T((10.0, 6.0), (0.0, -0.5), "pedestrian")], cfg) == []  # too slow to enter
    # a zone parameter changes the outcome: a wider zone takes the pedestrian at 4 m in
    w = evaluate_warnings([T((10.0, 4.0), (0.0, 0.0), "pedestrian")], WarningConfig(vru_half_width=4.5))
    assert w and w[0].level == "warning"
    with pytest.raises(InputError):
        WarningConfig(fcw_ttc_s=-1)


def test_detections_become_map_obstacles_with_extent():
    # camera 0.3 m ahead of base_link, 1 m up, optical axes (z forward, x right, y down)
    T = np.eye(4)
    T[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]
    T[:3, 3] = [0.3, 0.0, 1.0]
    np.testing.assert_allclose(camera_to_base([[0, 0, 10]], T)[0], [10.3, 0, 1.0])
    car = det_at(10.0, 0.0, "car", width_m=1.8)
    ped = det_at(8.0, 2.0, "pedestrian", width_m=0.6)
    ped.track_id = "7"
    far = det_at(20.0, 0.0, "car")
    far.position = None  # not ranged: skipped
    obs = detections_to_map_obstacles([car, ped, far], T, fx=FX)
    assert len(obs) == 2
    c, p = obs
    assert c.x == pytest.approx(10.3 + 1.5, abs=1e-6) and c.y == pytest.approx(0, abs=1e-6)  # surface + depth / 2
    assert np.ptp(c.polygon[:, 1]) == pytest.approx(1.8, abs=1e-6)  # width from the box and the range
    assert c.radius == pytest.approx(np.hypot(0.9, 1.5), abs=1e-6)
    assert p.y > 1.5 and p.class_id == "pedestrian" and p.track_id == "7"
