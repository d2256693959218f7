"""Analytic ray / primitive intersection (ellipsoids, boxes, vertical cylinders with a yaw), vectorised over
(ray, primitive) pairs, and the projection of oriented boxes into an image (clipped at the near plane)."""
from __future__ import annotations

import numpy as np

from perception.sim.noise import norm3, rotate
from perception.sim.objects import BOX, CYLINDER, ELLIPSOID

T_NEAR = 0.15
_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
_EDGES = np.array([(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1])


def box_corners(centre: np.ndarray, half: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(M, 8, 3) world corners of boxes with a yaw about z."""
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    local = half[:, None, :] * _SIGNS[None]
    x = c * local[..., 0] - s * local[..., 1]
    y = s * local[..., 0] + c * local[..., 1]
    return centre[:, None, :] + np.stack([x, y, local[..., 2]], axis=-1)


def project_boxes(corners: np.ndarray, o: np.ndarray, R: np.ndarray, fx, fy, cx, cy, near: float = T_NEAR):
    """Image bounds (u0, v0, u1, v1) of boxes given by their 8 corners, clipped at the near plane; `valid` is False
    for boxes wholly behind it. Unbounded in u/v is not possible: the clipped polytope is in front of the camera."""
    cam = rotate(corners - o, R.T)  # (M, 8, 3) in the camera frame
    z = cam[..., 2]
    a, b = cam[:, _EDGES[:, 0]], cam[:, _EDGES[:, 1]]
    za, zb = a[..., 2], b[..., 2]
    cross = (za - near) * (zb - near) < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(cross, (near - za) / (zb - za), 0.0)
    p = a + f[..., None] * (b - a)
    pts = np.concatenate([cam, p], axis=1)
    ok = np.concatenate([z >= near, cross], axis=1)
    zz = np.where(ok, pts[..., 2], 1.0)
    u = np.where(ok, cx + fx * pts[..., 0] / zz, np.nan)
    v = np.where(ok, cy + fy * pts[..., 1] / zz, np.nan)
    valid = ok.any(axis=1)
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmin(u, 1), np.nanmin(v, 1), np.nanmax(u, 1), np.nanmax(v, 1), valid


def ray_hits(kind: np.ndarray, centre: np.ndarray, half: np.ndarray, yaw: np.ndarray, o: np.ndarray,
             pid: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Depth t (inf = miss) of the first hit (t > T_NEAR) of each (ray, primitive) pair: ray o + t d[k] against
    primitive pid[k] of the given table. The table must be sorted by kind and pid ascending (pairs in blocks)."""
    f32 = np.float32
    t = np.full(pid.size, np.inf, f32)
    if pid.size == 0:
        return t
    c, s = np.cos(yaw).astype(f32), np.sin(yaw).astype(f32)
    q = o[None, :] - centre
    qx = (c * q[:, 0] + s * q[:, 1]).astype(f32)
    qy = (-s * q[:, 0] + c * q[:, 1]).astype(f32)
    qz = q[:, 2].astype(f32)
    inv = (1.0 / half).astype(f32)
    bounds = np.searchsorted(kind[pid], [ELLIPSOID, BOX, CYLINDER, CYLINDER + 1])
    cp, sp = c[pid], s[pid]
    dx = cp * d[:, 0] + sp * d[:, 1]
    dy = cp * d[:, 1] - sp * d[:, 0]
    dz = d[:, 2]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a, b = bounds[0], bounds[1]
        if b > a:  # ellipsoids: unit sphere in scaled coordinates
            p = pid[a:b]
            ax, ay, az = (qx * inv[:, 0])[p], (qy * inv[:, 1])[p], (qz * inv[:, 2])[p]
            bx, by, bz = dx[a:b] * inv[p, 0], dy[a:b] * inv[p, 1], dz[a:b] * inv[p, 2]
            A = bx * bx + by * by + bz * bz
            B = ax * bx + ay * by + az * bz
            disc = B * B - A * (ax * ax + ay * ay + az * az - 1.0)
            root = (-B - np.sqrt(np.maximum(disc, 0))) / A
            t[a:b] = np.where((disc >= 0) & (root > T_NEAR), root, np.inf)
        a, b = bounds[1], bounds[2]
        if b > a:  # boxes: slabs
            p = pid[a:b]
            t0 = np.full(b - a, -np.inf, f32)
            t1 = np.full(b - a, np.inf, f32)
            for qq, dd, h in ((qx, dx, 0), (qy, dy, 1), (qz, dz, 2)):
                hh, qp, di = half[p, h].astype(f32), qq[p], 1.0 / dd[a:b]
                lo, hi = (-hh - qp) * di, (hh - qp) * di
                lo, hi = np.nan_to_num(lo, nan=-np.inf), np.nan_to_num(hi, nan=np.inf)
                t0 = np.maximum(t0, np.minimum(lo, hi))
                t1 = np.minimum(t1, np.maximum(lo, hi))
            t[a:b] = np.where((t0 <= t1) & (t0 > T_NEAR), t0, np.inf)
        a, b = bounds[2], bounds[3]
        if b > a:  # vertical cylinders: side, then the cap facing the ray
            p = pid[a:b]
            r, h = half[p, 0].astype(f32), half[p, 2].astype(f32)
            px, py, pz = qx[p], qy[p], qz[p]
            ex, ey, ez = dx[a:b], dy[a:b], dz[a:b]
            A = ex * ex + ey * ey
            B = px * ex + py * ey
            disc = B * B - A * (px * px + py * py - r * r)
            side = (-B - np.sqrt(np.maximum(disc, 0))) / A
            side_ok = (disc >= 0) & (side > T_NEAR) & (np.abs(pz + side * ez) <= h)
            tcap = (np.where(ez < 0, h, -h) - pz) / ez
            rx, ry = px + tcap * ex, py + tcap * ey
            cap_ok = (tcap > T_NEAR) & (rx * rx + ry * ry <= r * r)
            t[a:b] = np.minimum(np.where(side_ok, side, np.inf), np.where(cap_ok, tcap, np.inf))
    return t


def intersect(kind: np.ndarray, centre: np.ndarray, half: np.ndarray, yaw: np.ndarray, o: np.ndarray, d: np.ndarray):
    """First hit of rays o + t d (t > T_NEAR) with one primitive each (used for the winning pairs of `ray_hits`,
    where the surface is needed). Returns t (inf = miss), world normals (P, 3),
    local hit points relative to the primitive centre (P, 3) and a `cap` flag (hit a flat top/bottom or box face
    facing up/down)."""
    n = d.shape[0]
    t = np.full(n, np.inf, np.float32)
    normal = np.zeros((n, 3), np.float32)
    local = np.zeros((n, 3), np.float32)
    cap = np.zeros(n, bool)
    if n == 0:
        return t, normal, local, cap
    cy, sy = np.cos(yaw), np.sin(yaw)
    q = o[None, :] - centre
    qx, qy, qz = cy * q[:, 0] + sy * q[:, 1], -sy * q[:, 0] + cy * q[:, 1], q[:, 2]
    dx, dy, dz = cy * d[:, 0] + sy * d[:, 1], -sy * d[:, 0] + cy * d[:, 1], d[:, 2].astype(float)
    hx, hy, hz = half[:, 0], half[:, 1], half[:, 2]
    nl = np.zeros((n, 3))
    tt = np.full(n, np.inf)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        m = kind == ELLIPSOID
        if m.any():
            ax, ay, az = qx[m] / hx[m], qy[m] / hy[m], qz[m] / hz[m]
            bx, by, bz = dx[m] / hx[m], dy[m] / hy[m], dz[m] / hz[m]
            A = bx * bx + by * by + bz * bz
            B = ax * bx + ay * by + az * bz
            Cc = ax * ax + ay * ay + az * az - 1.0
            disc = B * B - A * Cc
            root = (-B - np.sqrt(np.maximum(disc, 0))) / A
            hit = (disc >= 0) & (root > T_NEAR)
            tt[m] = np.where(hit, root, np.inf)
            px, py, pz = ax + root * bx, ay + root * by, az + root * bz
            nl[m] = np.stack([px / hx[m], py / hy[m], pz / hz[m]], 1)
        m = kind == BOX
        if m.any():
            lo = np.stack([(-hx[m] - qx[m]) / dx[m], (-hy[m] - qy[m]) / dy[m], (-hz[m] - qz[m]) / dz[m]], 1)
            hi = np.stack([(hx[m] - qx[m]) / dx[m], (hy[m] - qy[m]) / dy[m], (hz[m] - qz[m]) / dz[m]], 1)
            lo, hi = np.nan_to_num(lo, nan=-np.inf), np.nan_to_num(hi, nan=np.inf)
            near, far = np.minimum(lo, hi), np.maximum(lo, hi)
            t0, t1 = near.max(1), far.min(1)
            hit = (t0 <= t1) & (t0 > T_NEAR)
            tt[m] = np.where(hit, t0, np.inf)
            axis = near.argmax(1)
            dsel = np.stack([dx[m], dy[m], dz[m]], 1)[np.arange(axis.size), axis]
            nb = np.zeros((axis.size, 3))
            nb[np.arange(axis.size), axis] = -np.sign(dsel)
            nl[m] = nb
            cap[m] = axis == 2
        m = kind == CYLINDER
        if m.any():
            r, h = hx[m], hz[m]
            A = dx[m] ** 2 + dy[m] ** 2
            B = qx[m] * dx[m] + qy[m] * dy[m]
            Cc = qx[m] ** 2 + qy[m] ** 2 - r * r
            disc = B * B - A * Cc
            side = (-B - np.sqrt(np.maximum(disc, 0))) / A
            zs = qz[m] + side * dz[m]
            side_ok = (disc >= 0) & (side > T_NEAR) & (np.abs(zs) <= h)
            capz = np.where(dz[m] < 0, h, -h)
            tcap = (capz - qz[m]) / dz[m]
            rx, ry = qx[m] + tcap * dx[m], qy[m] + tcap * dy[m]
            cap_ok = (tcap > T_NEAR) & (rx * rx + ry * ry <= r * r)
            use_cap = cap_ok & (~side_ok | (tcap < side))
            tt[m] = np.where(use_cap, tcap, np.where(side_ok, side, np.inf))
            px, py = qx[m] + side * dx[m], qy[m] + side * dy[m]
            nl[m] = np.where(use_cap[:, None], np.stack([0 * r, 0 * r, np.sign(capz)], 1), np.stack([px, py, 0 * r], 1))
            cap[m] = use_cap
    t[:] = tt
    h = np.nonzero(np.isfinite(tt))[0]
    th = tt[h]
    local[h] = np.stack([qx[h] + th * dx[h], qy[h] + th * dy[h], qz[h] + th * dz[h]], 1)
    nh, ch, sh = nl[h], cy[h], sy[h]
    nn = np.stack([ch * nh[:, 0] - sh * nh[:, 1], sh * nh[:, 0] + ch * nh[:, 1], nh[:, 2]], 1)
    norm = norm3(nn)[:, None]
    normal[h] = nn / np.where(norm > 0, norm, 1)
    return t, normal, local, cap
