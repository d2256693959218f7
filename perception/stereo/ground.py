"""Ground plane from a stereo point cloud, as the DARPA LAGR near-range module did it (REFERENCE.md section 1).

Points are in the left optical frame (x right, y down, z forward; `perception.stereo.points`). A plane is
`normal . p + d = 0` with the unit `normal` pointing UP (away from the ground, towards the camera), so the signed
height of a point above the plane is `normal . p + d` and the camera's height above the ground is `d`.

Method (`estimate_planes`, each step a pure function tested on its own):
1. Candidates: finite points within `min_range_m .. max_range_m` (forward distance z) whose stereo confidence is at
   least `min_confidence`; at most `sample_points` of them (a fixed-seed random subset) for the robust search.
2. Robust first estimate, `method`:
   - "ransac" (default): MSAC. `ransac_iterations` random triples at once, planes whose normal is more than
     `max_tilt_deg` from the expected up direction (`prior_pitch_deg`, `prior_roll_deg`) or that put the camera
     outside `min_height_m .. max_height_m` are dropped, the rest scored by the confidence-weighted truncated
     quadratic of the plane distances;
   - "hough": LAGR's choice, a Hough transform in plane-parameter space (pitch, roll, height), coarse (2 deg,
     5 cm) then fine (0.25 deg, 2 cm) around the best cell, confidence-weighted votes.
   Measured on KITTI, EuRoC and the synthetic world (docs/stereo.md): both find the same plane, RANSAC in about
   a third of the time, so RANSAC is the default.
3. Refit: confidence-weighted least squares (the principal eigenvector: the normal is the eigenvector of the
   smallest eigenvalue of the inliers' weighted covariance), `refit_iterations` times, the inliers taken anew each
   time from ALL candidates, with a threshold growing with distance (`inlier_threshold_m` + `inlier_growth` * z)
   that narrows to 3 robust sigmas of the residuals (not below a quarter of it): with a fixed band the first
   metre of a neighbouring hill tilted the fit by 0.6 deg in a test, with the narrowed one 0.05 deg.
4. Up to `max_planes` planes in turn: remove the inliers, search the rest. A further plane is kept when it has
   enough inliers, is ground-like (tilt limit), within `max_plane_angle_deg` of the first, not just the first
   plane's noise (its inliers lie more than 1.5 thresholds from the first plane on average) and joins the first
   somewhere (its 10 % lowest inliers within `max_step_m` of it: a hill starts at the ground, a car roof does not).
5. Temporal filter (`GroundEstimator`, `smooth_plane`): a scalar Kalman filter on each of the primary plane's
   pitch, roll and height (random-walk motion `motion_deg` / `motion_m` per frame; measurement noise from the fit:
   rms, inlier count and spread), reset when the new plane differs by more than `jump_deg` or `jump_m`, or after
   `max_missed` frames without ground. A fixed blend (new = 0.5 old + 0.5 measured) lagged the synthetic drive's
   real pitch/roll motion: normal error 0.34 deg instead of 0.05 deg; the Kalman gain is ~1 for such precise fits
   and falls only for poor ones.

From the primary plane: camera height (= d), pitch (positive = camera looks down, ROS nose-down) and roll
(positive = the camera's right side down, ROS) as the Z-Y-X Euler angles of the camera body frame (x = optical z,
y = -optical x, z = -optical y) relative to the plane, and the horizon line (where rays parallel to the plane meet
the image: v = slope * u + intercept).

Nothing here raises for bad data: `GroundEstimate.status` (`GroundStatus`) and `reason` say why no ground was
found: no usable point (all-invalid disparity, textureless image, NaN/inf points), too few points, no plane that
looks like ground, or malformed input.

Modules: `perception.stereo.plane` (plane and horizon types, angle convention, geometry), `perception.stereo.
ground_fit` (the robust search and refit), this one (configuration, temporal filter, `GroundEstimator`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from perception.errors import InputError
from perception.stereo.ground_fit import (
    fit_planes, hough_plane, inlier_threshold, prior_up, ransac_plane, refine_plane, usable_points,
)
from perception.params import describe_config, param, validate_config
from perception.stereo.plane import (
    GroundPlane, GroundStatus, Horizon, angles_from_up, horizon_line, intrinsics, intrinsics_from_points,
    plane_from_points, up_from_angles,
)

__all__ = [
    "GroundConfig", "GroundEstimate", "GroundEstimator", "GroundPlane", "GroundStatus", "Horizon", "angles_from_up",
    "describe_config", "estimate_planes", "horizon_line", "hough_plane", "inlier_threshold", "intrinsics",
    "intrinsics_from_points", "param", "plane_from_points", "ransac_plane", "refine_plane", "smooth_plane",
    "FilterState", "plane_uncertainty",
    "up_from_angles", "usable_points", "validate_config",
]


# --- configuration ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroundConfig:
    """Parameters of the ground-plane estimate; every one has a description and a valid range, checked on creation."""

    method: str = param("ransac", "robust first estimate: ransac (MSAC) or hough (LAGR's plane-space Hough)",
                        choices=("ransac", "hough"))
    min_range_m: float = param(0.5, "nearest forward distance (z) of a point used for the ground, m", 0.0, 100.0)
    max_range_m: float = param(12.0, "farthest forward distance (z) of a point used for the ground, m", 1.0, 200.0)
    min_confidence: float = param(0.2, "stereo confidence (0..1) a point needs to be used", 0.0, 1.0)
    sample_points: int = param(2000, "points (random fixed-seed subset) searched by the robust estimate", 100, 100000)
    fit_points: int = param(20000, "usable points (random fixed-seed subset) the planes are refitted and counted on",
                            500, 10000000)
    min_points: int = param(200, "fewest usable points (and inliers of the primary plane) for a ground", 10, 1000000)
    inlier_threshold_m: float = param(0.08, "largest distance to the plane of an inlier at z = 0, m", 0.005, 2.0)
    inlier_growth: float = param(0.01, "inlier threshold growth per metre of forward distance (stereo error)", 0.0, 1.0)
    ransac_iterations: int = param(256, "random point triples tried by ransac", 8, 20000)
    refit_iterations: int = param(3, "least-squares / eigenvector refits on the inliers", 0, 20)
    prior_pitch_deg: float = param(0.0, "expected camera pitch relative to the ground (+ = looking down), deg",
                                   -90.0, 90.0)
    prior_roll_deg: float = param(0.0, "expected camera roll relative to the ground (+ = right side down), deg",
                                  -90.0, 90.0)
    max_tilt_deg: float = param(30.0, "largest angle between a ground normal and the expected up direction, deg",
                                1.0, 89.0)
    min_height_m: float = param(0.05, "lowest camera height above a ground plane accepted, m", 0.0, 100.0)
    max_height_m: float = param(5.0, "highest camera height above a ground plane accepted, m", 0.01, 1000.0)
    max_planes: int = param(4, "planes fitted in turn on the points the previous ones leave (uneven ground)", 1, 8)
    min_plane_fraction: float = param(0.05, "a further plane needs this share of the usable points as inliers",
                                      0.0, 1.0)
    max_plane_angle_deg: float = param(20.0, "largest angle between a further plane and the primary one, deg",
                                       0.0, 89.0)
    max_step_m: float = param(0.25, "a further plane must come within this of the primary plane (its 10 % "
                              "lowest inliers): hills start at the ground, car roofs do not, m", 0.0, 10.0)
    hough_angle_step_deg: float = param(2.0, "coarse Hough step of pitch and roll, deg (fine step: / 8)", 0.1, 10.0)
    hough_height_step_m: float = param(0.05, "coarse Hough step of the plane height, m (fine step: 0.4x)", 0.005, 1.0)
    temporal_filter: bool = param(True, "filter pitch, roll and height over frames (Kalman, reset on a jump)")
    motion_deg: float = param(0.5, "expected change of pitch and roll between frames, 1 sigma, deg (the filter's "
                              "process noise: larger follows faster)", 0.001, 90.0)
    motion_m: float = param(0.02, "expected change of the camera height between frames, 1 sigma, m", 0.0001, 10.0)
    independent_fraction: float = param(0.02, "share of a plane's inliers taken as independent measurements for its "
                                        "uncertainty (stereo errors are correlated between neighbours)", 1e-4, 1.0)
    jump_deg: float = param(8.0, "a pitch or roll change larger than this resets the filter, deg", 0.1, 90.0)
    jump_m: float = param(0.3, "a camera height that changes more than this resets the filter, m", 0.001, 100.0)
    max_missed: int = param(5, "frames without ground after which the filter forgets its plane", 0, 10000)
    seed: int = param(0, "seed of the random subset and of ransac (results are reproducible)", 0, 2 ** 31 - 1)

    def __post_init__(self) -> None:
        validate_config(self)
        if self.max_range_m <= self.min_range_m:
            raise InputError(f"max_range_m ({self.max_range_m}) must exceed min_range_m ({self.min_range_m})",
                             subject="GroundConfig.max_range_m")
        if self.max_height_m <= self.min_height_m:
            raise InputError(f"max_height_m ({self.max_height_m}) must exceed min_height_m ({self.min_height_m})",
                             subject="GroundConfig.max_height_m")

    @classmethod
    def describe(cls) -> dict[str, dict]:
        return describe_config(cls)

    @property
    def prior_up(self) -> np.ndarray:
        """Expected up direction in the optical frame for the prior pitch and roll."""
        return prior_up(self)


# --- results ----------------------------------------------------------------------------------------------------
@dataclass
class GroundEstimate:
    """One frame's ground. `planes`: as fitted this frame (planes[0] the primary); `primary`: the primary after
    temporal smoothing (what heights and labels use); height/pitch/roll/horizon from `primary`.
    status/reason say why there is none (primary None, height NaN)."""

    planes: list[GroundPlane]
    primary: GroundPlane | None
    height_m: float
    pitch_deg: float
    roll_deg: float
    horizon: Horizon | None
    status: GroundStatus
    reason: str = ""
    n_points: int = 0
    ms: float = 0.0
    smoothed: bool = False  # primary differs from planes[0] by the temporal filter
    reset: bool = False  # the filter was (re)started this frame

    @property
    def ok(self) -> bool:
        return self.status is GroundStatus.OK and self.primary is not None

    @classmethod
    def failed(cls, status: GroundStatus, reason: str, n_points: int = 0, ms: float = 0.0) -> "GroundEstimate":
        nan = float("nan")
        return cls([], None, nan, nan, nan, None, status, reason, n_points, ms)

    def to_dict(self) -> dict:
        """JSON-ready summary (no arrays)."""
        out = {"status": self.status.value, "reason": self.reason, "n_points": self.n_points, "ms": self.ms,
               "height_m": self.height_m, "pitch_deg": self.pitch_deg, "roll_deg": self.roll_deg,
               "planes": [{"normal": [float(v) for v in p.normal], "d": float(p.d), "inliers": p.inliers,
                           "rms": p.rms} for p in self.planes]}
        if self.horizon is not None:
            out["horizon"] = {"slope": self.horizon.slope, "intercept": self.horizon.intercept}
        return out


def estimate_planes(points: np.ndarray, confidence: np.ndarray | None = None,
                    config: GroundConfig | None = None) -> tuple[list[GroundPlane], GroundStatus, str, int]:
    """Fit up to `max_planes` ground planes in turn (module doc). Returns (planes, status, reason, n_usable);
    never raises for bad values (NaN/inf points are not usable). `points`: (..., 3); `confidence`: same leading
    shape or None."""
    return fit_planes(points, confidence, config or GroundConfig())


@dataclass
class FilterState:
    """The temporal filter's estimate `x` = (pitch_deg, roll_deg, height_m) and its variances `p`."""

    x: np.ndarray
    p: np.ndarray


