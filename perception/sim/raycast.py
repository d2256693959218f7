"""Ray casting against the heightfield, vectorised in numpy, coarse to fine.

Rays are o + t * d with d = R @ (x_n, y_n, 1): the ray parameter t IS the depth Z along the optical axis, so the
z-buffer and the ground-truth depth are the same number.

1. `march`: exact, safe space skipping on every ray of a sparse grid: each step either advances by the cell size of a
   max-height level (when the ray stays above that bound) or goes one level finer; below the finest level it takes
   small steps (1% of the distance) testing the exact height. The first step that ends under the ground brackets
   the hit.
2. `refine_from_coarse`: every full-resolution ray gets a bracket from its sparse neighbours' hits, checks it
   (above the ground at the start, below at the end), and the rest go through `march`.
3. `solve`: regula falsi (Illinois) in each bracket to ~1e-5 of the depth.
"""
from __future__ import annotations

import cv2
import numpy as np

from perception.sim.terrain import Terrain

T_NEAR = 0.15  # m, nearest depth rendered
MAX_ITER = 400


def ray_limits(terrain: Terrain, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Largest t at which each ray can still meet the ground (leaves the world, or rises above its highest point)."""
    x0, y0, x1, y1 = terrain.extent
    with np.errstate(divide="ignore", invalid="ignore"):
        tx = np.where(d[:, 0] > 0, (x1 - o[0]) / d[:, 0], (x0 - o[0]) / d[:, 0])
        ty = np.where(d[:, 1] > 0, (y1 - o[1]) / d[:, 1], (y0 - o[1]) / d[:, 1])
        tz = np.where(d[:, 2] > 0, (terrain.h_max - o[2]) / d[:, 2], np.inf)
    t = np.minimum(np.minimum(np.abs(tx), np.abs(ty)), tz)
    return np.nan_to_num(t, nan=0.0, posinf=1e7).astype(np.float32)


def march(terrain: Terrain, o: np.ndarray, d: np.ndarray, t_start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bracket [lo, hi] of the first ground hit of each ray; lo = inf where a ray meets no ground.

    Each step is the largest of: a max-level cell (when the ray stays above that level's height bound), the
    Lipschitz-safe step gap / (slope bound + ray descent), and a minimum step of 0.7% of the distance; a step that
    ends under the ground brackets the hit.
    """
    n = d.shape[0]
    lo = np.full(n, np.inf, np.float32)
    hi = np.full(n, np.inf, np.float32)
    t_end = ray_limits(terrain, o, d)
    t = np.full(n, T_NEAR, np.float32) if t_start is None else np.maximum(t_start, T_NEAR).astype(np.float32)
    dh = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-6).astype(np.float32)
    top = len(terrain.max_cells) - 1
    level = np.full(n, top, np.int64)
    idx = np.nonzero(t < t_end)[0]
    t, level, dd, dh, t_end = t[idx], level[idx], d[idx], dh[idx], t_end[idx]
    descent = np.maximum(-dd[:, 2] / dh, 0.0)
    gap = ground_gap(terrain, o, dd, t)
    ox, oy, oz = (np.float32(v) for v in o)
    for it in range(MAX_ITER):
        if idx.size == 0:
            break
        px = ox + t * dd[:, 0]
        py = oy + t * dd[:, 1]
        pz = oz + t * dd[:, 2]
        step_c = terrain.max_cells[level] / dh
        bound = terrain.max_bound(level, px, py)
        passes = np.minimum(pz, pz + step_c * dd[:, 2]) > bound
        slope = terrain.slope_bound(px, py)
        dist = t * dh
        rel = (0.008 + 0.03 * np.minimum(dist * 1.25e-3, 1.0)) * (1.0 + it / 15.0)  # long marches take longer steps
        step = np.maximum(gap / (slope + descent), np.maximum(0.02, dist * rel)) / dh
        step = np.where(passes, np.maximum(step, step_c), step)
        tn = t + step
        gap_n = ground_gap(terrain, o, dd, tn)
        under = gap_n <= 0
        if under.any():
            lo[idx[under]] = t[under]
            hi[idx[under]] = tn[under]
        level = np.where(passes, np.minimum(level + 1, top), np.maximum(level - 1, 0))
        t, gap = tn, gap_n
        keep = ~under & (t < t_end)
        if not keep.all():
            idx, t, level, dd, dh, t_end, descent, gap = (
                idx[keep], t[keep], level[keep], dd[keep], dh[keep], t_end[keep], descent[keep], gap[keep])
    return lo, hi


