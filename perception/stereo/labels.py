"""The five LAGR near-range labels per image window, from stereo points and the ground plane (REFERENCE.md s. 1).

Codes (`NearLabels.image` is the `terrain/labels` mono8 image; `NearLabels.windows["class"]` the same per window):

| code | name | meaning |
|---:|---|---|
| 0 | unknown | not enough stereo in the window (or beyond `max_range_m`, sky, no ground found) |
| 1 | super-ground | only ground, dense and confident stereo |
| 2 | ground | ground (a few obstacle points at most, or made traversable by the moments filter) |
| 3 | footline | the foot of an obstacle (its points projected onto the ground) lies in the window's central band |
| 4 | obstacle | obstacle points present, not filling the window |
| 5 | super-obstacle | obstacle fills the window, dense and confident stereo |

`probabilities[k - 1]` is the label distribution's value for code k (the online classifier's KL target); unknown
windows have all zeros (no target). `NearLabels.pixel_class` is per point: 0 unusable, 2 ground, 4 obstacle.

Per point: signed height h above the ground (`point_heights`: the primary plane, or a further plane of the estimate
where the point lies within that plane's extent and is closer to it); obstacle when h > `obstacle_height_m` or
h < -`hole_depth_m` (ditches, drops), ground otherwise. Usable points: finite, stereo confidence >=
`min_confidence`, range (distance from the camera) <= `max_range_m`, height <= `max_point_height_m` (higher
points: overhanging canopy, sky mismatches, no obstacle to a ground robot).

Per window (`window_rows` x `window_cols` px, a grid from the top-left corner; windows cut by the image border
count only their pixels), in this order:
1. footline: the feet of obstacle points (those left after the moments filter, step 3; each obstacle point moved
   down to its plane along the normal, projected into the image) hit at least `foot_min_fraction` of the window's
   columns inside its central band (`foot_band` of its rows). A foot hidden behind a nearer surface (the observed
   range at the foot pixel is shorter than the foot's by more than `foot_occlusion_m` + 5 %) does not count: an
   obstacle's far side and top project behind its front face. Obstacle points that do not stand on their foot
   (the image between the point and its foot shows something farther than the point: sky mismatches, canopy
   seen through) are dropped altogether (`project_feet`);
2. unknown: fewer than `min_points` usable points or a share of usable pixels below `min_coverage`;
3. moments filter (windows with obstacle points only), on the heights of the window's points:
   - traversable slope: |mean h| < `slope_mean_m` (0.5 m) with very low variance, which we read as: the points lie
     on one smooth surface (RMS about the window's own least-squares plane <= `slope_rms_m`) tilted by at most
     `slope_max_deg` from the ground plane. A plain variance of h cannot tell a slope from a wall: a window of
     ground seen at a grazing angle spans more height on a 15 deg slope than the same window on a vertical face;
   - traversable, e.g. tall grass: |mean h| < `grass_mean_m` (very low) with a larger but bounded spread
     (std h <= `grass_std_m`): scattered points above the threshold over ground that is mostly low;
   such a window becomes ground (its points too, in `pixel_class`);
4. super-obstacle: obstacle share >= `super_obstacle_fraction`, coverage >= `super_coverage`, mean confidence >=
   `super_confidence`; obstacle: obstacle share >= `obstacle_fraction`;
5. super-ground: no obstacle point, coverage >= `super_coverage`, mean confidence >= `super_confidence`, not
   made ground by the moments filter; ground: the rest.

Window confidence = quality x purity: quality = mean stereo confidence x min(1, coverage / super_coverage);
purity 1 for super classes, 1 - 0.5 x obstacle share / obstacle_fraction for ground (0.5 after the moments
filter), (share - obstacle_fraction) / (super_obstacle_fraction - obstacle_fraction) mapped to 0.5..1 for
obstacle; footline: foot score x max(quality, 0.5) (x 0.5 without enough stereo of its own).
Label distribution = w onehot(class) + (1 - w) soft with w = 0.5 + 0.5 conf (so its mode is the class),
soft ~ (g q, g (1 - q), f, o (1 - b), o b): g, o = ground / obstacle shares, q = quality, f = foot score (share of
the window's columns with a foot / foot_min_fraction, at most 1), b = share of the window's pixels that are
obstacle points.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from perception.stereo.ground import GroundEstimate
from perception.stereo.plane import GroundStatus, intrinsics, intrinsics_from_points
from perception.stereo.windows import (  # noqa: F401  (re-exported: this module is the labels API)
    FOOTLINE, GROUND, LABEL_COLORS, LABEL_NAMES, MOMENTS_GRASS, MOMENTS_NONE, MOMENTS_SLOPE, OBSTACLE,
    SUPER_GROUND, SUPER_OBSTACLE, UNKNOWN, WINDOW_DTYPE, LabelConfig, NearLabels, classify_windows, empty_labels,
)

__all__ = [
    "UNKNOWN", "SUPER_GROUND", "GROUND", "FOOTLINE", "OBSTACLE", "SUPER_OBSTACLE", "LABEL_NAMES", "LABEL_COLORS",
    "MOMENTS_NONE", "MOMENTS_SLOPE", "MOMENTS_GRASS", "WINDOW_DTYPE", "LabelConfig", "NearLabels",
    "label_near_range", "classify_windows", "point_heights", "Feet", "project_feet", "empty_labels",
    "colorize_labels", "overlay",
]


def point_heights(points: np.ndarray, ground: GroundEstimate, config: LabelConfig | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(height HxW float32, plane index HxW int8) of each point above its ground plane: the primary plane, or a
    further plane where the point lies within its inlier extent (+ margin) and is closer to it."""
    config = config or LabelConfig()
    h = ground.primary.height_of(points)
    idx = np.zeros(h.shape, np.int8)
    m = config.plane_extent_margin_m
    for k, plane in enumerate(ground.planes[1:], start=1):
        x0, x1, z0, z1 = plane.extent
        hk = plane.height_of(points)
        with np.errstate(invalid="ignore"):
            inside = (points[..., 0] >= x0 - m) & (points[..., 0] <= x1 + m) & (points[..., 2] >= z0 - m) & \
                (points[..., 2] <= z1 + m) & (np.abs(hk) < np.abs(h))
        h = np.where(inside, hk, h)
        idx[inside] = k
    return h.astype(np.float32), idx


