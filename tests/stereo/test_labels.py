"""Near-range labels: constructed scenes (flat ground, wall, box, slope, tall grass), label distributions, bad
input through the whole frame path (good, bad, good), and the real KITTI street pair."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from perception.camera import CameraInfo
from perception.frame import Frame, Header
from perception.stereo import DisparityConfig, compute_disparity, disparity_to_points
from perception.stereo.ground import GroundConfig, GroundEstimate, GroundEstimator, GroundPlane, GroundStatus
from perception.stereo.labels import (
    FOOTLINE, GROUND, LABEL_NAMES, OBSTACLE, SUPER_GROUND, SUPER_OBSTACLE, UNKNOWN, LabelConfig, label_near_range,
)
from perception.stereo.near_range import NearRangeLabeller

W, H, F = 320, 240, 240.0
CX, CY = (W - 1) / 2, (H - 1) / 2
CAM = CameraInfo.from_intrinsics(W, H, F, F, CX, CY, name="left")
CAM_R = CameraInfo.from_intrinsics(W, H, F, F, CX, CY, baseline=0.12, name="right")
LEVEL = GroundPlane(np.array([0.0, -1.0, 0.0]), 1.0)  # camera level, 1 m above the ground
Z_BASE = F / (168 - CY)  # an object standing at this depth has its base on row 168, the centre of window row 10


def rays():
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    return np.stack([(u - CX) / F, (v - CY) / F, np.ones_like(u)], -1)


def scene(box=None, wall=None, ramp_deg=None):
    """Ray-cast an organised cloud: ground 1 m below a level camera (rising at `ramp_deg` beyond z = 4 m), a box
    (x0, x1, z, height) or a wall (z, height) standing on it."""
    r = rays()
    with np.errstate(divide="ignore", invalid="ignore"):
        if ramp_deg is None:
            t = 1.0 / r[..., 1]
        else:
            k = np.tan(np.radians(ramp_deg))
            t = np.where(1.0 / r[..., 1] <= 4.0, 1.0 / r[..., 1], (1.0 + 4.0 * k) / (r[..., 1] + k))
    t[~(t > 0)] = np.inf
    solids = ([box] if box else []) + ([(-1e9, 1e9, wall[0], wall[1])] if wall else [])
    for x0, x1, z, hgt in solids:
        tz = np.full(t.shape, z)
        x, y = r[..., 0] * tz, r[..., 1] * tz
        hit = (x >= x0) & (x <= x1) & (y <= 1.0) & (y >= 1.0 - hgt)
        t = np.where(hit & (tz < t), tz, t)
    pts = r * t[..., None]
    pts[~np.isfinite(t)] = np.nan
    return pts.astype(np.float32)


def ground_of(*planes) -> GroundEstimate:
    return GroundEstimate(list(planes), planes[0], planes[0].d, 0.0, 0.0, None, GroundStatus.OK)


def classes(lab):
    return lab.classes


def test_flat_ground_is_super_ground_up_to_the_range_and_unknown_beyond():
    lab = label_near_range(scene(), ground_of(LEVEL), LabelConfig(), camera=CAM)
    c = classes(lab)
    assert lab.ok and lab.grid == (15, 10)
    assert np.all(c[:8] == UNKNOWN)  # above the horizon (row 119.5) and beyond 12 m (row 139.5)
    assert np.all(c[9:] == SUPER_GROUND)
    assert not np.isin(c, (FOOTLINE, OBSTACLE, SUPER_OBSTACLE)).any()
    assert np.all(lab.pixel_class[200:] == GROUND) and np.nanmax(np.abs(lab.height)) < 1e-4
    # the label image is the window grid painted with the classes; the distribution's mode is the class
    assert np.array_equal(lab.image[::16, ::32], c)
    p = lab.probabilities
    known = c > 0
    assert np.allclose(p[known].sum(-1), 1.0, atol=1e-5) and np.all(p[~known] == 0)
    assert np.array_equal(p[known].argmax(-1) + 1, c[known])
    w = lab.windows[(lab.windows["row"] == 12) & (lab.windows["col"] == 3)][0]
    assert w["class"] == SUPER_GROUND and w["confidence"] > 0.9 and w["coverage"] == 1.0
    assert w["distance_m"] == pytest.approx(np.linalg.norm(scene()[200, 111]), rel=0.1)
    assert lab.counts()["super_ground"] == int((c == SUPER_GROUND).sum()) and set(lab.counts()) == set(LABEL_NAMES)


def test_a_wall_is_super_obstacle_with_a_footline_at_its_base():
    lab = label_near_range(scene(wall=(Z_BASE, 2.5)), ground_of(LEVEL), LabelConfig(), camera=CAM)
    c = classes(lab)
    assert np.all(c[10] == FOOTLINE)  # the base (row 168) is centred in window row 10
    assert np.all(c[3:9] == SUPER_OBSTACLE)  # the wall above 0.3 m (rows <= 153)
    assert np.all(np.isin(c[9], (OBSTACLE, SUPER_OBSTACLE)))
    assert np.all(c[11:] == SUPER_GROUND)  # the ground in front
    assert np.all(lab.windows["moments"] == 0)  # a wall is not a slope


def test_a_box_on_the_ground_gives_a_footline_at_its_base_and_obstacle_above():
    pts = scene(box=(-1.3, 1.3, Z_BASE, 1.0))
    lab = label_near_range(pts, ground_of(LEVEL), LabelConfig(), camera=CAM)
    c = classes(lab)
    # the box covers columns 96..223 px: window columns 3..6 (32 px each)
    assert np.all(c[10, 3:7] == FOOTLINE)
    assert np.all(np.isin(c[8:10, 3:7], (OBSTACLE, SUPER_OBSTACLE)))
    assert np.all(c[8, 3:7] == SUPER_OBSTACLE)
    assert np.all(np.isin(c[10, [0, 1, 2, 7, 8, 9]], (GROUND, SUPER_GROUND)))  # beside the box: no footline
    assert np.all(c[11:] == SUPER_GROUND)
    # the box's far ends and top project behind its front face: their feet are hidden, no footline above the base
    assert not (c[:10] == FOOTLINE).any()


def test_moments_filter_slope_and_tall_grass_are_traversable():
    cfg = LabelConfig()
    ramp = scene(ramp_deg=10.0)  # a 10 deg slope from z = 4 m; the level plane is the only ground plane
    lab = label_near_range(ramp, ground_of(LEVEL), cfg, camera=CAM)
    off = label_near_range(ramp, ground_of(LEVEL), LabelConfig(moments=False), camera=CAM)
    row9 = lab.windows[lab.windows["row"] == 9]  # heights 0.17 .. 0.38 m: some points above 0.3 m
    assert np.all(off.classes[9] == OBSTACLE)
    assert np.all(row9["class"] == GROUND) and np.all(row9["moments"] == 1)
    assert np.all(lab.pixel_class[144:160] == GROUND)
    assert np.all(np.isin(lab.classes[8], (OBSTACLE, SUPER_OBSTACLE)))  # mean height > 0.5 m: not a slope
    assert not (lab.classes == FOOTLINE).any()  # a traversable slope makes no footline

    rng = np.random.default_rng(0)
    grass = scene()
    raise_ = (rng.random((H, W)) < 0.15) & (np.arange(H)[:, None] >= 176)
    grass[..., 1] -= np.where(raise_, rng.uniform(0.35, 0.5, (H, W)), 0.0).astype(np.float32)
    lab = label_near_range(grass, ground_of(LEVEL), cfg, camera=CAM)
    off = label_near_range(grass, ground_of(LEVEL), LabelConfig(moments=False), camera=CAM)
    assert np.all(np.isin(off.classes[11:], (OBSTACLE, FOOTLINE)))
    low = lab.windows[lab.windows["row"] >= 11]
    assert np.all(low["class"] == GROUND) and np.all(low["moments"] == 2)
    assert np.all(low["obstacle_fraction"] == 0) and np.all(lab.pixel_class[176:] == GROUND)


def test_a_second_ground_plane_applies_within_its_extent():
    ramp = scene(ramp_deg=10.0)
    k = np.tan(np.radians(10.0))
    hill = GroundPlane(np.array([0.0, -1.0, -k]) / np.hypot(1.0, k), (1.0 + 4.0 * k) / np.hypot(1.0, k),
                       extent=(-10.0, 10.0, 4.0, 12.0))
    lab = label_near_range(ramp, ground_of(LEVEL, hill), LabelConfig(moments=False), camera=CAM)
    assert np.all(np.isin(lab.classes[9:], (GROUND, SUPER_GROUND)))  # the slope is ground by its own plane
    assert np.nanmax(np.abs(lab.height)) < 1e-3


def test_labels_never_raise_for_bad_input():
    cfg = LabelConfig()
    failed = GroundEstimate.failed(GroundStatus.NO_GROUND, "no ground-like plane")
    lab = label_near_range(scene(), failed, cfg, camera=CAM)
    assert lab.status is GroundStatus.NO_GROUND and lab.reason == "no ground-like plane"
    assert lab.image.shape == (H, W) and not lab.image.any() and lab.coverage == 0.0
    assert np.all(lab.windows["probabilities"] == 0)
    bad = label_near_range(np.zeros((H, W)), ground_of(LEVEL), cfg)
    assert bad.status is GroundStatus.INVALID_INPUT and "HxWx3" in bad.reason
    bad = label_near_range(scene(), ground_of(LEVEL), cfg, confidence=np.ones((H, W + 1)), camera=CAM)
    assert bad.status is GroundStatus.INVALID_INPUT and "confidence" in bad.reason
    bad = label_near_range(scene(), ground_of(LEVEL), cfg, camera=CAM.scaled(W // 2, H // 2))
    assert bad.status is GroundStatus.INVALID_INPUT and "camera" in bad.reason
    nan = np.full((H, W, 3), np.nan, np.float32)
    assert label_near_range(nan, ground_of(LEVEL), cfg).status is GroundStatus.NO_POINTS
    with_inf = scene()
    with_inf[::3, ::3] = np.inf
    assert label_near_range(with_inf, ground_of(LEVEL), cfg, camera=CAM).classes[12:].min() >= SUPER_GROUND


def ground_pair(h=1.0, baseline=0.12, seed=0):
    """A rectified stereo pair of a textured ground plane 1 m below a level camera (far texture above it)."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.integers(0, 256, (H, W + 64)).astype(np.uint8), (3, 3), 0)
    v = np.arange(H, dtype=np.float32)
    d = np.where(v > CY + 4, F * baseline * (v - CY) / (F * h), 1.0).astype(np.float32)
    left = np.ascontiguousarray(tex[:, 32:32 + W])
    map_x = (np.arange(W, dtype=np.float32)[None, :] + 32 + d[:, None]).astype(np.float32)  # right(u) = left(u + d)
    map_y = np.repeat(v[:, None], W, 1)
    right = cv2.remap(tex, map_x, map_y, cv2.INTER_LINEAR)
    return left, right


