"""Ground truth beyond the pixel maps: the object list of a frame, the horizon line, the top-down map."""
from __future__ import annotations

import cv2
import numpy as np

from perception.sim import config as C
from perception.sim.intersect import box_corners, project_boxes
from perception.sim.noise import rotate

MAP_RESOLUTION = 0.5  # m per cell
MAP_MARGIN = 120.0  # m around the driven road (and as far ahead of its end)
STATIC_LIST_RANGE = 200.0  # static obstacles further than this are not listed (they are still rendered)
ACTOR_LIST_RANGE = 300.0


def horizon_row(T_wc: np.ndarray, info) -> np.ndarray:
    """Row (float) of the true horizon (rays with zero elevation in odom) in each image column."""
    R = T_wc[:3, :3]
    xn = (np.arange(info.width) - info.cx) / info.fx
    with np.errstate(divide="ignore"):
        yn = -(R[2, 0] * xn + R[2, 2]) / R[2, 1]
    return (info.cy + info.fy * yn).astype(np.float32)


def object_list(world, view, T_wc: np.ndarray, info, states: list[dict]) -> list[dict]:
    """Objects of the frame (schema in perception.sim): actors in view (even when fully occluded) and static
    obstacles with visible pixels within STATIC_LIST_RANGE."""
    R, o = T_wc[:3, :3], T_wc[:3, 3]
    objs = world.scene.objects
    inst = view.instance.reshape(-1)
    visible = np.bincount(inst[inst >= 0], minlength=len(objs))
    cand = [k for k in np.nonzero(visible)[0] if k < world.scene.n_static]
    rows = []  # (index, centre ground xy, z, yaw, velocity)
    for k in cand:
        ob = objs[k]
        rows.append((k, ob.xy, ob.z, ob.yaw, np.zeros(3)))
    for st in states:
        rows.append((st["index"], st["xy"], st["z"], st["yaw"], st["velocity"]))
    if not rows:
        return []
    idx = np.array([r[0] for r in rows])
    size = np.array([objs[k].size for k in idx], float)
    centre = np.array([[r[1][0], r[1][1], r[2]] for r in rows], float)
    centre[:, 2] += size[:, 2] / 2
    yaw = np.array([r[3] for r in rows], float)
    vel = np.array([r[4] for r in rows], float)
    corners = box_corners(centre, size / 2, yaw)
    u0, v0, u1, v1, ok = project_boxes(corners, o, R, info.fx, info.fy, info.cx, info.cy)
    cam = rotate(centre - o, R.T)
    dist = np.linalg.norm(cam, axis=1)
    # tight boxes of the visible pixels
    ys, xs = np.divmod(np.nonzero(inst >= 0)[0], info.width)
    ids = inst[inst >= 0]
    order = np.argsort(ids, kind="stable")
    ids, xs, ys = ids[order], xs[order], ys[order]
    starts = np.searchsorted(ids, idx)
    ends = np.searchsorted(ids, idx, side="right")
    out = []
    for j, k in enumerate(idx):
        ob = objs[k]
        static = k < world.scene.n_static
        if not ok[j] or dist[j] > (STATIC_LIST_RANGE if static else ACTOR_LIST_RANGE):
            continue
        bx0, by0 = max(u0[j], 0.0), max(v0[j], 0.0)
        bx1, by1 = min(u1[j], info.width - 1.0), min(v1[j], info.height - 1.0)
        if bx1 < bx0 or by1 < by0:
            continue
        full = max((u1[j] - u0[j]) * (v1[j] - v0[j]), 1e-9)
        trunc = float(np.clip(1.0 - (bx1 - bx0) * (by1 - by0) / full, 0.0, 1.0))
        vis = int(visible[k])
        unocc = int(view.unoccluded[k]) if view.unoccluded is not None else vis
        a, b = starts[j], ends[j]
        tight = [int(xs[a:b].min()), int(ys[a:b].min()), int(xs[a:b].max()), int(ys[a:b].max())] if b > a else None
        out.append({
            "id": int(ob.id), "cls": ob.cls, "semantic": int(C.OBJECT_SEMANTIC[ob.cls]),
            "terrain_class": int(C.OBJECT_TERRAIN[ob.cls]), "dynamic": bool(ob.dynamic),
            "size": [round(float(v), 3) for v in ob.size], "yaw": round(float(yaw[j]), 4),
            "position_world": [round(float(v), 3) for v in centre[j]],
            "position_camera": [round(float(v), 3) for v in cam[j]],
            "velocity_world": [round(float(v), 3) for v in vel[j]],
            "velocity_camera": [round(float(v), 3) for v in vel[j] @ R],
            "distance": round(float(dist[j]), 3),
            "box2d": [round(float(v), 1) for v in (bx0, by0, bx1, by1)],
            "box2d_visible": tight, "pixels_visible": vis, "pixels_unoccluded": max(unocc, vis),
            "occlusion": round(1.0 - vis / unocc, 4) if unocc > 0 else 1.0, "truncation": round(trunc, 4),
        })
    return out


