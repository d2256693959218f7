"""Ground-plane geometry in the left optical frame (x right, y down, z forward): the plane and horizon types,
the pitch/roll convention, the horizon line, the least-squares plane, camera intrinsics from an organised cloud.

A plane is `normal . p + d = 0` with the unit `normal` pointing UP (towards the camera), so the signed height of a
point above it is `normal . p + d` and the camera's height is `d`. Pitch (+ = camera looks down, ROS nose-down) and
roll (+ = the camera's right side down, ROS) are the Z-Y-X Euler angles of the camera body frame (x = optical z,
y = -optical x, z = -optical y) relative to the plane.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from perception.errors import InputError


class GroundStatus(str, Enum):
    """Why there is (or is not) a ground estimate; never an exception."""

    OK = "ok"
    NO_POINTS = "no_points"  # no finite, confident point in range: all-invalid disparity, textureless, NaN/inf
    TOO_FEW_POINTS = "too_few_points"  # some points, fewer than min_points
    NO_GROUND = "no_ground"  # points, but no ground-like plane with enough support (wall, sky, clutter)
    INVALID_INPUT = "invalid_input"  # malformed arrays, mismatched sizes, missing calibration (frame level)


@dataclass(frozen=True)
class Horizon:
    """The horizon of a ground plane in the image: row v = slope * u + intercept (px); `p0`, `p1` its points at
    the left (u = 0) and right (u = width - 1) image borders."""

    slope: float
    intercept: float
    p0: tuple[float, float]
    p1: tuple[float, float]

    def row(self, u) -> np.ndarray:
        return self.slope * np.asarray(u, dtype=np.float64) + self.intercept


@dataclass(frozen=True)
class GroundPlane:
    """normal . p + d = 0, unit `normal` pointing up (towards the camera); `d` = camera height above it (m).

    inliers: inlier count among the fitted points (a fixed-seed subset of at most `GroundConfig.fit_points` usable
    points), within the final refit band; rms: RMS inlier distance (m); fraction: inliers / fitted points;
    extent: (x_min, x_max, z_min, z_max) of the inliers in the optical frame (2nd..98th percentile), m.
    """

    normal: np.ndarray
    d: float
    inliers: int = 0
    rms: float = float("nan")
    fraction: float = 0.0
    extent: tuple[float, float, float, float] = (-np.inf, np.inf, -np.inf, np.inf)

    def height_of(self, points: np.ndarray) -> np.ndarray:
        """Signed height (m) of points (..., 3) above the plane; NaN stays NaN."""
        p = np.asarray(points, dtype=np.float32)
        n = self.normal.astype(np.float32)
        with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 -> NaN, which is what an inf point is
            return p[..., 0] * n[0] + p[..., 1] * n[1] + p[..., 2] * n[2] + np.float32(self.d)

    @property
    def height_m(self) -> float:
        return float(self.d)

    @property
    def pitch_deg(self) -> float:
        return angles_from_up(self.normal)[0]

    @property
    def roll_deg(self) -> float:
        return angles_from_up(self.normal)[1]

    def angle_to(self, other: "GroundPlane") -> float:
        """Angle between the two normals, deg."""
        return float(np.degrees(np.arccos(np.clip(abs(float(self.normal @ other.normal)), -1.0, 1.0))))


# --- geometry ---------------------------------------------------------------------------------------------------
def up_from_angles(pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Up direction in the optical frame of a camera with this pitch (+ = looking down) and roll (+ = right side
    down) relative to the ground (Z-Y-X Euler angles of the camera body frame x = z_opt, y = -x_opt, z = -y_opt)."""
    p, r = np.radians(pitch_deg), np.radians(roll_deg)
    # up in the body frame: (-sin p, cos p sin r, cos p cos r); optical = (-y_body, -z_body, x_body)
    return np.array([-np.cos(p) * np.sin(r), -np.cos(p) * np.cos(r), -np.sin(p)])