def plane_uncertainty(plane: GroundPlane, config: GroundConfig) -> np.ndarray:
    """1-sigma uncertainty (pitch_deg, roll_deg, height_m) of a fitted plane: rms / sqrt(N) for the height and
    rms / (sqrt(N) x spread of the inliers along z (pitch) or x (roll)) for the angles, N = inliers x
    `independent_fraction` (neighbouring stereo points are not independent)."""
    n_eff = max(1.0, plane.inliers * config.independent_fraction)
    rms = plane.rms if np.isfinite(plane.rms) and plane.rms > 0 else config.inlier_threshold_m
    x0, x1, z0, z1 = plane.extent
    sx = (x1 - x0) / 3.5 if np.isfinite(x1 - x0) else 1.0  # 2..98 % range of a uniform spread ~ 3.4 sigma
    sz = (z1 - z0) / 3.5 if np.isfinite(z1 - z0) else 1.0
    s = rms / np.sqrt(n_eff)
    return np.array([np.degrees(s / max(sz, 0.05)), np.degrees(s / max(sx, 0.05)), s])


def smooth_plane(state: FilterState | None, new: GroundPlane, config: GroundConfig, frames: int = 1
                 ) -> tuple[GroundPlane, FilterState, bool]:
    """One step of the temporal filter on (pitch, roll, height): (filtered plane, new state, reset).

    An independent scalar Kalman filter per parameter with a random-walk motion model: process noise
    `motion_deg` / `motion_m` per frame, measurement noise `plane_uncertainty`. A precise fit passes almost
    unchanged (no lag when the camera really moves); a poor one (few points, large rms) is averaged with the past.
    `frames`: frames since the state's last update (the motion noise grows with them).
    Reset (take `new`) without a state, with the filter off, or when pitch or roll moved more than `jump_deg` or
    the height more than `jump_m` from the filtered value."""
    z = np.array([*angles_from_up(new.normal), new.d])
    r = plane_uncertainty(new, config) ** 2
    if state is None or not config.temporal_filter:
        return new, FilterState(z, r), True
    dz = np.abs(z - state.x)
    if dz[0] > config.jump_deg or dz[1] > config.jump_deg or dz[2] > config.jump_m:
        return new, FilterState(z, r), True
    p = state.p + max(1, frames) * np.array([config.motion_deg ** 2, config.motion_deg ** 2, config.motion_m ** 2])
    k = p / (p + r)
    x = state.x + k * (z - state.x)
    out = replace(new, normal=up_from_angles(x[0], x[1]), d=float(x[2]))
    return out, FilterState(x, (1.0 - k) * p), False


