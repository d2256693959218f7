"""Render one camera: ground by ray marching, objects by analytic intersection, a z-buffer, then appearance.

Each pixel (u, v) of a rectified camera with intrinsics (fx, fy, cx, cy) is the ray through (x_n, y_n, 1) =
((u - cx) / fx, (v - cy) / fy, 1) in its optical frame; the left and right views use the same code with their own
pose, so the pair is exactly consistent, and depth = the ray parameter (Z along the optical axis).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.sim import config as C
from perception.sim import shading as S
from perception.sim.noise import dot3, norm3, rotate
from perception.sim.intersect import box_corners, intersect, project_boxes, ray_hits
from perception.sim.objects import BOX
from perception.sim.raycast import T_NEAR, cast_ground, cast_ground_from

MAX_OBJECT_RANGE = 600.0


@dataclass
class View:
    image: np.ndarray  # HxWx3 uint8 BGR
    depth: np.ndarray  # HxW float32, inf = sky
    ground_depth: np.ndarray  # HxW float32: depth of the ground alone (no objects)
    terrain: np.ndarray | None = None  # HxW uint8 terrain class (255 = sky / actor)
    semantic: np.ndarray | None = None  # HxW uint8
    instance: np.ndarray | None = None  # HxW int32 object id, -1 = none
    unoccluded: np.ndarray | None = None  # per object: pixels it would cover with nothing in front


class Renderer:
    def __init__(self, world):
        self.w = world
        self._rays: dict = {}

    def camera_rays(self, info) -> np.ndarray:
        key = (info.width, info.height, info.fx, info.fy, info.cx, info.cy)
        if key not in self._rays:
            u, v = np.meshgrid(np.arange(info.width, dtype=np.float64), np.arange(info.height, dtype=np.float64))
            self._rays[key] = np.dstack([(u - info.cx) / info.fx, (v - info.cy) / info.fy, np.ones_like(u)]).astype(np.float32)
        return self._rays[key]

    # --- objects -----------------------------------------------------------------------------------------------------
    def _visible_prims(self, prims, o, R, info):
        cam = rotate(prims.centre - o, R.T)
        r = norm3(prims.half)
        tx = max(info.cx + 1, info.width - info.cx) / info.fx
        ty = max(info.cy + 1, info.height - info.cy) / info.fy
        kx, ky = r * np.sqrt(1 + tx * tx), r * np.sqrt(1 + ty * ty)
        z = cam[:, 2]
        vis = ((z + r > T_NEAR) & (cam[:, 0] - kx < z * tx) & (cam[:, 0] + kx > -z * tx)
               & (cam[:, 1] - ky < z * ty) & (cam[:, 1] + ky > -z * ty) & (norm3(cam) - r < MAX_OBJECT_RANGE))
        sel = np.nonzero(vis)[0]
        u0, v0, u1, v1, ok = project_boxes(box_corners(prims.centre[sel], prims.half[sel], prims.yaw[sel]), o, R,
                                           info.fx, info.fy, info.cx, info.cy)
        with np.errstate(invalid="ignore"):
            a = np.maximum(np.ceil(np.nan_to_num(u0, nan=1e9)), 0).astype(np.int64)
            b = np.minimum(np.floor(np.nan_to_num(u1, nan=-1e9)), info.width - 1).astype(np.int64)
            c = np.maximum(np.ceil(np.nan_to_num(v0, nan=1e9)), 0).astype(np.int64)
            d = np.minimum(np.floor(np.nan_to_num(v1, nan=-1e9)), info.height - 1).astype(np.int64)
        keep = ok & (b >= a) & (d >= c)
        return sel[keep], a[keep], b[keep], c[keep], d[keep]

    def cast_objects(self, prims, o, R, info, rays_flat, depth_flat, count_unoccluded: bool):
        """Update depth_flat in place with object hits; return the winning (pixel, prim, t, normal, local, cap)."""
        sel, u0, u1, v0, v1 = self._visible_prims(prims, o, R, info)
        n_obj = len(self.w.scene.objects)
        empty = (np.zeros(0, np.int64),) * 2 + (np.zeros(0, np.float32), np.zeros((0, 3), np.float32),
                                               np.zeros((0, 3), np.float32), np.zeros(0, bool))
        unocc = np.zeros(n_obj, np.int64)
        if sel.size == 0:
            return empty, unocc
        order = np.argsort(prims.kind[sel], kind="stable")  # pairs in one block per primitive kind
        sel, u0, u1, v0, v1 = sel[order], u0[order], u1[order], v0[order], v1[order]
        wk, hk = u1 - u0 + 1, v1 - v0 + 1
        nk = wk * hk
        pid = np.repeat(np.arange(sel.size), nk)
        off = np.arange(pid.size) - np.repeat(np.cumsum(nk) - nk, nk)
        pix = (v0[pid] + off // wk[pid]) * info.width + u0[pid] + off % wk[pid]
        t = ray_hits(prims.kind[sel], prims.centre[sel], prims.half[sel], prims.yaw[sel], o, pid, rays_flat[pix])
        hit = np.nonzero(np.isfinite(t))[0]
        if count_unoccluded and hit.size:
            key = np.unique(prims.obj[sel[pid[hit]]] * depth_flat.size + pix[hit])
            unocc = np.bincount(key // depth_flat.size, minlength=n_obj)
        front = hit[t[hit] < depth_flat[pix[hit]]]
        if front.size == 0:
            return empty, unocc
        order = front[np.lexsort((t[front], pix[front]))]
        ps = pix[order]
        win = order[np.r_[True, ps[1:] != ps[:-1]]]
        prim, wpix = sel[pid[win]], pix[win]
        tw, normal, local, cap = intersect(prims.kind[prim], prims.centre[prim], prims.half[prim], prims.yaw[prim], o,
                                           rays_flat[wpix])
        tw = np.where(np.isfinite(tw), tw, t[win])  # same hit, computed again in float64 with its surface
        depth_flat[wpix] = tw
        return (wpix, prim, tw, normal, local, cap), unocc

    # --- a full view -------------------------------------------------------------------------------------------------
    def render(self, info, T_wc: np.ndarray, prims, light: S.Lighting, *, change_active: bool,
               rng: np.random.Generator, truth: bool, guide: tuple | None = None) -> View:
        """Render one camera. `guide` = (left ground depth, fx * baseline) makes the right camera of a rectified pair
        start from the left camera's ground depth (same result, less work)."""
        w = self.w
        R, o = T_wc[:3, :3], T_wc[:3, 3]
        rays = rotate(self.camera_rays(info), R).reshape(-1, 3)
        hgt, wid = info.height, info.width
        if guide is None:
            depth = cast_ground(w.terrain, o, rays.reshape(hgt, wid, 3)).reshape(-1)
        else:
            depth = cast_ground_from(w.terrain, o, rays.reshape(hgt, wid, 3), guide[0], guide[1]).reshape(-1)
        ground_t = depth.copy()
        (opix, oprim, ot, onorm, olocal, ocap), unocc = self.cast_objects(prims, o, R, info, rays, depth, truth)
        fxfy = info.fx * info.fy
        colour = np.empty((depth.size, 3), np.float32)
        is_obj = np.zeros(depth.size, bool)
        is_obj[opix] = True
        sky = ~np.isfinite(depth)
        gpix = np.nonzero(~sky & ~is_obj)[0]
        # ground
        d = rays[gpix]
        t = ground_t[gpix]
        gx, gy, gz = o[0] + t * d[:, 0], o[1] + t * d[:, 1], o[2] + t * d[:, 2]
        gn = w.terrain.normal(gx, gy)
        foot = t / np.sqrt(fxfy * np.maximum(np.abs(dot3(gn, d)), 0.02))
        absent = w.cfg.change_class if (w.cfg.change == "new_class" and not change_active) else None
        gcls = w.terrain.classify(gx, gy, foot, absent=absent)
        albedo = S.ground_albedo(w, gx, gy, gcls, foot, change_active and w.cfg.change == "appearance")
        lit = S.lighting(albedo, gn, S.ground_shadow(w, gx, gy, gz, light), light)
        colour[gpix] = S.haze(lit, t * norm3(d), light)
        # objects
        if opix.size:
            d = rays[opix]
            ofoot = ot / np.sqrt(fxfy * np.maximum(np.abs(dot3(onorm, d)), 0.02))
            uv = self._object_uv(prims, oprim, onorm, olocal, ocap)
            tex = w.bank.sample(prims.tex[oprim], uv[0], uv[1], ofoot)
            albedo = prims.colour[oprim] * tex
            pts = o + ot[:, None] * d
            shadow = S.ground_shadow(w, pts[:, 0], pts[:, 1], pts[:, 2], light) ** 0.5
            lit = S.lighting(albedo, onorm, shadow, light)
            colour[opix] = S.haze(lit, ot * norm3(d), light)
        spix = np.nonzero(sky)[0]
        colour[spix] = S.sky_image(w.bank, rays.reshape(hgt, wid, 3), o, fxfy, light).reshape(-1, 3)[spix]
        image = S.camera_image(colour.reshape(hgt, wid, 3), light, w.cfg.noise_sigma, rng)
        view = View(image=image, depth=depth.reshape(hgt, wid), ground_depth=ground_t.reshape(hgt, wid))
        if truth:
            terr = np.full(depth.size, C.TERRAIN_NONE, np.uint8)
            sem = np.full(depth.size, C.SKY, np.uint8)
            inst = np.full(depth.size, -1, np.int32)
            terr[gpix] = gcls
            sem[gpix] = np.asarray(C.TERRAIN_TO_SEMANTIC, np.uint8)[gcls]
            obj = prims.obj[oprim]
            terr[opix] = w.obj_terrain[obj]
            sem[opix] = w.obj_semantic[obj]
            inst[opix] = obj
            view.terrain, view.semantic = terr.reshape(hgt, wid), sem.reshape(hgt, wid)
            view.instance, view.unoccluded = inst.reshape(hgt, wid), unocc
        return view

    @staticmethod
    def _object_uv(prims, prim, normal, local, cap):
        """Texture coordinates (m) on object surfaces: faces of boxes, azimuth x height on round shapes."""
        yaw = prims.yaw[prim]
        lx, ly, lz = local[:, 0], local[:, 1], local[:, 2]  # already in the primitive's own axes
        nx = np.abs(np.cos(yaw) * normal[:, 0] + np.sin(yaw) * normal[:, 1])
        box = prims.kind[prim] == BOX
        r = 0.5 * (prims.half[prim, 0] + prims.half[prim, 1])
        round_u = np.arctan2(ly, lx) * r
        u = np.where(box, np.where(nx > 0.5, ly, lx), round_u)
        v = np.where(cap, ly, lz)
        u = np.where(cap, lx, u)
        return u.astype(np.float32), v.astype(np.float32)