def frame(i, left, right, left_info=CAM, right_info=CAM_R):
    return Frame(Header(i * 100_000_000, "left"), left, right, left_info, right_info, rectified=True, index=i)


def test_frame_sequence_good_bad_good_never_raises():
    left, right = ground_pair()
    lab = NearRangeLabeller(DisparityConfig(num_disparities=32), GroundConfig(max_missed=10))
    first = lab.process(frame(0, left, right))
    assert first.ok and first.ground.height_m == pytest.approx(1.0, abs=0.03)
    assert abs(first.ground.pitch_deg) < 0.5 and abs(first.ground.roll_deg) < 0.5
    assert (first.labels.classes[11:] >= SUPER_GROUND).all() and not np.isin(first.labels.classes, (4, 5)).any()
    flat = np.full((H, W), 128, np.uint8)
    bad = [
        (frame(1, left, right, left_info=None), GroundStatus.INVALID_INPUT, "camera_info"),
        (frame(2, left, right[:, :-8]), GroundStatus.INVALID_INPUT, "stereo pair"),
        (frame(3, flat, flat), GroundStatus.NO_POINTS, "textureless"),
        (frame(4, left, None), GroundStatus.INVALID_INPUT, "mono"),
        (frame(5, left, right, right_info=CAM), GroundStatus.INVALID_INPUT, "baseline"),
    ]
    for f, status, word in bad:
        res = lab.process(f)
        assert res.status is status and word in res.reason, (f.index, res.reason)
        assert res.labels.image.shape == (H, W) and not res.labels.image.any()
        assert res.labels.status is status
    again = lab.process(frame(6, left, right))
    assert again.ok and not again.ground.reset  # the filter kept its plane through the bad frames
    assert np.array_equal(again.labels.classes, first.labels.classes)
    assert set(again.timings_ms) >= {"disparity", "ground", "labels"}