def top_down_map(world, absent: int | None) -> dict:
    """Terrain class and traversability on a grid around the drive (static obstacles drawn in, actors not)."""
    cfg = world.cfg
    s = np.arange(-10.0, cfg.drive_length + MAP_MARGIN, 1.0)
    xy, _ = world.path.at(s)
    x0, y0 = xy.min(0) - MAP_MARGIN
    x1, y1 = xy.max(0) + MAP_MARGIN
    res = MAP_RESOLUTION
    nx, ny = int(np.ceil((x1 - x0) / res)), int(np.ceil((y1 - y0) / res))
    gx, gy = np.meshgrid(x0 + (np.arange(nx) + 0.5) * res, y0 + (np.arange(ny) + 0.5) * res)
    cls = world.terrain.classify(gx.astype(np.float32).ravel(), gy.astype(np.float32).ravel(), res, absent=absent)
    cls = cls.reshape(ny, nx)

    def px(p):
        return (int(round((p[0] - x0) / res * 16)), int(round((p[1] - y0) / res * 16)))

    obstacle = np.zeros_like(cls)
    for ob in world.scene.objects[:world.scene.n_static]:
        if not (x0 - 30 < ob.xy[0] < x1 + 30 and y0 - 30 < ob.xy[1] < y1 + 30):
            continue
        code = C.OBJECT_TERRAIN[ob.cls]
        for target, value in ((cls, code), (obstacle, 1)):
            if ob.cls == "tree":
                r = ob.prims[0].half[0] + 0.3
                cv2.circle(target, px(ob.xy), int(round(r / res * 16)), value, -1, cv2.LINE_8, 4)
            elif ob.cls == "wall":
                corners = box_corners(np.array([[*ob.xy, 0.0]]), np.array([[ob.size[0] / 2, ob.size[1] / 2, 1.0]]),
                                      np.array([ob.yaw]))[0, ::2, :2]
                poly = np.array([px(corners[i]) for i in (0, 1, 3, 2)], np.int32)
                cv2.fillPoly(target, [poly], value, cv2.LINE_8, 4)
            else:
                axes = (max(1, int(round(ob.size[0] / 2 / res * 16))), max(1, int(round(ob.size[1] / 2 / res * 16))))
                cv2.ellipse(target, px(ob.xy), axes, float(np.degrees(ob.yaw)), 0, 360, value, -1, cv2.LINE_8, 4)
    trav = np.asarray(C.TRAVERSABILITY, np.float32)[cls]
    return {"terrain_class": cls, "traversability": trav, "cost": np.asarray(C.COST, np.uint8)[cls],
            "obstacle": obstacle.astype(bool),
            "resolution": res, "origin": (float(x0), float(y0)), "frame_id": "odom", "width": nx, "height": ny}
