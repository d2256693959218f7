"""Disparity -> depth -> 3-D points in the left camera's optical frame (REP-103: x right, y down, z forward).

For a rectified pair, a left pixel (u, v) with disparity d (px) lies at depth Z = fx * B / (d + doffs),
X = (u - cx) * Z / fx, Y = (v - cy) * Z / fy. `doffs` = cx_right - cx_left is the difference of the
principal points of the two rectified images: 0 for ROS camera_info written by stereoRectify with zero
disparity at infinity (`perception calibrate stereo` does this), non-zero for the Middlebury datasets.
Invalid disparities (NaN, inf, or d + doffs <= 0: at or beyond infinity) give NaN, never an exception.

>>> from perception.camera.model import CameraInfo
>>> cam = CameraInfo.from_intrinsics(4, 2, fx=100.0, fy=100.0, cx=2.0, cy=1.0)
>>> pts = disparity_to_points(np.full((2, 4), 10.0, np.float32), cam, baseline=0.5)
>>> [round(float(v), 3) for v in pts[1, 2]]
[0.0, 0.0, 5.0]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.camera.model import CameraInfo, stereo_baseline
from perception.errors import CalibrationError, InputError


@dataclass(frozen=True)
class StereoGeometry:
    """What triangulation needs from a rectified pair: focal lengths, principal point, baseline (m), doffs (px)."""

    fx: float
    fy: float
    cx: float
    cy: float
    baseline: float
    doffs: float = 0.0


def stereo_geometry(left: CameraInfo, right: CameraInfo) -> StereoGeometry:
    """Geometry of a rectified pair from the two camera_info projection matrices (P_right[0,3] = -fx*B)."""
    if left.size != right.size:
        raise CalibrationError(
            f"left is {left.width}x{left.height} but right is {right.width}x{right.height}",
            subject="stereo camera_info", hint="both cameras of a rectified pair have the same image size",
        )
    if abs(left.fx - right.fx) > 1e-6 * max(1.0, left.fx) or abs(left.cy - right.cy) > 1e-3:
        raise CalibrationError(
            "left and right projection matrices differ in fx or cy, so they do not describe one rectified pair",
            subject=f"camera_info '{left.name}' / '{right.name}'", hint="recalibrate with `perception calibrate stereo`",
        )
    return StereoGeometry(left.fx, left.fy, left.cx, left.cy, stereo_baseline(right), right.cx - left.cx)


def _check_disparity(disparity) -> np.ndarray:
    d = np.asarray(disparity)
    if d.ndim != 2:
        raise InputError(f"has shape {d.shape}", subject="disparity", hint="pass an HxW disparity map")
    if not np.issubdtype(d.dtype, np.floating) and not np.issubdtype(d.dtype, np.integer):
        raise InputError(f"has dtype {d.dtype}", subject="disparity", hint="pass float disparities in pixels")
    return d.astype(np.float32, copy=False)


def disparity_to_depth(disparity, fx: float, baseline: float, doffs: float = 0.0) -> np.ndarray:
    """Depth Z (same unit as `baseline`) per pixel, float32; NaN where disparity is invalid or d + doffs <= 0."""
    d = _check_disparity(disparity)
    if not (np.isfinite(fx) and fx > 0 and np.isfinite(baseline) and baseline > 0 and np.isfinite(doffs)):
        raise InputError(f"fx={fx}, baseline={baseline}, doffs={doffs}", subject="stereo geometry",
                         hint="fx and baseline must be positive and finite")
    denom = d + np.float32(doffs)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.float32(fx * baseline) / denom
    z[~(denom > 0) | ~np.isfinite(denom) | ~np.isfinite(z)] = np.nan
    return z


def disparity_to_points(disparity, camera: CameraInfo, baseline: float, *, doffs: float = 0.0) -> np.ndarray:
    """HxWx3 float32 points (X, Y, Z) in the left optical frame, NaN where the disparity is invalid.

    `camera` is the LEFT rectified camera (its P gives fx, fy, cx, cy) at the disparity map's resolution;
    `baseline` in metres (see `stereo_geometry` / `perception.camera.stereo_baseline`).
    """
    d = _check_disparity(disparity)
    h, w = d.shape
    if (w, h) != camera.size:
        raise InputError(
            f"disparity is {w}x{h} but camera_info '{camera.name}' is for {camera.width}x{camera.height}",
            subject="disparity_to_points", hint=f"pass camera.scaled({w}, {h}) for a resized disparity map",
        )
    z = disparity_to_depth(d, camera.fx, baseline, doffs)
    u = np.arange(w, dtype=np.float32) - np.float32(camera.cx)
    v = np.arange(h, dtype=np.float32) - np.float32(camera.cy)
    pts = np.empty((h, w, 3), np.float32)
    pts[..., 2] = z
    np.multiply(z, u[None, :] / np.float32(camera.fx), out=pts[..., 0])
    np.multiply(z, v[:, None] / np.float32(camera.fy), out=pts[..., 1])
    return pts


def depth_to_disparity(depth, fx: float, baseline: float, doffs: float = 0.0) -> np.ndarray:
    """Inverse of `disparity_to_depth`: d = fx * B / Z - doffs; NaN where depth is not positive and finite."""
    z = np.asarray(depth, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.float32(fx * baseline) / z - np.float32(doffs)
    d[~(z > 0) | ~np.isfinite(z)] = np.nan
    return d