KITTI_FX, KITTI_CX, KITTI_CY = 718.856, 607.1928, 185.2157
KITTI_BASELINE = 386.1448 / 718.856  # KITTI odometry calib.txt, sequences 00-02: P1[0,3] = -386.1448 -> 0.537 m


def test_kitti_camera_height_and_the_road_is_ground(data_dir):
    folder = Path(data_dir) / "kitti_street_pair"
    left = cv2.imread(str(folder / "left.png"), cv2.IMREAD_GRAYSCALE)
    right = cv2.imread(str(folder / "right.png"), cv2.IMREAD_GRAYSCALE)
    if left is None or right is None:
        pytest.skip("kitti_street_pair not in PERCEPTION_DATA")
    h, w = left.shape
    cam = CameraInfo.from_intrinsics(w, h, KITTI_FX, KITTI_FX, KITTI_CX, KITTI_CY)
    disp = compute_disparity(left, right, DisparityConfig(num_disparities=128))
    pts = disparity_to_points(disp.disparity, cam, KITTI_BASELINE)
    conf = np.where(disp.measured, disp.confidence, 0.0)
    est = GroundEstimator(GroundConfig(), cam).update(pts, conf)
    assert est.ok
    assert est.height_m == pytest.approx(1.65, abs=0.1)  # measured 1.68 m; KITTI: cameras 1.65 m above the road
    assert abs(est.pitch_deg) < 3.0 and abs(est.roll_deg) < 3.0
    assert 150 < est.horizon.row(w / 2) < 200  # the road's vanishing point is near row 175
    lab = label_near_range(pts, est, LabelConfig(), conf, cam)
    # the road straight ahead, 6..12 m: windows whose centre lies in rows 288..376, columns 352..736
    win = lab.windows
    cu, cv = win["u0"] + 16, win["v0"] + 8
    road = (cv >= 288) & (cu >= 352) & (cu <= 736)
    assert road.sum() >= 60
    labelled = win["class"][road][win["class"][road] > 0]
    assert labelled.size >= 0.9 * road.sum()
    assert np.isin(labelled, (SUPER_GROUND, GROUND)).mean() >= 0.95
    # the parked car on the right (columns 750..980, rows 200..300) is obstacle
    car = (cv >= 208) & (cv <= 296) & (cu >= 770) & (cu <= 960)
    assert np.isin(win["class"][car], (OBSTACLE, SUPER_OBSTACLE, FOOTLINE)).mean() >= 0.6
