"""Disparity -> depth -> points: exact on a known scene, NaN-safe, and consistent with camera_info."""
from __future__ import annotations

import numpy as np
import pytest

from perception.camera import CameraInfo
from perception.errors import CalibrationError, InputError
from perception.stereo.points import (
    depth_to_disparity, disparity_to_depth, disparity_to_points, stereo_geometry,
)

FX, B = 400.0, 0.12


def cameras(w=64, h=48, right_cx_shift=0.0):
    left = CameraInfo.from_intrinsics(w, h, fx=FX, fy=FX * 1.01, cx=31.5, cy=23.5, name="left")
    right = CameraInfo.from_intrinsics(w, h, fx=FX, fy=FX * 1.01, cx=31.5 + right_cx_shift, cy=23.5,
                                       baseline=B, name="right")
    return left, right


def test_points_of_a_known_plane_are_recovered():
    left, right = cameras()
    geo = stereo_geometry(left, right)
    assert geo.baseline == pytest.approx(B) and geo.doffs == 0.0
    # a tilted plane: Z = 3 + 0.02 * (v - cy) (floor-like); project each pixel's ray onto it
    v, u = np.mgrid[0:48, 0:64].astype(np.float64)
    z = 3.0 + 0.02 * (v - left.cy)
    disparity = (FX * B / z).astype(np.float32)
    pts = disparity_to_points(disparity, left, geo.baseline)
    assert pts.shape == (48, 64, 3) and pts.dtype == np.float32
    np.testing.assert_allclose(pts[..., 2], z, rtol=1e-5)
    np.testing.assert_allclose(pts[..., 0], (u - left.cx) * z / left.fx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pts[..., 1], (v - left.cy) * z / left.fy, rtol=1e-5, atol=1e-6)


def test_doffs_from_principal_points_is_applied():
    left, right = cameras(right_cx_shift=-5.0)  # Middlebury-style: principal points differ
    geo = stereo_geometry(left, right)
    assert geo.doffs == pytest.approx(-5.0)
    d = np.full((48, 64), 21.0, np.float32)
    z = disparity_to_depth(d, geo.fx, geo.baseline, geo.doffs)
    assert z[0, 0] == pytest.approx(FX * B / 16.0)
    np.testing.assert_allclose(depth_to_disparity(z, geo.fx, geo.baseline, geo.doffs), d, rtol=1e-6)


def test_invalid_disparities_give_nan_not_exceptions():
    left, _ = cameras()
    d = np.full((48, 64), 10.0, np.float32)
    d[0, 0], d[0, 1], d[0, 2], d[0, 3] = np.nan, np.inf, 0.0, -3.0
    pts = disparity_to_points(d, left, B)
    assert np.isnan(pts[0, :4]).all()
    assert np.isfinite(pts[1:]).all()
    all_nan = disparity_to_points(np.full((48, 64), np.nan, np.float32), left, B)
    assert np.isnan(all_nan).all()
    assert np.isnan(depth_to_disparity(np.array([0.0, -1.0, np.nan]), FX, B)).all()


def test_mismatched_camera_and_bad_geometry_are_refused():
    left, right = cameras()
    with pytest.raises(InputError, match=r"disparity is 32x24.*scaled\(32, 24\)"):
        disparity_to_points(np.zeros((24, 32), np.float32), left, B)
    pts = disparity_to_points(np.full((24, 32), 5.0, np.float32), left.scaled(32, 24), B)
    assert pts[0, 0, 2] == pytest.approx(FX / 2 * B / 5.0)
    with pytest.raises(InputError, match="baseline"):
        disparity_to_depth(np.zeros((2, 2)), FX, 0.0)
    with pytest.raises(InputError, match="HxW"):
        disparity_to_depth(np.zeros((2, 2, 2)), FX, B)
    with pytest.raises(CalibrationError, match="not negative"):
        stereo_geometry(left, left)  # the left camera carries no baseline
    with pytest.raises(CalibrationError, match="fx or cy"):
        stereo_geometry(left, CameraInfo.from_intrinsics(64, 48, fx=390.0, fy=400.0, cx=31.5, cy=23.5, baseline=B))
