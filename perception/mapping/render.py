"""Top-down pictures of the terrain map, and the synthetic example behind docs/mapping.md.

`render_map(tmap)` draws a robot-centred Cartesian view (x right, y up, as seen from above with odom axes),
coloured by cost (green free ... red lethal) or by most likely class, unknown cells dark grey, range rings every
`ring_m` metres, and the robot as a white triangle pointing along its heading.

    python -m perception.mapping.render --out docs/images/map_example.png           # the docs picture
    python -m perception.mapping.render --compare                                   # the docs numbers (JSON)
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from perception.frame import Pose
from perception.mapping import MapConfig, TerrainMap, costs

CLASS_COLOURS_BGR = np.array([
    (40, 120, 20),    # super-ground: dark green
    (90, 200, 110),   # ground: light green
    (0, 200, 255),    # footline: yellow-orange
    (0, 90, 240),     # obstacle: orange-red
    (40, 0, 160),     # super-obstacle: dark red
], np.uint8)
UNKNOWN_BGR = (55, 55, 55)
ROBOT_BGR = (255, 255, 255)
RING_BGR = (140, 140, 140)


def cost_colours(occupancy: np.ndarray) -> np.ndarray:
    """OccupancyGrid values (0..100, -1) -> BGR: green (0) through yellow to red (100); unknown dark grey."""
    v = np.clip(occupancy.astype(np.float32), 0, 100) / 100.0
    out = np.empty(occupancy.shape + (3,), np.uint8)
    out[..., 0] = 40
    out[..., 1] = np.clip(510 * (1 - v), 0, 200).astype(np.uint8)
    out[..., 2] = np.clip(510 * v, 0, 255).astype(np.uint8)
    out[occupancy < 0] = UNKNOWN_BGR
    return out


def class_colours(classes: np.ndarray) -> np.ndarray:
    """Class grid (0..4, -1 unknown) -> BGR."""
    out = CLASS_COLOURS_BGR[np.clip(classes, 0, 4)]
    out[classes < 0] = UNKNOWN_BGR
    return out


def render_map(tmap: TerrainMap, *, size_m: float = 200.0, resolution: float = 0.5, mode: str = "cost",
               pixels: int = 400, ring_m: float = 25.0, label: str | None = None) -> np.ndarray:
    """A pixels x pixels BGR picture of the map around the robot (module docstring)."""
    if mode not in ("cost", "class"):
        raise ValueError(f"mode {mode!r}: use 'cost' or 'class'")
    grid = tmap.cost_grid(resolution, size_m) if mode == "cost" else tmap.class_grid(resolution, size_m)
    colours = cost_colours(grid.data) if mode == "cost" else class_colours(grid.data)
    n = grid.data.shape[0]
    image = cv2.resize(np.ascontiguousarray(colours[::-1]), (pixels, pixels), interpolation=cv2.INTER_NEAREST)
    scale = pixels / (n * resolution)  # px per m
    ox, oy, _ = grid.origin_xy_yaw
    rx, ry, yaw = tmap.robot_xy_yaw

    def px(x, y):
        return int(round((x - ox) * scale)), int(round(pixels - (y - oy) * scale))

    centre = px(rx, ry)
    if ring_m > 0:
        for k in range(1, int(size_m / 2 / ring_m) + 1):
            cv2.circle(image, centre, int(round(k * ring_m * scale)), RING_BGR, 1, cv2.LINE_AA)
            cv2.putText(image, f"{int(k * ring_m)} m", (centre[0] + 3, centre[1] - int(k * ring_m * scale) + 12),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.32, RING_BGR, 1, cv2.LINE_AA)
    size = max(6.0, 0.03 * pixels)  # px
    tip = (centre[0] + size * math.cos(yaw), centre[1] - size * math.sin(yaw))
    left = (centre[0] + 0.6 * size * math.cos(yaw + 2.4), centre[1] - 0.6 * size * math.sin(yaw + 2.4))
    right = (centre[0] + 0.6 * size * math.cos(yaw - 2.4), centre[1] - 0.6 * size * math.sin(yaw - 2.4))
    cv2.fillPoly(image, [np.round(np.array([tip, left, right])).astype(np.int32)], ROBOT_BGR, cv2.LINE_AA)
    if label:
        cv2.putText(image, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return image


# ---------------------------------------------------------------------- synthetic example
def yaw_pose(x: float, y: float, yaw: float) -> Pose:
    return Pose(np.array([x, y, 0.0]), np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]))


def synthetic_observations(pose: Pose, obstacles, rng: np.random.Generator, *, n: int = 50_000,
                           fov_deg: float = 60.0, near: float = 1.5, far: float = 150.0, range_noise: float = 2e-4,
                           label_noise: float = 0.1):
    """Classified ground points as the near-to-far pipeline would give them, for one frame.

    Points are spread like image windows over flat ground: uniform in 1/r between `near` and `far` (equal image
    rows), uniform in bearing over the field of view. Each gets the class of the world under it (ground, or
    super-obstacle / footline inside an obstacle disc (x, y, radius) / at its rim), a range error of
    `range_noise * r^2` m (1 sigma; ground-plane range error grows with r^2), and soft probabilities: 0.7 on the
    true class, or with probability `label_noise` on a random class. Returns (points N x 2 odom, probs N x 5).
    """
    rx, ry, yaw = pose.position[0], pose.position[1], 2 * math.atan2(pose.orientation[2], pose.orientation[3])
    inv = rng.uniform(1 / far, 1 / near, n)
    r = 1 / inv
    bearing = yaw + np.radians(rng.uniform(-fov_deg / 2, fov_deg / 2, n))
    x = rx + r * np.cos(bearing)
    y = ry + r * np.sin(bearing)
    cls = np.ones(n, np.int64)
    for ox, oy, rad in obstacles:
        d = np.hypot(x - ox, y - oy)
        cls[d <= rad] = 4
        cls[(d > rad) & (d <= rad + 0.3)] = 2
    wrong = rng.random(n) < label_noise
    cls[wrong] = rng.integers(0, 5, int(wrong.sum()))
    probs = np.full((n, 5), 0.075, np.float32)
    probs[np.arange(n), cls] = 0.7
    rn = 1 + rng.normal(0, 1, n) * range_noise * r  # multiplicative: sigma = range_noise * r^2
    x = rx + (x - rx) * rn
    y = ry + (y - ry) * rn
    return np.column_stack([x, y]), probs


EXAMPLE_OBSTACLES = ((12.0, 3.0, 1.0), (30.0, -6.0, 2.0), (60.0, 8.0, 3.0), (100.0, 0.0, 3.0), (45.0, 30.0, 2.0))


def example_map(grid: str = "cartesian", frames: int = 30, seed: int = 0) -> TerrainMap:
    """The docs example: a 30 m drive along +x at 1 m/frame, then a 45 degree turn left, past EXAMPLE_OBSTACLES."""
    rng = np.random.default_rng(seed)
    tmap = TerrainMap(MapConfig(grid=grid))
    for i in range(frames):
        yaw = 0.0 if i < frames - 5 else math.radians(45) * (i - frames + 6) / 5
        pose = yaw_pose(float(min(i, frames - 5)), 0.0, yaw)
        pts, probs = synthetic_observations(pose, EXAMPLE_OBSTACLES, rng, n=20_000)
        tmap.add_observations(pts, probs, pose, confidence=0.9, stamp_ns=i * 500_000_000)
    return tmap


def _median_ms(fn, repeats: int) -> float:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def _blob(grid, x0, y0, radius, threshold):
    """Centroid error (m) and extent (m, along x and y) of the cells of `grid` above `threshold` within `radius`
    of (x0, y0)."""
    n = grid.data.shape[0]
    res = grid.resolution
    ox, oy, _ = grid.origin_xy_yaw
    xs = ox + (np.arange(n) + 0.5) * res
    ys = oy + (np.arange(n) + 0.5) * res
    near = np.hypot(xs[None, :] - x0, ys[:, None] - y0) <= radius
    hit = near & (grid.data > threshold)
    if not hit.any():
        return float("nan"), (0.0, 0.0)
    r, c = np.nonzero(hit)
    cx, cy = xs[c].mean(), ys[r].mean()
    return float(math.hypot(cx - x0, cy - y0)), (float(np.ptp(xs[c]) + res), float(np.ptp(ys[r]) + res))


def compare(repeats: int = 10) -> dict:
    """The numbers in docs/mapping.md: memory, timings and accuracy of both stores on synthetic data."""
    out = {}
    for grid in ("polar", "cartesian"):
        rng = np.random.default_rng(1)
        res = {}
        tmap = TerrainMap(MapConfig(grid=grid))
        pose0 = yaw_pose(0.0, 0.0, 0.0)
        pts, probs = synthetic_observations(pose0, EXAMPLE_OBSTACLES, rng, n=50_000)
        res["memory_MB"] = tmap.memory_bytes / 1e6
        res["add_50k_ms"] = _median_ms(lambda i: tmap.add_observations(pts, probs, pose0), repeats)
        moving = [yaw_pose(0.7 * i, 0.0, 0.05 * i) for i in range(repeats)]
        res["add_50k_moving_ms"] = _median_ms(lambda i: tmap.add_observations(pts, probs, moving[i]), repeats)
        for r_, s_ in ((0.2, 100.0), (0.5, 200.0)):
            def conv(i, r_=r_, s_=s_):
                tmap._native = None  # measure the full conversion, not the cached per-cell costs
                tmap.cost_grid(r_, s_)
            res[f"cost_grid_{r_}m_{int(s_)}m_ms"] = _median_ms(conv, repeats)
        # accuracy at 100 m: points on a 2 m disc about 100 m ahead and the ground around it, seen from (0, 0) in
        # 3 frames; then 50 m of driving along x (no new observations) and a 90 degree turn. The blob = output
        # cells (0.25 m) with net obstacle evidence (LAGR S > 0: cost above the unexplored cost) within 15 m of
        # the disc. Mean over 6 placements at random sub-cell offsets (cell boundaries cut obstacles
        # differently). "exact": noise-free points and labels (the grid's own error); "noisy": range error 2 m
        # (1 sigma) at 100 m, 10 % wrong labels.
        net_obstacle = int(costs.NAV2_TO_OCCUPANCY[MapConfig().unexplored_cost])
        for name, range_noise, label_noise in (("exact", 0.0, 0.0), ("noisy", 2e-4, 0.1)):
            rows = {"seen_from_100m": [], "after_50m_drive_and_turn": []}
            for _ in range(6):
                ox, oy = 100.0 + rng.uniform(-3, 3), rng.uniform(-4, 4)
                tmap = TerrainMap(MapConfig(grid=grid))
                for _ in range(3):
                    p, q = synthetic_observations(pose0, ((ox, oy, 2.0),), rng, n=200_000, range_noise=range_noise,
                                                  label_noise=label_noise, near=80, far=120, fov_deg=10)
                    tmap.add_observations(p, q, pose0)
                rows["seen_from_100m"].append(_blob(tmap.cost_grid(0.25, 240.0), ox, oy, 15.0, net_obstacle))
                for i in range(1, 51):
                    tmap.set_pose(yaw_pose(float(i), 0.0, 0.0))
                tmap.set_pose(yaw_pose(50.0, 0.0, math.pi / 2))
                rows["after_50m_drive_and_turn"].append(
                    _blob(tmap.cost_grid(0.25, 240.0), ox, oy, 15.0, net_obstacle))
            for when, blobs in rows.items():
                found = [(e, x) for e, x in blobs if math.isfinite(e)]
                res[f"{name}_{when}"] = {
                    "found": f"{len(found)}/{len(blobs)}",
                    "centroid_error_m": round(float(np.mean([e for e, _ in found])), 2) if found else None,
                    "extent_xy_m": np.mean([x for _, x in found], axis=0).round(2).tolist() if found else None,
                }
        out[grid] = res
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Terrain map pictures and the docs comparison")
    parser.add_argument("--out", type=Path, help="write the example map picture here (PNG)")
    parser.add_argument("--grid", choices=("polar", "cartesian"), default="cartesian")
    parser.add_argument("--compare", action="store_true", help="print the docs comparison numbers as JSON")
    args = parser.parse_args(argv)
    if args.out:
        tmap = example_map(args.grid)
        cost = render_map(tmap, mode="cost", pixels=360, label=f"cost ({args.grid})")
        cls = render_map(tmap, mode="class", pixels=360, label="class")
        picture = np.hstack([cost, np.full((360, 4, 3), 255, np.uint8), cls])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.out), picture, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"wrote {args.out}", file=sys.stderr)
    if args.compare:
        print(json.dumps(compare()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