@dataclass
class GroundFit:
    """One frame's fitted planes before temporal smoothing (`GroundEstimator.fit`): planes[0] the primary, the
    status and reason, usable points, ms, and the points they came from (for the horizon's intrinsics)."""

    planes: list[GroundPlane]
    status: GroundStatus
    reason: str
    n: int
    ms: float
    points: np.ndarray | None


class GroundEstimator:
    """Stateful per-stream ground estimate: `update(points, confidence)` -> `GroundEstimate` (smoothed over frames).

    `camera` (the left rectified CameraInfo, or (fx, fy, cx, cy, width, height)) is needed only for the horizon;
    without it, the intrinsics are recovered from an organised HxWx3 cloud. Never raises for bad data.
    """

    def __init__(self, config: GroundConfig | None = None, camera=None) -> None:
        self.config = config or GroundConfig()
        self.camera = camera
        self._state: FilterState | None = None
        self._missed = 0

    def reset(self) -> None:
        self._state, self._missed = None, 0

    def _fail(self, status: GroundStatus, reason: str, n: int, t0: float) -> GroundEstimate:
        self._missed += 1
        if self._missed > self.config.max_missed:
            self._state = None
        return GroundEstimate.failed(status, reason, n, (time.perf_counter() - t0) * 1e3)

    def skip(self, status: GroundStatus, reason: str) -> GroundEstimate:
        """Record a frame that failed upstream (no points reached us): counts as a frame without ground."""
        return self._fail(status, reason, 0, time.perf_counter())

    def fit(self, points, confidence=None) -> GroundFit:
        """The planes of one frame, before smoothing: the stateless part of `update` (a pipeline may run it
        ahead, in another thread, while earlier frames are being smoothed)."""
        t0 = time.perf_counter()
        pts = np.asarray(points) if isinstance(points, np.ndarray) else None
        if pts is None or pts.ndim < 2 or pts.shape[-1] != 3 or not np.issubdtype(pts.dtype, np.number):
            shape = getattr(points, "shape", type(points).__name__)
            return GroundFit([], GroundStatus.INVALID_INPUT, f"points must be an (..., 3) numeric array, got "
                             f"{shape}", 0, (time.perf_counter() - t0) * 1e3, None)
        conf = None
        if confidence is not None:
            conf = np.asarray(confidence)
            if conf.shape != pts.shape[:-1]:
                return GroundFit([], GroundStatus.INVALID_INPUT, f"confidence has shape {conf.shape} but the "
                                 f"points {pts.shape[:-1]}", 0, (time.perf_counter() - t0) * 1e3, None)
        planes, status, reason, n = estimate_planes(pts, conf, self.config)
        return GroundFit(planes, status, reason, n, (time.perf_counter() - t0) * 1e3, pts)

    def update(self, points=None, confidence=None, camera=None, fit: GroundFit | None = None) -> GroundEstimate:
        """Ground of one frame: `points` (HxWx3 organised or Nx3, optical frame), `confidence` (same leading shape,
        0..1, or None), `camera` for the horizon (default: the constructor's, else recovered from an HxWx3 cloud).
        `fit`: `self.fit(points, confidence)` when already computed (then `points` is not needed)."""
        fit = fit if fit is not None else self.fit(points, confidence)
        t0 = time.perf_counter() - fit.ms / 1e3  # the estimate's time includes the fit's
        planes, pts = fit.planes, fit.points
        if fit.status is not GroundStatus.OK:
            return self._fail(fit.status, fit.reason, fit.n, t0)
        n = fit.n
        if self._missed > self.config.max_missed:
            self._state = None
        primary, self._state, reset = smooth_plane(self._state, planes[0], self.config, self._missed + 1)
        self._missed = 0
        cam = camera if camera is not None else self.camera
        horizon = None
        try:
            if cam is None and pts.ndim == 3:
                cam = intrinsics_from_points(pts)
            horizon = horizon_line(primary.normal, cam) if cam is not None else None
        except (InputError, ValueError, TypeError):
            horizon = None
        pitch, roll = angles_from_up(primary.normal)
        return GroundEstimate(planes, primary, float(primary.d), pitch, roll, horizon, GroundStatus.OK, "", n,
                              (time.perf_counter() - t0) * 1e3, smoothed=not reset, reset=reset)