def angles_from_up(normal: np.ndarray) -> tuple[float, float]:
    """(pitch_deg, roll_deg) of the camera relative to a plane with this up normal (inverse of `up_from_angles`)."""
    nx, ny, nz = (float(v) for v in np.asarray(normal, dtype=np.float64) / np.linalg.norm(normal))
    pitch = np.degrees(np.arcsin(np.clip(-nz, -1.0, 1.0)))
    roll = np.degrees(np.arctan2(-nx, -ny))
    return float(pitch), float(roll)


def intrinsics(camera) -> tuple[float, float, float, float, int, int]:
    """(fx, fy, cx, cy, width, height) of a CameraInfo (rectified P) or a 6-tuple."""
    if camera is None:
        raise InputError("no camera model", subject="intrinsics", hint="pass the left rectified CameraInfo")
    if hasattr(camera, "P") and hasattr(camera, "width"):
        return camera.fx, camera.fy, camera.cx, camera.cy, int(camera.width), int(camera.height)
    fx, fy, cx, cy, w, h = camera
    return float(fx), float(fy), float(cx), float(cy), int(w), int(h)


def intrinsics_from_points(points: np.ndarray) -> tuple[float, float, float, float, int, int] | None:
    """Recover (fx, fy, cx, cy, width, height) from an HxWx3 organised cloud of `disparity_to_points`
    (x/z = (u - cx)/fx, y/z = (v - cy)/fy exactly); None when fewer than 2 distinct columns/rows are valid."""
    if points.ndim != 3:
        return None
    h, w = points.shape[:2]
    s = max(1, int(np.sqrt(h * w / 20000.0)))  # the relation is exact: a strided subset is as good as all
    sub = points[::s, ::s].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = sub[..., 0] / sub[..., 2]
        b = sub[..., 1] / sub[..., 2]
        ok = np.isfinite(a) & np.isfinite(b) & (sub[..., 2] > 0)
    if ok.sum() < 2:
        return None
    v, u = np.nonzero(ok)
    if np.ptp(u) == 0 or np.ptp(v) == 0:
        return None
    fx, cx = np.polyfit(a[v, u], u * float(s), 1)
    fy, cy = np.polyfit(b[v, u], v * float(s), 1)
    if not (fx > 0 and fy > 0):
        return None
    return float(fx), float(fy), float(cx), float(cy), w, h


def horizon_line(normal: np.ndarray, camera) -> Horizon | None:
    """Horizon of the plane with up `normal`: image points whose rays are parallel to the plane.
    n . ((u - cx)/fx, (v - cy)/fy, 1) = 0  ->  v = cy - fy * (nz + nx * (u - cx) / fx) / ny.
    None when the camera looks (nearly) straight along the normal (ny ~ 0: no horizon row)."""
    fx, fy, cx, cy, w, _h = intrinsics(camera)
    nx, ny, nz = (float(v) for v in normal)
    if abs(ny) < 1e-6:
        return None
    slope = -fy * nx / (fx * ny)
    intercept = cy - fy * (nz - nx * cx / fx) / ny
    return Horizon(slope, intercept, (0.0, intercept), (float(w - 1), slope * (w - 1) + intercept))


def plane_from_points(p: np.ndarray, w: np.ndarray | None = None, up: np.ndarray | None = None
                      ) -> tuple[np.ndarray, float] | None:
    """Weighted least-squares plane through (N, 3) points: the normal is the principal eigenvector of the smallest
    eigenvalue of the weighted covariance; oriented along `up` (default -y). Returns (normal, d) or None."""
    p = np.asarray(p, dtype=np.float64)
    if p.shape[0] < 3:
        return None
    w = np.ones(p.shape[0]) if w is None else np.asarray(w, dtype=np.float64)
    sw = w.sum()
    if not sw > 0:
        return None
    c = (p * w[:, None]).sum(0) / sw
    q = p - c
    cov = (q * w[:, None]).T @ q / sw
    vals, vecs = np.linalg.eigh(cov)
    if not np.all(np.isfinite(vals)) or vals[1] <= 1e-12:  # collinear points: no plane
        return None
    n = vecs[:, 0]
    up = np.array([0.0, -1.0, 0.0]) if up is None else up
    if n @ up < 0:
        n = -n
    return n, float(-n @ c)
