"""`TerrainMap`: the robot-centred long-range terrain map (REFERENCE.md section 1; docs/mapping.md).

`TerrainMap` accumulates, per cell, a histogram over the 5 terrain classes (super-ground, ground, footline,
obstacle, super-obstacle) from classified ground points, and turns it into a cost grid for the planner with the
LAGR cost formula (`perception.mapping.costs`).

    tmap = TerrainMap(MapConfig())
    tmap.add_observations(points_xy, class_probs, robot_pose, weights=stereo_or_window_weights,
                          confidence=classifier.confidence, stamp_ns=header.stamp_ns)
    grid = tmap.cost_grid(resolution=0.5, size_m=200.0)   # MapGrid(data int8 HxW 0..100/-1, resolution, origin)
    bag.write_occupancy_grid(topic, header, *grid)        # nav_msgs/OccupancyGrid, frame = the pose's frame (odom)

Evidence: each point adds ``weight * confidence * range_weight(d) * p_k`` to bin k of its cell, where ``p`` are
its class probabilities, ``confidence`` the classifier's learning confidence and
``range_weight(d) = 1 / (1 + (d / range_scale_m)^2)`` with d the point's distance from the robot when it was seen
(ground-plane range error grows with d^2, so this is an inverse-variance weight). Time-based forgetting:
every bin is multiplied by ``0.5 ** (elapsed / half_life_s)`` (`decay()`, or automatically from `stamp_ns`);
cells whose evidence falls to `min_evidence` become unknown again.

The store behind it is a multi-resolution Cartesian grid (`cartesian.MultiResGrid`, the default: rolling
windows of 0.2 / 1 / 4 m cells, nothing re-projected when the robot moves) or the LAGR hyperbolic-polar grid
(`polar_grid.PolarGrid`: re-centred by re-projecting each cell at its evidence centroid); docs/mapping.md
compares them with measured numbers and gives the reasons for the default. Both keep their axes aligned with
odom, so turning costs nothing; how each follows the robot's translation is documented in its module.

Output grids (`cost_grid`, `class_grid`, `histogram_grid`) are Cartesian, aligned with the pose's frame (odom),
centred on the robot: ``n = round(size_m / resolution)`` cells a side, cell edges on multiples of `resolution`
(so a grid does not shimmer as the robot moves; the robot is within half a cell of the centre cell), row = y
index, column = x index, `origin_xy_yaw` = the odom position of cell (0, 0)'s outer corner and yaw 0: exactly
what nav_msgs/OccupancyGrid and Nav2's rolling-window costmaps use. Each output cell takes the store cell under
its centre (for the multi-resolution store: from the finest level whose window holds it).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from perception.errors import InputError
from perception.frame import Pose
from perception.mapping import costs
from perception.mapping.cartesian import MultiResGrid
from perception.mapping.polar_grid import PolarGrid
from perception.params import describe_config, param, validate_config

NUM_CLASSES = 5
CLOCK_BACK_NS = 1_000_000_000  # a stamp this much before the newest one: the clock jumped back

log = logging.getLogger("perception.mapping")
GRIDS = ("polar", "cartesian")


@dataclass(frozen=True)
class MapConfig:
    """Parameters of `TerrainMap`; each has a description and a valid range, checked on creation."""

    grid: str = param(
        "cartesian", "histogram store: cartesian (multi-resolution, the default) or polar (LAGR hyperbolic-polar)",
        choices=GRIDS)
    max_range_m: float = param(200.0, "observations farther than this from the robot are not stored, m", 1.0, 1000.0)
    polar_inner_radius_m: float = param(15.0, "polar: radius of the uniform inner part, m", 1.0, 100.0)
    polar_inner_cell_m: float = param(0.2, "polar: radial cell size of the inner part, m", 0.02, 5.0)
    polar_outer_radius_m: float = param(350.0, "polar: outer edge of the last hyperbolic cell, m", 10.0, 10000.0)
    polar_outer_cells: int = param(75, "polar: number of hyperbolic cells (equal steps in 1/r)", 1, 1000)
    polar_angular_cells: int = param(400, "polar: angular cells (400 = 0.9 degree)", 8, 4096)
    polar_recentre_m: float = param(
        2.0, "polar: re-centre the grid on the robot when it is farther than this from the grid centre, m "
        "(each re-centre merges some far cells)", 0.0, 50.0)
    cartesian_cells_m: tuple = param((0.2, 1.0, 4.0), "cartesian: cell size of each level, fine to coarse, m")
    cartesian_sizes_m: tuple = param((32.0, 110.0, 416.0), "cartesian: side of each level's window, m")
    range_scale_m: float = param(
        20.0, "evidence weight falls as 1 / (1 + (d / range_scale_m)^2) with the distance d from the robot; 0 = off",
        0.0, 1000.0)
    half_life_s: float = param(120.0, "time for evidence to halve (decay / stamps); 0 = never forget", 0.0, 1e6)
    min_evidence: float = param(1e-3, "a cell with at most this much evidence is unknown (-1)", 0.0, 1e3)
    class_weights: tuple = param(
        (-2.0, -1.0, 1.5, 1.0, 2.0), "LAGR w_k for super-ground, ground, footline, obstacle, super-obstacle",
        length=NUM_CLASSES)
    cost_gain: float = param(1.0, "LAGR g: S = g * sum(w_k bin_k) / (sum(bin_k) + c)", 1e-3, 1e3)
    cost_offset: float = param(1.0, "LAGR c: evidence needed to move S far from 0 (the unexplored cost)", 0.0, 1e6)
    unexplored_cost: int = param(100, "Nav2 cost of a seen cell with S = 0 (no net evidence either way)", 0, 252)
    min_cost: int = param(0, "Nav2 cost at S <= -1 (certain ground)", 0, 252)

    def __post_init__(self) -> None:
        validate_config(self)
        if self.polar_outer_radius_m <= self.polar_inner_radius_m:
            raise InputError("must be larger than polar_inner_radius_m", subject="MapConfig.polar_outer_radius_m")
        cells, sizes = self.cartesian_cells_m, self.cartesian_sizes_m
        if not cells or len(cells) != len(sizes):
            raise InputError(f"{len(cells)} cell sizes for {len(sizes)} windows",
                             subject="MapConfig.cartesian_cells_m", hint="one cell size per level")
        if any(c <= 0 for c in cells) or any(s < c for c, s in zip(cells, sizes)) or list(cells) != sorted(cells):
            raise InputError(f"levels {list(zip(cells, sizes))} must go fine to coarse, each window >= its cell",
                             subject="MapConfig.cartesian_cells_m")
        if any(s / c > 4096 for c, s in zip(cells, sizes)):
            raise InputError("a level has more than 4096 cells a side", subject="MapConfig.cartesian_sizes_m")
        self.cost_params()  # validates the LAGR parameters

    def cost_params(self) -> costs.CostParams:
        return costs.CostParams(class_weights=self.class_weights, gain=self.cost_gain, offset=self.cost_offset,
                                min_cost=self.min_cost, unexplored_cost=self.unexplored_cost,
                                min_evidence=self.min_evidence)

    @classmethod
    def describe(cls) -> dict[str, dict]:
        """{name: {default, help, range, choices}} for every parameter (for ROS parameter declarations, docs)."""
        return describe_config(cls)


class MapGrid(NamedTuple):
    """A Cartesian grid for nav_msgs/OccupancyGrid: HxW data (row = y, column = x), cell size (m) and the pose
    (x, y, yaw) of cell (0, 0)'s corner in the map's frame. Same fields as `perception.io.messages.GridData`."""

    data: np.ndarray
    resolution: float
    origin_xy_yaw: tuple[float, float, float]


@dataclass
class ObservationStats:
    n_input: int = 0
    n_added: int = 0  # stored in the grid
    n_dropped_nonfinite: int = 0  # NaN/inf point, probabilities or weight, or probabilities not >= 0 / sum 0
    n_out_of_range: int = 0  # farther than max_range_m, or outside the store
    mass_added: float = 0.0  # total evidence added
    recentred: bool = False
    ms: float = 0.0


def pose_xy_yaw(pose: Pose) -> tuple[float, float, float]:
    """(x, y, yaw) of a Pose in its parent frame."""
    m = pose.matrix()
    return float(m[0, 3]), float(m[1, 3]), math.atan2(m[1, 0], m[0, 0])


class TerrainMap:
    """Robot-centred class-histogram map with LAGR costs (module docstring)."""

    def __init__(self, config: MapConfig | None = None):
        self.config = config or MapConfig()
        c = self.config
        self.cost_params = c.cost_params()
        if c.grid == "polar":
            self.store = PolarGrid(c.polar_inner_radius_m, c.polar_inner_cell_m, c.polar_outer_radius_m,
                                   c.polar_outer_cells, c.polar_angular_cells, c.max_range_m, c.polar_recentre_m)
        else:
            self.store = MultiResGrid(c.cartesian_cells_m, c.cartesian_sizes_m, c.max_range_m)
        self.robot_xy_yaw = (0.0, 0.0, 0.0)
        self.frame_id: str | None = None
        self.stamp_ns: int | None = None
        self.clock_resets = 0  # times the stamps jumped back (see _advance_clock)
        self._native: list | None = None  # cached per-level (costs, classes, bins); None when stale

    # ------------------------------------------------------------------ state
    def set_pose(self, robot_pose: Pose) -> bool:
        """Tell the map where the robot is (odom -> base_link); returns whether the store re-centred."""
        if not isinstance(robot_pose, Pose):
            raise InputError(f"expected a perception.frame.Pose, got {type(robot_pose).__name__}",
                             subject="robot_pose")
        if self.frame_id is not None and robot_pose.frame != self.frame_id:
            raise InputError(f"pose in frame {robot_pose.frame!r}, the map is in {self.frame_id!r}",
                             subject="robot_pose", hint="give every pose in the same fixed frame (odom)")
        x, y, yaw = pose_xy_yaw(robot_pose)
        if not all(math.isfinite(v) for v in (x, y, yaw)):
            raise InputError("pose has NaN/inf", subject="robot_pose")
        self.frame_id = robot_pose.frame
        self.robot_xy_yaw = (x, y, yaw)
        moved = self.store.move_to(x, y)
        if moved:
            self._native = None
        return moved

    def decay(self, seconds: float) -> float:
        """Time-based forgetting: multiply all evidence by 0.5 ** (seconds / half_life_s); returns the factor.

        Cells left with at most `min_evidence` become unknown. With half_life_s = 0 nothing is forgotten."""
        if not (math.isfinite(seconds) and seconds >= 0):
            raise InputError(f"seconds must be >= 0, got {seconds}", subject="TerrainMap.decay")
        if self.config.half_life_s == 0 or seconds == 0:
            return 1.0
        factor = 0.5 ** (seconds / self.config.half_life_s)
        self.store.scale(factor, self.config.min_evidence)
        self._native = None
        return factor

    def _advance_clock(self, stamp_ns: int) -> None:
        """Decay by the time since the newest stamp seen. A stamp more than `CLOCK_BACK_NS` older than it is a
        clock that went back (bag replayed again, sim-time reset): the time base restarts there (counted in
        `clock_resets`, logged) instead of freezing the forgetting until the new clock passes the old one.
        A smaller step back (frames slightly out of order) neither decays nor moves the time base."""
        if self.stamp_ns is None:
            self.stamp_ns = stamp_ns
        elif stamp_ns > self.stamp_ns:
            self.decay((stamp_ns - self.stamp_ns) * 1e-9)
            self.stamp_ns = stamp_ns
        elif stamp_ns < self.stamp_ns - CLOCK_BACK_NS:
            self.clock_resets += 1
            log.warning("terrain map: stamp %.3f s is %.3f s before the newest (%.3f s): the clock jumped back; "
                        "the map's time base restarts (its evidence is kept)", stamp_ns * 1e-9,
                        (self.stamp_ns - stamp_ns) * 1e-9, self.stamp_ns * 1e-9)
            self.stamp_ns = stamp_ns

    def clear(self) -> None:
        self.store.clear()
        self._native = None

    @property
    def memory_bytes(self) -> int:
        return self.store.memory_bytes

    # ------------------------------------------------------------------ input
    def add_observations(self, points_xy, class_probs, robot_pose: Pose, weights=None, confidence: float = 1.0,
                         *, frame: str = "odom", stamp_ns: int | None = None) -> ObservationStats:
        """Add classified ground points.

        points_xy: N x 2 (or N x 3, z used only for the base_link transform) in `frame`: "odom" (the pose's
        parent frame) or "base_link" (relative to the robot, transformed with `robot_pose`).
        class_probs: N x 5 class probabilities (rows normalised here), or N integer class labels.
        weights: N per-point weights (e.g. stereo or window confidence), default 1. confidence: the classifier's
        learning confidence (0..1), multiplies every weight. stamp_ns: when given, evidence first decays by the
        time since the previous stamp.
        """
        start = time.perf_counter()
        st = ObservationStats()
        moved = self.set_pose(robot_pose)
        if stamp_ns is not None:
            self._advance_clock(int(stamp_ns))
        if not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
            raise InputError(f"confidence must be in 0..1, got {confidence}", subject="confidence")
        pts = np.asarray(points_xy, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] not in (2, 3):
            raise InputError(f"shape {pts.shape}, expected N x 2 (or N x 3)", subject="points_xy")
        n = len(pts)
        st.n_input = n
        probs = np.asarray(class_probs)
        if probs.ndim == 1 and np.issubdtype(probs.dtype, np.integer):
            if probs.shape != (n,):
                raise InputError(f"{probs.size} labels for {n} points", subject="class_probs")
            bad_label = (probs < 0) | (probs >= NUM_CLASSES)
            probs = np.eye(NUM_CLASSES, dtype=np.float32)[np.clip(probs, 0, NUM_CLASSES - 1)]
            probs[bad_label] = np.nan
        elif probs.shape != (n, NUM_CLASSES):
            raise InputError(f"shape {probs.shape}, expected {n} x {NUM_CLASSES} (or {n} class labels)",
                             subject="class_probs")
        probs = probs.astype(np.float32, copy=False)
        w = np.ones(n, np.float64) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != (n,):
            raise InputError(f"{w.size} weights for {n} points", subject="weights")
        if frame == "base_link":
            m = robot_pose.matrix()
            xyz = pts if pts.shape[1] == 3 else np.column_stack([pts, np.zeros(n)])
            pts = xyz @ m[:2, :3].T + m[:2, 3]
        elif frame != "odom":
            raise InputError(f"frame {frame!r}", subject="add_observations", hint="use 'odom' or 'base_link'")
        else:
            pts = pts[:, :2]
        # row sums by a matrix-vector product: a NaN/inf anywhere in a row makes its sum non-finite
        # (numpy's axis=1 reductions over 5-wide rows are ~8x slower)
        psum = probs @ np.ones(NUM_CLASSES, np.float32)
        ok = np.isfinite(psum) & (psum > 0) & np.isfinite(pts @ np.ones(2)) & np.isfinite(w) & (w >= 0)
        if (probs < 0).any():
            ok &= ((probs < 0) @ np.ones(NUM_CLASSES)) == 0
        st.n_dropped_nonfinite = int(n - np.count_nonzero(ok))
        rx, ry, _ = self.robot_xy_yaw
        d = np.hypot(pts[:, 0] - rx, pts[:, 1] - ry)
        in_range = ok & (d <= self.config.max_range_m)
        st.n_out_of_range = int((ok & ~in_range).sum())
        if not in_range.all():
            pts, probs, w, d, psum = pts[in_range], probs[in_range], w[in_range], d[in_range], psum[in_range]
        if len(pts) and confidence > 0:
            scale = w * confidence
            if self.config.range_scale_m > 0:
                scale = scale / (1.0 + (d / self.config.range_scale_m) ** 2)
            contrib = probs * (scale / psum).astype(np.float32)[:, None]
            st.n_added = self.store.add(pts[:, 0], pts[:, 1], contrib, scale)
            st.n_out_of_range += len(pts) - st.n_added
            st.mass_added = float(scale.sum())
            self._native = None
        st.recentred = moved
        st.ms = (time.perf_counter() - start) * 1e3
        return st

    # ------------------------------------------------------------------ output
    def _natives(self, levels):
        """Per level: (Nav2 cost per cell + sentinel 255, class per cell + sentinel -1)."""
        if self._native is None:
            out = []
            for _, bins in levels:  # class-major 5 x cells
                cost = costs.lagr_cost(bins.T, self.cost_params)
                cls = np.where(cost == costs.NO_INFORMATION, -1, np.argmax(bins, axis=0)).astype(np.int8)
                out.append((np.append(cost, np.uint8(costs.NO_INFORMATION)), np.append(cls, np.int8(-1))))
            self._native = out
        return self._native

    def _axes(self, resolution: float, size_m: float, center_xy=None):
        if not (math.isfinite(resolution) and resolution > 0 and math.isfinite(size_m) and size_m >= resolution):
            raise InputError(f"resolution {resolution} m, size {size_m} m", subject="TerrainMap grid",
                             hint="need 0 < resolution <= size_m")
        n = int(round(size_m / resolution))
        if n > 8192:
            raise InputError(f"{n} x {n} cells is too large", subject="TerrainMap grid",
                             hint="use a coarser resolution or a smaller size")
        cx, cy = center_xy if center_xy is not None else self.robot_xy_yaw[:2]
        i0 = math.floor(cx / resolution) - n // 2
        j0 = math.floor(cy / resolution) - n // 2
        xs = (i0 + np.arange(n) + 0.5) * resolution
        ys = (j0 + np.arange(n) + 0.5) * resolution
        return xs[None, :], ys[:, None], (i0 * resolution, j0 * resolution, 0.0)

    def _gather(self, resolution, size_m, center_xy, which: int):
        """Output grid of native costs (which=0) or classes (which=1): each cell from the finest level whose
        window holds its centre (the sentinel, unknown, where none does)."""
        x, y, origin = self._axes(resolution, size_m, center_xy)
        levels = self.store.lookup(x, y)
        natives = self._natives(levels)
        out = None
        for (idx, _), native in zip(levels, natives):
            if out is None:
                out = native[which][idx]  # idx -1 -> the sentinel
                todo = idx < 0
            else:
                out[todo] = native[which][idx[todo]]
                todo &= idx < 0
            if not todo.any():
                break
        return out, origin

    def nav2_cost_grid(self, resolution: float = 0.5, size_m: float = 200.0, center_xy=None) -> MapGrid:
        """Nav2 costs (uint8 0..254, 255 unknown) on a robot-centred Cartesian grid."""
        data, origin = self._gather(resolution, size_m, center_xy, 0)
        return MapGrid(data, float(resolution), origin)

    def cost_grid(self, resolution: float = 0.5, size_m: float = 200.0, center_xy=None) -> MapGrid:
        """OccupancyGrid data (int8 0..100, -1 unknown) on a robot-centred Cartesian grid (module docstring)."""
        grid = self.nav2_cost_grid(resolution, size_m, center_xy)
        return MapGrid(costs.NAV2_TO_OCCUPANCY[grid.data], grid.resolution, grid.origin_xy_yaw)

    def class_grid(self, resolution: float = 0.5, size_m: float = 200.0, center_xy=None) -> MapGrid:
        """Most likely class per cell (int8 0..4, -1 unknown), for visualisation."""
        data, origin = self._gather(resolution, size_m, center_xy, 1)
        return MapGrid(data, float(resolution), origin)

    def histogram_grid(self, resolution: float = 0.5, size_m: float = 200.0, center_xy=None):
        """(H x W x 5 float32 class histograms, origin_xy_yaw): the evidence behind `cost_grid`."""
        x, y, origin = self._axes(resolution, size_m, center_xy)
        out = None
        for idx, bins in self.store.lookup(x, y):
            padded = np.hstack([bins, np.zeros((NUM_CLASSES, 1), np.float32)])
            if out is None:
                out = padded[:, idx]  # 5 x H x W, idx -1 -> zeros
                todo = idx < 0
            else:
                out[:, todo] = padded[:, idx[todo]]
                todo &= idx < 0
        return np.moveaxis(out, 0, -1), origin


__all__ = ["GRIDS", "MapConfig", "MapGrid", "ObservationStats", "TerrainMap", "pose_xy_yaw"]
