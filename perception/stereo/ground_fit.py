"""Robust search for ground planes in a point cloud (see `perception.stereo.ground` for the method and the
measurements): usable points, MSAC (`ransac_plane`), the plane-space Hough transform (`hough_plane`), the
least-squares / eigenvector refit (`refine_plane`) and several planes in turn (`fit_planes`).

`config` is a `perception.stereo.ground.GroundConfig`.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from perception.stereo.plane import GroundPlane, GroundStatus, plane_from_points, up_from_angles

if TYPE_CHECKING:
    from perception.stereo.ground import GroundConfig


def prior_up(config: GroundConfig) -> np.ndarray:
    """Expected up direction in the optical frame for the configured prior pitch and roll."""
    return up_from_angles(config.prior_pitch_deg, config.prior_roll_deg)


def inlier_threshold(z: np.ndarray, config: GroundConfig) -> np.ndarray:
    return config.inlier_threshold_m + config.inlier_growth * np.abs(z)


def usable_points(points: np.ndarray, confidence: np.ndarray | None, config: GroundConfig
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 3) float64 candidates, their weights (confidence, 1 without), and their flat indices into `points`."""
    p = points.reshape(-1, 3)
    z = p[:, 2]
    with np.errstate(invalid="ignore"):
        ok = (z >= config.min_range_m) & (z <= config.max_range_m)  # NaN compares False
        if confidence is not None:
            c = confidence.reshape(-1)
            ok &= c >= config.min_confidence
    idx = np.flatnonzero(ok)
    sel = p[idx].astype(np.float64)
    fin = np.isfinite(sel).all(1)
    if not fin.all():
        idx, sel = idx[fin], sel[fin]
    w = np.ones(idx.size) if confidence is None else np.maximum(confidence.reshape(-1)[idx].astype(np.float64), 1e-3)
    return sel, w, idx


def _plane_ok(n: np.ndarray, d, up: np.ndarray, config: GroundConfig):
    """Mask of candidate planes (rows of n, d) that look like ground: tilt and camera height within limits."""
    cos_tilt = np.cos(np.radians(config.max_tilt_deg))
    return (n @ up >= cos_tilt) & (d >= config.min_height_m) & (d <= config.max_height_m)


def ransac_plane(p: np.ndarray, w: np.ndarray, config: GroundConfig, rng: np.random.Generator
                 ) -> tuple[np.ndarray, float] | None:
    """MSAC over `ransac_iterations` random triples (vectorised); ground-like planes only. (normal, d) or None."""
    n_pts = p.shape[0]
    if n_pts < 3:
        return None
    k = config.ransac_iterations
    tri = rng.integers(0, n_pts, size=(k, 3))
    a, b, c = p[tri[:, 0]], p[tri[:, 1]], p[tri[:, 2]]
    n = np.cross(b - a, c - a)
    norm = np.linalg.norm(n, axis=1)
    good = norm > 1e-9
    n = n[good] / norm[good, None]
    a = a[good]
    up = prior_up(config)
    n[n @ up < 0] *= -1
    d = -(n * a).sum(1)
    keep = _plane_ok(n, d, up, config)
    n, d = n[keep], d[keep]
    if n.shape[0] == 0:
        return None
    inv_thr = (1.0 / inlier_threshold(p[:, 2], config)).astype(np.float32)
    pt = (p.T * inv_thr).astype(np.float32)  # distances come out in units of each point's threshold
    n32, d32, w32 = n.astype(np.float32), d.astype(np.float32), w.astype(np.float32)
    best, best_score = None, -1.0
    for s in range(0, n.shape[0], 128):  # chunks keep the (planes x points) matrix small
        r = n32[s:s + 128] @ pt
        r += d32[s:s + 128, None] * inv_thr
        np.square(r, out=r)
        np.subtract(1.0, r, out=r)
        np.maximum(r, 0.0, out=r)
        score = r @ w32  # MSAC: confidence-weighted truncated quadratic
        j = int(np.argmax(score))
        if score[j] > best_score:
            best, best_score = (n[s + j], float(d[s + j])), float(score[j])
    return best


