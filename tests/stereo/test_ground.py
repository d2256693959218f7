"""Ground plane: robust fit with outliers, several planes, camera height/pitch/roll, horizon, smoothing, no-ground."""
from __future__ import annotations

import numpy as np
import pytest

from perception.camera import CameraInfo
from perception.errors import InputError
from perception.stereo.ground import (
    GroundConfig, GroundEstimator, GroundPlane, GroundStatus, angles_from_up, estimate_planes, horizon_line,
    intrinsics_from_points, plane_from_points, plane_uncertainty, smooth_plane, up_from_angles,
)

W, H, F = 160, 120, 120.0
CAM = CameraInfo.from_intrinsics(W, H, F, F, (W - 1) / 2, (H - 1) / 2)


def ground_cloud(pitch=0.0, roll=0.0, height=1.2, w=W, h=H, f=F, max_range=30.0):
    """Organised HxWx3 cloud of a flat ground seen by a camera at `height` with `pitch` (down +), `roll` (deg)."""
    n = up_from_angles(pitch, roll)
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([(u - (w - 1) / 2) / f, (v - (h - 1) / 2) / f, np.ones_like(u)], -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -height / (rays @ n)  # n . (t r) + height = 0
    t[~(t > 0)] = np.nan
    pts = rays * t[..., None]
    pts[np.linalg.norm(pts, axis=-1) > max_range] = np.nan
    return pts.astype(np.float32)


def test_up_vector_and_angles_round_trip_and_follow_ros_signs():
    for p, r in ((0.0, 0.0), (12.0, -4.0), (-7.5, 20.0)):
        assert angles_from_up(up_from_angles(p, r)) == pytest.approx((p, r), abs=1e-9)
    # looking down (pitch > 0): up has a negative optical-z component (the ground rises toward the camera's view)
    assert up_from_angles(10.0, 0.0)[2] < 0
    # right side down (roll > 0): the right (+x) side is lower, so up leans to -x
    assert up_from_angles(0.0, 10.0)[0] < 0


@pytest.mark.parametrize("method", ["ransac", "hough"])
def test_plane_with_outliers_is_recovered(method):
    rng = np.random.default_rng(1)
    n_true = up_from_angles(8.0, -3.0)
    d_true = 1.4
    # 3000 ground points, 1 cm noise, plus 40 % outliers scattered in front of the camera
    a, b = np.linalg.svd(np.eye(3) - np.outer(n_true, n_true))[0][:, :2].T
    s, t = rng.uniform(-5, 5, 3000), rng.uniform(0, 10, 3000)
    ground = -d_true * n_true + s[:, None] * a + t[:, None] * b
    ground = ground[(ground[:, 2] > 0.6) & (ground[:, 2] < 11.5)]
    ground += rng.normal(0, 0.01, ground.shape)
    outliers = np.stack([rng.uniform(-4, 4, 2000), rng.uniform(-3, 1.0, 2000), rng.uniform(1, 11, 2000)], 1)
    pts = np.concatenate([ground, outliers]).astype(np.float32)
    planes, status, reason, n = estimate_planes(pts, None, GroundConfig(method=method, max_planes=1))
    assert status is GroundStatus.OK and reason == "" and n == len(pts)
    p = planes[0]
    assert np.degrees(np.arccos(p.normal @ n_true)) < 0.3
    assert p.d == pytest.approx(d_true, abs=0.01)
    assert p.rms < 0.03 and p.inliers >= 0.9 * len(ground)


def test_two_planes_are_both_recovered_and_a_raised_platform_is_not_ground():
    rng = np.random.default_rng(2)
    # near: level ground 1.0 m below the camera for z < 6; far: a 10 deg hill starting at z = 6
    z1 = rng.uniform(1, 6, 4000)
    near = np.stack([rng.uniform(-3, 3, 4000), np.full(4000, 1.0), z1], 1)
    z2 = rng.uniform(6, 11.5, 2500)
    far = np.stack([rng.uniform(-3, 3, 2500), 1.0 - np.tan(np.radians(10)) * (z2 - 6), z2], 1)
    pts = np.concatenate([near, far]) + rng.normal(0, 0.005, (6500, 3))
    planes, status, _, _ = estimate_planes(pts.astype(np.float32), None, GroundConfig())
    assert status is GroundStatus.OK and len(planes) == 2
    assert np.degrees(np.arccos(-planes[0].normal[1])) < 0.3 and planes[0].d == pytest.approx(1.0, abs=0.01)
    hill = np.array([0.0, -np.cos(np.radians(10)), -np.sin(np.radians(10))])
    assert np.degrees(np.arccos(planes[1].normal @ hill)) < 0.5
    assert planes[1].extent[2] > 5.0  # the hill's inliers start where it starts
    # the same far patch lifted 0.8 m off the ground everywhere (a car roof, a table): not a second ground plane
    roof = np.stack([rng.uniform(-1, 1, 2500), np.full(2500, 0.2), rng.uniform(6, 9, 2500)], 1)
    planes, _, _, _ = estimate_planes(np.concatenate([near, roof]).astype(np.float32), None, GroundConfig())
    assert len(planes) == 1


def test_height_pitch_roll_and_horizon_from_a_known_camera():
    pts = ground_cloud(pitch=9.0, roll=-2.5, height=1.3)
    est = GroundEstimator(GroundConfig(prior_pitch_deg=5.0), CAM).update(pts)
    assert est.ok and est.status is GroundStatus.OK
    assert est.height_m == pytest.approx(1.3, abs=2e-3)
    assert est.pitch_deg == pytest.approx(9.0, abs=0.05)
    assert est.roll_deg == pytest.approx(-2.5, abs=0.05)
    hz = est.horizon
    # level camera: the horizon is the row cy - fy tan(pitch), tilted by -tan(roll)
    assert hz.slope == pytest.approx(-np.tan(np.radians(-2.5)), abs=1e-3)
    assert hz.row(CAM.cx) == pytest.approx(CAM.cy - F * np.tan(np.radians(9.0)) / np.cos(np.radians(2.5)), abs=0.3)
    assert hz.p0[0] == 0.0 and hz.p1[0] == W - 1
    # every ground pixel lies below the horizon, and the horizon rays are parallel to the plane
    v, u = np.nonzero(np.isfinite(pts[..., 2]))
    assert np.all(v > hz.row(u) - 0.5)
    for uu, vv in (hz.p0, hz.p1):
        ray = np.array([(uu - CAM.cx) / F, (vv - CAM.cy) / F, 1.0])
        assert abs(est.primary.normal @ ray) < 1e-6
    # the horizon also comes out without a camera model (intrinsics recovered from the organised cloud)
    est2 = GroundEstimator(GroundConfig(prior_pitch_deg=5.0)).update(pts)
    assert est2.horizon.intercept == pytest.approx(hz.intercept, abs=0.05)
    fx, fy, cx, cy, w, h = intrinsics_from_points(pts)
    assert (fx, fy, cx, cy, w, h) == pytest.approx((F, F, CAM.cx, CAM.cy, W, H), abs=1e-2)
    assert horizon_line(np.array([0.0, 0.0, -1.0]), CAM) is None  # looking straight down: no horizon


def test_least_squares_refit_is_the_smallest_eigenvector():
    rng = np.random.default_rng(3)
    p = np.stack([rng.uniform(-2, 2, 500), 1.5 + 0.1 * rng.uniform(-2, 2, 500), rng.uniform(1, 8, 500)], 1)
    p[:, 1] = 1.5 + 0.05 * p[:, 0]
    n, d = plane_from_points(p)
    expect = np.array([-0.05, 1.0, 0.0]) / np.hypot(0.05, 1.0) * -1  # oriented up (-y)
    assert n == pytest.approx(expect, abs=1e-9) and d == pytest.approx(1.5 / np.hypot(0.05, 1.0), abs=1e-9)
    assert plane_from_points(p[:2]) is None  # two points: no plane
    assert plane_from_points(np.outer(np.arange(10.0), [1.0, 2.0, 3.0])) is None  # collinear


def test_temporal_filter_follows_precise_fits_smooths_poor_ones_and_resets_on_a_jump():
    cfg = GroundConfig(motion_deg=0.5, motion_m=0.02, jump_deg=5.0, jump_m=0.2)
    wide = (-5.0, 5.0, 1.0, 12.0)

    def plane(pitch, d, inliers, rms):
        return GroundPlane(up_from_angles(pitch, 0.0), d, inliers, rms, 1.0, wide)

    precise = plane(5.0, 1.0, 20000, 0.01)
    out, state, reset = smooth_plane(None, precise, cfg)
    assert reset and out is precise and state.x == pytest.approx([5.0, 0.0, 1.0])
    assert np.all(plane_uncertainty(precise, cfg) < [0.02, 0.02, 0.001])
    # a precise fit of a real 1 deg pitch change passes (almost) unchanged: no lag
    out, state2, reset = smooth_plane(state, plane(6.0, 1.05, 20000, 0.01), cfg)
    assert not reset and angles_from_up(out.normal)[0] == pytest.approx(6.0, abs=0.01) and out.d == pytest.approx(
        1.05, abs=1e-3)
    # a poor fit (few points, 8 cm rms) of the same change is mostly averaged away
    sigma = plane_uncertainty(plane(6.0, 1.05, 300, 0.08), cfg)
    assert sigma[0] > 0.5
    out, _, reset = smooth_plane(state, plane(6.0, 1.05, 300, 0.08), cfg)
    assert not reset and 5.0 < angles_from_up(out.normal)[0] < 5.5
    # jumps reset the filter to the new plane: height, or tilt
    out, _, reset = smooth_plane(state, plane(5.0, 1.5, 20000, 0.01), cfg)
    assert reset and out.d == 1.5
    out, _, reset = smooth_plane(state, plane(12.0, 1.0, 300, 0.08), cfg)
    assert reset and angles_from_up(out.normal)[0] == pytest.approx(12.0)
    # switched off: every frame is taken as measured
    out, _, reset = smooth_plane(state, plane(6.0, 1.05, 300, 0.08), GroundConfig(temporal_filter=False))
    assert reset and angles_from_up(out.normal)[0] == pytest.approx(6.0)
    # a noisy sequence of poor fits around a fixed pitch: the filtered pitch varies far less than the measured one
    rng = np.random.default_rng(4)
    measured = 5.0 + rng.normal(0, 1.0, 40)
    state, filtered = None, []
    for m in measured:
        out, state, _ = smooth_plane(state, plane(float(m), 1.0, 300, 0.08), GroundConfig(jump_deg=10.0))
        filtered.append(angles_from_up(out.normal)[0])
    assert np.std(filtered[10:]) < 0.6 * np.std(measured[10:])


def test_estimator_tracks_clean_frames_and_forgets_after_missed_frames():
    est = GroundEstimator(GroundConfig(max_missed=1), CAM)
    e1 = est.update(ground_cloud(pitch=4.0, height=1.0))
    e2 = est.update(ground_cloud(pitch=5.0, height=1.1))
    assert e1.reset and not e2.reset and e2.smoothed
    assert e2.height_m == pytest.approx(1.1, abs=5e-3) and e2.pitch_deg == pytest.approx(5.0, abs=0.05)
    assert e2.planes[0].d == pytest.approx(1.1, abs=3e-3)  # the frame's own fit is kept too
    e3 = est.update(ground_cloud(pitch=5.0, height=1.8))  # jump: reset to the new plane
    assert e3.reset and e3.height_m == pytest.approx(1.8, abs=3e-3)
    # more bad frames than max_missed: the filter forgets and the next good frame starts afresh
    nan = np.full((H, W, 3), np.nan, np.float32)
    est.update(nan)
    est.update(nan)
    e4 = est.update(ground_cloud(pitch=5.0, height=1.7))
    assert e4.reset and e4.height_m == pytest.approx(1.7, abs=3e-3)


def test_no_ground_states_are_reported_never_raised():
    est = GroundEstimator(GroundConfig(max_missed=10), CAM)
    nan = np.full((H, W, 3), np.nan, np.float32)
    assert est.update(nan).status is GroundStatus.NO_POINTS
    inf = np.full((H, W, 3), np.inf, np.float32)
    e = est.update(inf)
    assert e.status is GroundStatus.NO_POINTS and "NaN/inf" in e.reason and not e.ok
    assert np.isnan(e.height_m) and e.primary is None and e.horizon is None and e.planes == []
    few = nan.copy()
    few[100, :50] = ground_cloud()[100, :50]
    e = est.update(few)
    assert e.status is GroundStatus.TOO_FEW_POINTS and "50 usable points" in e.reason
    # a wall straight ahead and nothing else: no ground-like plane
    v, u = np.mgrid[0:H, 0:W].astype(np.float32)
    wall = np.stack([(u - CAM.cx) / F * 4.0, (v - CAM.cy) / F * 4.0, np.full((H, W), 4.0, np.float32)], -1)
    e = est.update(wall)
    assert e.status is GroundStatus.NO_GROUND and "no ground-like plane" in e.reason
    # low confidence everywhere: no usable point
    assert est.update(ground_cloud(), np.zeros((H, W), np.float32)).status is GroundStatus.NO_POINTS
    # malformed input
    assert est.update([[1, 2, 3]]).status is GroundStatus.INVALID_INPUT
    assert est.update(np.zeros((H, W, 2))).status is GroundStatus.INVALID_INPUT
    assert est.update(ground_cloud(), np.ones((H, W + 1))).status is GroundStatus.INVALID_INPUT
    # a good frame after all that is processed normally, and NaN mixed into good points is ignored
    good = ground_cloud(pitch=3.0, height=0.9)
    good[::7, ::5] = np.nan
    good[::11, ::3] = np.inf
    e = est.update(good)
    assert e.ok and e.height_m == pytest.approx(0.9, abs=3e-3)
    assert e.to_dict()["status"] == "ok"


def test_config_is_validated_and_described():
    with pytest.raises(InputError, match="max_tilt_deg"):
        GroundConfig(max_tilt_deg=95.0)
    with pytest.raises(InputError, match="method"):
        GroundConfig(method="lsq")
    with pytest.raises(InputError, match="max_range_m"):
        GroundConfig(min_range_m=5.0, max_range_m=4.0)
    with pytest.raises(InputError, match="integer"):
        GroundConfig(max_planes=2.5)
    info = GroundConfig.describe()
    assert info["max_planes"]["default"] == 4 and info["max_planes"]["range"] == (1, 8)
    assert all(v["help"] for v in info.values())