def ground_gap(terrain: Terrain, o: np.ndarray, d: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Height of the ray above the ground at parameter t (negative under the ground)."""
    x = np.float32(o[0]) + t * d[:, 0]
    y = np.float32(o[1]) + t * d[:, 1]
    return np.float32(o[2]) + t * d[:, 2] - terrain.height(x, y)


def solve(terrain: Terrain, o: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray, iters: int = 6,
          f_lo: np.ndarray | None = None, f_hi: np.ndarray | None = None) -> np.ndarray:
    """Root of the ground gap in [lo, hi] (gap(lo) > 0 >= gap(hi)) by the Illinois variant of regula falsi."""
    if lo.size == 0:
        return lo.astype(np.float32)
    a, b = lo.astype(np.float32), hi.astype(np.float32)
    fa = ground_gap(terrain, o, d, a) if f_lo is None else f_lo.astype(np.float32)
    fb = ground_gap(terrain, o, d, b) if f_hi is None else f_hi.astype(np.float32)
    kept_a = np.zeros(a.shape, bool)  # the previous step kept a (moved b)
    kept_b = np.zeros(a.shape, bool)
    for _ in range(iters):
        denom = fa - fb
        denom[denom <= 0] = 1e-20
        c = a + (b - a) * fa / denom
        c = np.minimum(np.maximum(c, a), b)
        fc = ground_gap(terrain, o, d, c)
        above = fc > 0
        below = ~above
        fb *= np.where(above & kept_b, np.float32(0.5), np.float32(1.0))
        fa *= np.where(below & kept_a, np.float32(0.5), np.float32(1.0))
        np.copyto(a, c, where=above)
        np.copyto(fa, fc, where=above)
        np.copyto(b, c, where=below)
        np.copyto(fb, fc, where=below)
        kept_b, kept_a = above, below
    # return the end nearest the surface (the under-ground end only when it is closer)
    return np.where(np.abs(fa) < np.abs(fb), a, b)


def _node_coords(n: int, stride: int) -> np.ndarray:
    nodes = np.arange(0, n, stride)
    return nodes if nodes[-1] == n - 1 else np.r_[nodes, n - 1]


def refine(terrain: Terrain, o: np.ndarray, flat: np.ndarray, cand: np.ndarray, guess: np.ndarray,
           tmin: np.ndarray, tmax: np.ndarray, samples: int = 16, checks: int = 3) -> np.ndarray:
    """Ground depth of the candidate rays `cand` (indices into flat (N, 3)) given a guess of their depth and the
    nearest / farthest depth of their surroundings (tmin / tmax); other rays stay inf (sky).

    Rays that cross the ground within +-3% of the guess are solved in that bracket, provided nothing nearer is in
    the way: when their surroundings are nearer than the guess (a crest, an upward slope), the ray is first checked
    above the ground at `checks` points between 0.8 * tmin and the bracket. The others (silhouettes, horizon) are
    sampled at `samples` geometric steps from 0.8 * tmin to 1.03 * (guess or tmax); the first crossing is solved,
    and rays that have not crossed by then are marched on."""
    t = np.full(flat.shape[0], np.inf, np.float32)
    g = guess[cand]
    known = np.isfinite(g)
    idx = cand[known]
    g = g[known]
    lo = np.maximum(g * 0.97, T_NEAR).astype(np.float32)
    hi = (g * 1.03).astype(np.float32)
    d = flat[idx]
    f_lo, f_hi = ground_gap(terrain, o, d, lo), ground_gap(terrain, o, d, hi)
    good = (f_lo > 0) & (f_hi <= 0)
    near = np.maximum(0.8 * tmin[idx], T_NEAR)
    check = np.nonzero(good & (near < 0.8 * lo))[0]
    if check.size:
        a, b = near[check], 0.97 * lo[check]
        ratio = (b / a) ** np.float32(1.0 / checks)
        for k in range(checks):
            a = a * ratio
            good[check[ground_gap(terrain, o, d[check], a.astype(np.float32)) <= 0]] = False
    t[idx[good]] = solve(terrain, o, d[good], lo[good], hi[good], iters=4, f_lo=f_lo[good], f_hi=f_hi[good])
    rest = np.r_[idx[~good], cand[~known]]
    if rest.size == 0:
        return t
    d = flat[rest]
    far = np.where(np.isfinite(guess[rest]), guess[rest], tmax[rest])
    s0 = np.maximum(0.8 * np.where(np.isfinite(tmin[rest]), tmin[rest], far), T_NEAR)
    s1 = np.maximum(1.03 * far, s0 * 1.01)
    ok = np.isfinite(s1)
    s0, s1 = np.where(ok, s0, T_NEAR).astype(np.float32), np.where(ok, s1, 2 * T_NEAR).astype(np.float32)
    ratio = (s1 / s0) ** np.float32(1.0 / (samples - 1))
    a = s0
    fa = ground_gap(terrain, o, d, a)
    below = fa <= 0  # already under the ground at s0: march from the start
    b, fb = np.full_like(a, np.inf), np.zeros_like(a)
    found = np.zeros(rest.size, bool)
    for _ in range(samples - 1):
        open_ = ~found & ~below
        if not open_.any():
            break
        nxt = a * ratio
        fn = ground_gap(terrain, o, d, nxt)
        cross = open_ & (fn <= 0)
        b = np.where(cross, nxt, b)
        fb = np.where(cross, fn, fb)
        found |= cross
        step = open_ & ~cross
        a = np.where(step, nxt, a)
        fa = np.where(step, fn, fa)
    sub = np.full(rest.size, np.inf, np.float32)
    if found.any():
        sub[found] = solve(terrain, o, d[found], a[found], b[found], iters=8, f_lo=fa[found], f_hi=fb[found])
    more = np.nonzero(~found)[0]
    if more.size:
        start = np.where(below[more] | ~ok[more], np.float32(T_NEAR), a[more])
        lo, hi = march(terrain, o, d[more], start)
        hit = np.isfinite(lo)
        part = np.full(more.size, np.inf, np.float32)
        part[hit] = solve(terrain, o, d[more][hit], lo[hit], hi[hit], iters=8)
        sub[more] = part
    t[rest] = sub
    return t


def cast_ground(terrain: Terrain, o: np.ndarray, rays: np.ndarray, stride: int = 4) -> np.ndarray:
    """Depth (t) of the first ground hit for an HxWx3 grid of rays; inf where the ray meets no ground.

    Marches a sparse grid of rays (every `stride` pixels), then refines every ray from the inverse depth interpolated
    between its sparse neighbours (exact for a plane) with the 4x4 neighbours' minimum as the safety check."""
    h, w, _ = rays.shape
    ys, xs = _node_coords(h, stride), _node_coords(w, stride)
    sparse = np.ascontiguousarray(rays[ys][:, xs]).reshape(-1, 3)
    lo, hi = march(terrain, o, sparse)
    t_sparse = np.full(lo.shape, np.inf, np.float32)
    ok = np.isfinite(lo)
    t_sparse[ok] = solve(terrain, o, sparse[ok], lo[ok], hi[ok], iters=8)
    t_sparse = t_sparse.reshape(len(ys), len(xs))
    sky = ~np.isfinite(t_sparse)
    fy = np.interp(np.arange(h), ys, np.arange(len(ys))).astype(np.float32)
    fx = np.interp(np.arange(w), xs, np.arange(len(xs))).astype(np.float32)
    mx, my = np.meshgrid(fx, fy)
    inv = np.where(sky, np.float32(0), 1.0 / np.where(sky, 1, t_sparse)).astype(np.float32)
    guess_inv = cv2.remap(inv, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(-1)
    cy = np.minimum(fy.astype(np.int64), max(len(ys) - 2, 0))
    cx = np.minimum(fx.astype(np.int64), max(len(xs) - 2, 0))
    sky_u8 = sky.astype(np.uint8)
    k2, k4 = np.ones((2, 2), np.uint8), np.ones((4, 4), np.uint8)
    cell_sky = cv2.dilate(sky_u8, k2, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)[cy][:, cx].reshape(-1) > 0
    all_sky = cv2.erode(sky_u8, k4, anchor=(1, 1), borderType=cv2.BORDER_REPLICATE)[cy][:, cx].reshape(-1) > 0
    tmin = cv2.erode(np.where(sky, np.float32(np.inf), t_sparse), k4, anchor=(1, 1), borderType=cv2.BORDER_REPLICATE)
    tmax = cv2.dilate(np.where(sky, np.float32(0), t_sparse), k4, anchor=(1, 1), borderType=cv2.BORDER_REPLICATE)
    tmin, tmax = tmin[cy][:, cx].reshape(-1), tmax[cy][:, cx].reshape(-1)
    with np.errstate(divide="ignore"):
        guess = np.where(cell_sky, np.float32(np.inf), 1.0 / guess_inv).astype(np.float32)
    cand = np.nonzero(~all_sky)[0]
    return refine(terrain, o, rays.reshape(-1, 3), cand, guess, tmin, tmax).reshape(h, w)


def cast_ground_from(terrain: Terrain, o: np.ndarray, rays: np.ndarray, ref_depth: np.ndarray, shift: float) -> np.ndarray:
    """Ground depth for the RIGHT camera of a rectified pair, guided by the left camera's ground depth.

    `shift` = fx * baseline: the right pixel (u, v) sees what the left one sees at u + shift / depth."""
    h, w, _ = rays.shape
    sky = ~np.isfinite(ref_depth)
    inv = np.where(sky, np.float32(0), 1.0 / np.where(sky, 1, ref_depth)).astype(np.float32)
    near = float(ref_depth[~sky].min()) if (~sky).any() else 1e9
    reach = int(np.ceil(shift / max(near, T_NEAR))) + 2  # largest disparity in the left ground, plus margin
    mx, my = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    cur = inv
    for _ in range(3):  # fixed point: u_left = u_right + shift * inv_depth(u_left)
        cur = cv2.remap(inv, mx + np.float32(shift) * cur, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    kernel = np.ones((3, reach + 1), np.uint8)
    tmin = cv2.erode(np.where(sky, np.float32(np.inf), ref_depth).astype(np.float32), kernel, anchor=(0, 1),
                     borderType=cv2.BORDER_REPLICATE).reshape(-1)
    tmax = cv2.dilate(np.where(sky, np.float32(0), ref_depth).astype(np.float32), kernel, anchor=(0, 1),
                      borderType=cv2.BORDER_REPLICATE).reshape(-1)
    sure_sky = cv2.erode(sky.astype(np.uint8), kernel, anchor=(0, 1), borderType=cv2.BORDER_REPLICATE).reshape(-1) > 0
    with np.errstate(divide="ignore"):
        guess = (1.0 / cur).reshape(-1).astype(np.float32)
    cand = np.nonzero(~sure_sky)[0]
    return refine(terrain, o, rays.reshape(-1, 3), cand, guess, tmin, tmax).reshape(h, w)