@dataclass
class Feet:
    """Feet of obstacle points: `index` flat pixel index of each obstacle point, `u`, `v` its foot pixel (the
    point moved down to its plane along the normal, projected; may be outside the image), `visible` (foot inside
    the image and not hidden behind a nearer observed surface) and `supported` (the image between the point and
    its foot shows nothing beyond the point: a real obstacle stands on its foot, a sky mismatch does not)."""

    index: np.ndarray
    u: np.ndarray
    v: np.ndarray
    visible: np.ndarray
    supported: np.ndarray

    def image(self, shape: tuple[int, int], keep: np.ndarray | None = None) -> np.ndarray:
        """HxW bool of the visible feet of the points whose pixel is set in `keep` (HxW bool; default all)."""
        out = np.zeros(shape, bool)
        sel = self.visible & self.supported
        if keep is not None:
            sel = sel & keep.reshape(-1)[self.index]
        out[self.v[sel], self.u[sel]] = True
        return out


def project_feet(points: np.ndarray, height: np.ndarray, obstacle: np.ndarray, normals, camera,
                 config: LabelConfig | None = None, range_m: np.ndarray | None = None) -> Feet:
    """Feet of the `obstacle` points (HxW bool) of an organised cloud with per-point `height` above the ground
    whose up normal is `normals` ((3,) or HxWx3). Occlusion: a foot is hidden when the observed range at its
    pixel is shorter than the foot's by more than `foot_occlusion_m` + 5 %. Support: points above the ground
    whose image segment down to the foot (samples at 1/4, 1/2, 3/4) shows a surface farther than the point by more
    than `foot_occlusion_m` + 10 % are floating (sky mismatches, overhangs seen through)."""
    config = config or LabelConfig()
    hh, ww = height.shape
    fx, fy, cx, cy, _w, _h = intrinsics(camera)
    if range_m is None:
        range_m = np.sqrt((np.nan_to_num(points.astype(np.float32)) ** 2).sum(-1))
    idx = np.flatnonzero(obstacle)
    e = np.zeros(0, np.int64)
    if idx.size == 0:
        return Feet(idx, e, e, np.zeros(0, bool), np.zeros(0, bool))
    p = points.reshape(-1, 3)[idx].astype(np.float32)
    hgt = height.reshape(-1)[idx].astype(np.float32)
    n = normals.reshape(-1, 3)[idx] if np.ndim(normals) == 3 else np.asarray(normals, np.float32)[None]
    f = p - hgt[:, None] * n.astype(np.float32)
    front = f[:, 2] > 0
    zf = np.where(front, f[:, 2], np.float32(1.0))
    uf = np.where(front, np.float32(fx) * f[:, 0] / zf + np.float32(cx), np.float32(-1.0))
    vf = np.where(front, np.float32(fy) * f[:, 1] / zf + np.float32(cy), np.float32(-1.0))
    ui, vi = np.rint(uf).astype(np.int64), np.rint(vf).astype(np.int64)
    inside = front & (ui >= 0) & (ui < ww) & (vi >= 0) & (vi < hh)
    ui[~inside], vi[~inside] = 0, 0
    rflat = range_m.reshape(-1)
    foot_r = np.sqrt(np.einsum("ij,ij->i", f, f))
    seen = np.where(inside, rflat[vi * ww + ui], np.float32(np.nan))
    with np.errstate(invalid="ignore"):
        hidden = seen < foot_r - (config.foot_occlusion_m + 0.05 * foot_r)  # NaN (nothing seen): not hidden
    r_p = rflat[idx]
    limit = r_p + np.float32(config.foot_occlusion_m) + np.float32(0.1) * r_p
    v0, u0 = np.divmod(idx, ww)
    du = np.where(front, uf - u0, np.float32(0.0))
    dv = np.where(front, vf - v0, np.float32(hh - 1) - v0)
    beyond = np.zeros(idx.size, bool)
    up = hgt > 0
    for t in (0.25, 0.5, 0.75):
        us = np.rint(u0 + np.float32(t) * du).astype(np.int64)
        vs = np.rint(v0 + np.float32(t) * dv).astype(np.int64)
        ok = up & (us >= 0) & (us < ww) & (vs >= 0) & (vs < hh)
        rs = rflat[np.where(ok, vs * ww + us, 0)]
        with np.errstate(invalid="ignore"):
            beyond |= ok & (rs > limit)
    return Feet(idx, ui, vi, inside & ~hidden, ~beyond)