def _hough_pass(p, w, config, pitches, rolls, heights):
    pp, rr = np.meshgrid(pitches, rolls, indexing="ij")
    normals = np.stack([up_from_angles(a, b) for a, b in zip(pp.ravel(), rr.ravel())])
    dvals = -(normals @ p.T)  # camera height above each candidate plane through each point
    step = heights[1] - heights[0]
    nb = heights.size
    bins = np.rint((dvals - heights[0]) / step).astype(np.int64)
    ok = (bins >= 0) & (bins < nb)
    flat = (np.arange(normals.shape[0])[:, None] * nb + bins)[ok]
    acc = np.bincount(flat, weights=np.broadcast_to(w, dvals.shape)[ok], minlength=normals.shape[0] * nb)
    acc = acc.reshape(normals.shape[0], nb)
    acc[:, 1:-1] = acc[:, 1:-1] + 0.5 * (acc[:, :-2] + acc[:, 2:])  # votes split across neighbouring bins
    m, j = np.unravel_index(int(np.argmax(acc)), acc.shape)
    return float(pp.ravel()[m]), float(rr.ravel()[m]), float(heights[j]), float(acc[m, j])


def hough_plane(p: np.ndarray, w: np.ndarray, config: GroundConfig) -> tuple[np.ndarray, float] | None:
    """LAGR-style Hough transform over (pitch, roll, height): coarse grid over the tilt cone around the prior,
    then a fine grid around the best cell. (normal, d) or None."""
    if p.shape[0] < 3:
        return None
    st, hs = config.hough_angle_step_deg, config.hough_height_step_m
    lim = config.max_tilt_deg
    pitches = config.prior_pitch_deg + np.arange(-lim, lim + 1e-9, st)
    rolls = config.prior_roll_deg + np.arange(-lim, lim + 1e-9, st)
    heights = np.arange(config.min_height_m, config.max_height_m + 1e-9, hs)
    if heights.size < 2:
        heights = np.array([config.min_height_m, config.max_height_m])
    pit, rol, hgt, votes = _hough_pass(p, w, config, pitches, rolls, heights)
    if votes <= 0:
        return None
    fs, fh = st / 8.0, hs * 0.4
    pitches = pit + np.arange(-st, st + 1e-9, fs)
    rolls = rol + np.arange(-st, st + 1e-9, fs)
    heights = np.arange(max(hgt - 2 * hs, config.min_height_m), hgt + 2 * hs + 1e-9, fh)
    if heights.size < 2:
        heights = np.array([hgt - fh, hgt])
    pit, rol, hgt, _ = _hough_pass(p, w, config, pitches, rolls, heights)
    n = up_from_angles(pit, rol)
    if not _plane_ok(n[None], np.array([hgt]), prior_up(config), config)[0]:
        return None
    return n, hgt


def refine_plane(p: np.ndarray, w: np.ndarray, normal: np.ndarray, d: float, config: GroundConfig
                 ) -> tuple[GroundPlane, np.ndarray]:
    """Least-squares / eigenvector refit on the inliers, `refit_iterations` times, inliers re-selected from all of
    `p` each time. The band narrows to 3 robust sigmas of the residuals (at least a quarter of the configured
    threshold) so that the start of a neighbouring plane (a hill) does not tilt the fit; the returned inlier mask
    (what a further plane may not reuse) uses the full threshold. Returns the plane (inlier count and rms within the
    band, extent) and that mask over `p`."""
    thr = inlier_threshold(p[:, 2], config)
    n, dd = np.asarray(normal, dtype=np.float64), float(d)
    band = thr
    inl = np.abs(p @ n + dd) < band
    for _ in range(config.refit_iterations):
        if inl.sum() < 3:
            break
        fit = plane_from_points(p[inl], w[inl], up=n)
        if fit is None:
            break
        n, dd = fit
        r = np.abs(p @ n + dd) / thr
        sigma = 1.4826 * float(np.median(r[r < 1.0])) if np.any(r < 1.0) else 1.0
        band = thr * float(np.clip(3.0 * sigma, 0.25, 1.0))
        inl = r * thr < band
    cnt = int(inl.sum())
    rms = float(np.sqrt(np.average((p[inl] @ n + dd) ** 2, weights=w[inl]))) if cnt else float("nan")
    if cnt:
        xl, xh = np.percentile(p[inl, 0], [2, 98])
        zl, zh = np.percentile(p[inl, 2], [2, 98])
        extent = (float(xl), float(xh), float(zl), float(zh))
    else:
        extent = GroundPlane.__dataclass_fields__["extent"].default
    full = np.abs(p @ n + dd) < thr
    return GroundPlane(n, dd, cnt, rms, cnt / max(p.shape[0], 1), extent), full