def label_near_range(points, ground: GroundEstimate, config: LabelConfig | None = None, confidence=None,
                     camera=None) -> NearLabels:
    """Window labels of an organised HxWx3 cloud (left optical frame) given its ground estimate. `confidence`
    (HxW, stereo confidence; default 1), `camera` (left rectified CameraInfo or (fx, fy, cx, cy, w, h); default:
    recovered from the cloud) places the obstacle feet. Never raises for bad data: without ground or with
    malformed input every window is unknown and `status`/`reason` say why."""
    t0 = time.perf_counter()
    config = config or LabelConfig()
    if not isinstance(points, np.ndarray) or points.ndim != 3 or points.shape[2] != 3:
        shape = getattr(points, "shape", ())
        return empty_labels(shape[:2] if len(shape) == 3 else (0, 0), config, GroundStatus.INVALID_INPUT,
                            f"points must be an HxWx3 array, got {shape or type(points).__name__}")
    hh, ww = points.shape[:2]
    if not ground.ok:
        return empty_labels((hh, ww), config, ground.status, ground.reason or "no ground plane")
    if confidence is None:
        confidence = np.ones((hh, ww), np.float32)
    confidence = np.asarray(confidence)
    if confidence.shape != (hh, ww):
        return empty_labels((hh, ww), config, GroundStatus.INVALID_INPUT,
                            f"confidence is {confidence.shape} but the points are {(hh, ww)}")
    cam = camera if camera is not None else intrinsics_from_points(points)
    if cam is None:
        return empty_labels((hh, ww), config, GroundStatus.NO_POINTS, "no valid point to place the image grid")
    if tuple(intrinsics(cam)[4:]) != (ww, hh):
        return empty_labels((hh, ww), config, GroundStatus.INVALID_INPUT,
                            f"camera is {intrinsics(cam)[4]}x{intrinsics(cam)[5]} but the points are {ww}x{hh}")
    height, plane_idx = point_heights(points, ground, config)
    with np.errstate(invalid="ignore"):
        rng = np.sqrt(np.einsum("ijk,ijk->ij", points, points, dtype=np.float32))
        usable = (rng <= config.max_range_m) & (confidence >= config.min_confidence) & np.isfinite(height) & \
            (height <= config.max_point_height_m)
        obstacle = usable & ((height > config.obstacle_height_m) | (height < -config.hole_depth_m))
    if len(ground.planes) > 1:
        normals = np.stack([ground.primary.normal] + [p.normal for p in ground.planes[1:]])[plane_idx]
    else:
        normals = ground.primary.normal
    feet = project_feet(points, height, obstacle, normals, cam, config, rng)
    floating = np.zeros(hh * ww, bool)
    floating[feet.index[~feet.supported]] = True
    floating = floating.reshape(hh, ww)
    usable &= ~floating
    obstacle &= ~floating
    lab = classify_windows(points, height, obstacle, usable, confidence, lambda keep: feet.image((hh, ww), keep),
                           ground.primary.normal, config, rng)
    lab.status, lab.reason = GroundStatus.OK, ""
    lab.ms = (time.perf_counter() - t0) * 1e3
    return lab


def colorize_labels(image: np.ndarray) -> np.ndarray:
    """BGR picture of a label image (LABEL_COLORS; unknown black)."""
    return np.asarray(LABEL_COLORS, np.uint8)[np.minimum(image, 5)]


def overlay(left: np.ndarray, labels: NearLabels, horizon=None, alpha: float = 0.45) -> np.ndarray:
    """Labels blended over the left image (unknown windows left as they are), window grid and horizon drawn."""
    import cv2

    base = left if left.ndim == 3 else cv2.cvtColor(left, cv2.COLOR_GRAY2BGR)
    base = base.copy()
    col = colorize_labels(labels.image)
    m = labels.image > 0
    base[m] = ((1 - alpha) * base[m] + alpha * col[m]).astype(np.uint8)
    wr, wc = labels.window
    for r in range(1, labels.grid[0]):
        cv2.line(base, (0, r * wr), (base.shape[1] - 1, r * wr), (60, 60, 60), 1)
    for c in range(1, labels.grid[1]):
        cv2.line(base, (c * wc, 0), (c * wc, base.shape[0] - 1), (60, 60, 60), 1)
    if horizon is not None:
        p0 = (int(round(horizon.p0[0])), int(round(horizon.p0[1])))
        p1 = (int(round(horizon.p1[0])), int(round(horizon.p1[1])))
        cv2.line(base, p0, p1, (255, 255, 0), 2, cv2.LINE_AA)
    return base