def fit_planes(points: np.ndarray, confidence: np.ndarray | None, config: GroundConfig
               ) -> tuple[list[GroundPlane], GroundStatus, str, int]:
    """Fit up to `max_planes` ground planes in turn (module doc). Returns (planes, status, reason, n_usable);
    never raises for bad values (NaN/inf points are not usable). `points`: (..., 3); `confidence`: same leading
    shape or None."""
    p_all, w_all, _ = usable_points(points, confidence, config)
    n_usable = p_all.shape[0]
    if n_usable == 0:
        return [], GroundStatus.NO_POINTS, (
            f"no finite point with confidence >= {config.min_confidence} between {config.min_range_m} and "
            f"{config.max_range_m} m (all-invalid disparity, textureless image or NaN/inf points)"), 0
    if n_usable < config.min_points:
        return [], GroundStatus.TOO_FEW_POINTS, (
            f"{n_usable} usable points, fewer than min_points = {config.min_points}"), n_usable
    rng = np.random.default_rng(config.seed)
    if n_usable > config.fit_points:  # plenty for a plane; keeps the cost bounded at any image size
        keep = np.sort(rng.choice(n_usable, config.fit_points, replace=False))
        p_all, w_all = p_all[keep], w_all[keep]
    n_fit = p_all.shape[0]
    planes: list[GroundPlane] = []
    remaining = np.ones(n_fit, bool)
    up = prior_up(config)
    for k in range(config.max_planes):
        idx = np.flatnonzero(remaining)
        need = min(config.min_points, n_fit) if k == 0 else max(min(config.min_points, n_fit),
                                                                 config.min_plane_fraction * n_fit)
        if idx.size < need:
            break
        sub = idx if idx.size <= config.sample_points else rng.choice(idx, config.sample_points, replace=False)
        finder = ransac_plane(p_all[sub], w_all[sub], config, rng) if config.method == "ransac" else \
            hough_plane(p_all[sub], w_all[sub], config)
        if finder is None:
            break
        plane, inl = refine_plane(p_all[idx], w_all[idx], finder[0], finder[1], config)
        ok = plane.inliers >= need and bool(_plane_ok(plane.normal[None], np.array([plane.d]), up, config)[0])
        if ok and planes:
            first = planes[0]
            above = np.abs(first.height_of(p_all[idx][inl]))
            thr = float(np.mean(inlier_threshold(p_all[idx][inl][:, 2], config)))
            ok = (plane.angle_to(first) <= config.max_plane_angle_deg and float(above.mean()) > 1.5 * thr
                  and float(np.percentile(above, 10)) <= config.max_step_m)
        if not ok:
            break
        planes.append(replace(plane, fraction=plane.inliers / n_fit))
        remaining[idx[inl]] = False
    if not planes:
        return [], GroundStatus.NO_GROUND, (
            f"no ground-like plane (tilt <= {config.max_tilt_deg} deg from the expected up direction, camera "
            f"{config.min_height_m}..{config.max_height_m} m above it) with >= {config.min_points} inliers among "
            f"{n_usable} points"), n_usable
    return planes, GroundStatus.OK, "", n_usable
