"""The ground: a smooth heightfield to the horizon and the per-point terrain class.

Height h(x, y) (odom frame, z up, h(0, 0) = 0) = bilinear interpolation of a 2 m grid (gentle undulation near the
road, hills rising to ~40 m towards the edge of a ~3.5 km square world) + a tileable 12.5 cm detail grid (bumps of a
few cm). `max_levels` holds max-pooled copies of the grid that the ray marcher uses to skip empty space safely.

Terrain class at (x, y) comes from thresholding smooth fields (distance to the road, tileable noise), so class
boundaries are crisp and curved at every range.
"""
from __future__ import annotations

import cv2
import numpy as np

from perception.sim import config as C
from perception.sim.noise import bilinear_exact, fractal, sample, smoothstep
from perception.sim.path import RoadPath

SPACING = 2.0  # m, coarse height grid
MARGIN = 1700.0  # m of world beyond the road's bounding box
DETAIL_RES = 0.125  # m, detail height tile
DETAIL_N = 256
FIELD_RES = 1.0  # m, class noise tiles
FIELD_N = 512
CORRIDOR_RES = 0.25  # m, fine road-distance grid around the road
CORRIDOR_MARGIN = 40.0


class Terrain:
    def __init__(self, rng: np.random.Generator, path: RoadPath, cfg: C.SimConfig):
        self.path = path
        self.cfg = cfg
        self.half_width = cfg.path_width / 2
        x0, y0, x1, y1 = path.bounds()
        half = max(x1 - x0, y1 - y0) / 2 + MARGIN
        n = int(np.ceil(2 * half / SPACING / 64)) * 64
        self.n = n
        self.x0 = (x0 + x1) / 2 - n * SPACING / 2
        self.y0 = (y0 + y1) / 2 - n * SPACING / 2
        self.extent = (self.x0, self.y0, self.x0 + n * SPACING, self.y0 + n * SPACING)
        self._road_distance_grids()
        self._heights(rng)
        self._detail(rng)
        self._fields(rng)
        self._max_pyramid()

    # --- construction ------------------------------------------------------------------------------------------------
    def _road_distance_grids(self) -> None:
        n = self.n
        pts = (self.path.xy - [self.x0, self.y0]) / SPACING
        img = np.full((n + 1, n + 1), 255, np.uint8)
        cv2.polylines(img, [np.round(pts * 16).astype(np.int32)], False, 0, 1, cv2.LINE_8, shift=4)
        self.road_coarse = cv2.distanceTransform(img, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float32) * SPACING
        x0, y0, x1, y1 = self.path.bounds()
        self.cx0, self.cy0 = x0 - CORRIDOR_MARGIN, y0 - CORRIDOR_MARGIN
        w = int(np.ceil((x1 - x0 + 2 * CORRIDOR_MARGIN) / CORRIDOR_RES)) + 1
        h = int(np.ceil((y1 - y0 + 2 * CORRIDOR_MARGIN) / CORRIDOR_RES)) + 1
        img = np.full((h, w), 255, np.uint8)
        pts = (self.path.xy - [self.cx0, self.cy0]) / CORRIDOR_RES
        cv2.polylines(img, [np.round(pts * 16).astype(np.int32)], False, 0, 1, cv2.LINE_8, shift=4)
        self.road_fine = cv2.distanceTransform(img, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float32) * CORRIDOR_RES
        self.corridor_shape = (h, w)

    def _heights(self, rng: np.random.Generator) -> None:
        n1 = self.n + 1
        d = self.road_coarse
        rolling = fractal(rng, (n1, n1), max(2, int(n1 * SPACING / 90)), octaves=4, gain=0.45, periodic=False) * 1.1
        small = (n1 + 7) // 8  # the hills are smooth: make them on a coarse grid
        hills = fractal(rng, (small, small), max(2, int(n1 * SPACING / 600)), octaves=3, gain=0.5, periodic=False)
        hills = cv2.resize(hills, (small * 8, small * 8), interpolation=cv2.INTER_CUBIC)[:n1, :n1]
        rise = smoothstep(np.float32(150.0), np.float32(1300.0), d)
        h = rolling * (0.6 + 0.8 * smoothstep(np.float32(0.0), np.float32(60.0), d)) \
            + rise * 45.0 * np.clip(0.55 + 0.45 * hills, 0.0, None)
        # the road is built: flatten its cross-section
        smooth = cv2.GaussianBlur(h, (0, 0), 5.0)
        k = smoothstep(self.half_width + 1.0, self.half_width + 8.0, d)
        h = smooth + (h - smooth) * k
        h = h.astype(np.float32)
        self.grid = h - bilinear_exact(h, np.float32(-self.x0 / SPACING), np.float32(-self.y0 / SPACING))
        gy, gx = np.gradient(self.grid, SPACING)
        self.grad = np.dstack([gx, gy]).astype(np.float32)

    def _detail(self, rng: np.random.Generator) -> None:
        d = fractal(rng, (DETAIL_N, DETAIL_N), 8, octaves=5, gain=0.55) * 0.035
        self.detail = d.astype(np.float32)
        gy, gx = np.gradient(self.detail, DETAIL_RES)
        self.detail_grad = np.dstack([gx, gy]).astype(np.float32)
        self.detail_max = float(np.abs(self.detail).max()) + 1e-3

    def _fields(self, rng: np.random.Generator) -> None:
        shape = (FIELD_N, FIELD_N)
        # channels: tall grass, gravel, mud, rocks, forest density, macro brightness
        f = [fractal(rng, shape, c, octaves=4, gain=0.5) for c in (14, 24, 20, 22, 10, 40)]
        self.fields = np.dstack(f).astype(np.float32)
        self.jitter = fractal(rng, (256, 256), 16, octaves=4, gain=0.6).astype(np.float32)  # 32 m tile, 12.5 cm

    def _max_pyramid(self) -> None:
        g = self.grid
        m = cv2.dilate(g, np.ones((3, 3), np.uint8), anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)[:-1:2, :-1:2]
        levels, cells = [], []
        cell = 2 * SPACING
        while True:
            levels.append(cv2.dilate(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE) + self.detail_max + 0.01)
            cells.append(cell)
            if min(m.shape) <= 8 or cell >= 256:
                break
            hh, ww = (m.shape[0] // 2) * 2, (m.shape[1] // 2) * 2
            m = m[:hh, :ww].reshape(hh // 2, 2, ww // 2, 2).max(axis=(1, 3))
            cell *= 2
        # Lipschitz bound of the ground (max |gradient|) within reach of each level-0 cell
        gmag = np.hypot(self.grad[..., 0], self.grad[..., 1])
        gm = cv2.dilate(gmag, np.ones((3, 3), np.uint8), anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)[:-1:2, :-1:2]
        gm = cv2.dilate(gm, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
        gy, gx = np.gradient(self.detail, DETAIL_RES)
        self.slope_grid = (gm * 1.3 + float(np.hypot(gx, gy).max()) * 1.3 + 0.02).astype(np.float32)
        self.max_levels = levels
        self.max_cells = np.array(cells, np.float32)
        self.max_flat = np.concatenate([lv.ravel() for lv in levels]).astype(np.float32)
        self.max_offsets = np.cumsum([0] + [lv.size for lv in levels[:-1]]).astype(np.int64)
        self.max_widths = np.array([lv.shape[1] for lv in levels], np.int64)
        self.max_heights = np.array([lv.shape[0] for lv in levels], np.int64)
        self.h_max = float(g.max()) + self.detail_max
        self.h_min = float(g.min()) - self.detail_max

    # --- queries -----------------------------------------------------------------------------------------------------
    def height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        gx = (x - np.float32(self.x0)) * np.float32(1 / SPACING)
        gy = (y - np.float32(self.y0)) * np.float32(1 / SPACING)
        h = sample(self.grid, gx, gy, wrap=False)
        h += sample(self.detail, x * np.float32(1 / DETAIL_RES), y * np.float32(1 / DETAIL_RES), wrap=True)
        return h

    def max_bound(self, level: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Upper bound of the ground height within `max_cells[level]` metres of (x, y)."""
        cell = self.max_cells[level]
        w = self.max_widths[level]
        ix = np.minimum(((x - self.x0) / cell).astype(np.int64), w - 1)  # rays never leave the world here
        iy = np.minimum(((y - self.y0) / cell).astype(np.int64), self.max_heights[level] - 1)
        return self.max_flat.take(self.max_offsets[level] + iy * w + ix)

    def slope_bound(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Upper bound of the ground slope within one level-0 cell of (x, y)."""
        h, w = self.slope_grid.shape
        ix = np.minimum(((x - self.x0) * (0.5 / SPACING)).astype(np.int64), w - 1)
        iy = np.minimum(((y - self.y0) * (0.5 / SPACING)).astype(np.int64), h - 1)
        return self.slope_grid.ravel().take(iy * w + ix)

    def inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.extent
        return (x > x0) & (x < x1) & (y > y0) & (y < y1)

    def normal(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Unit surface normals (N, 3) at ground points."""
        g = sample(self.grad, (x - self.x0) / SPACING, (y - self.y0) / SPACING, wrap=False)
        g += sample(self.detail_grad, x / DETAIL_RES, y / DETAIL_RES, wrap=True)
        inv = 1.0 / np.sqrt(g[..., 0] ** 2 + g[..., 1] ** 2 + 1.0)
        return np.stack([-g[..., 0] * inv, -g[..., 1] * inv, inv], axis=-1)

    def road_distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance (m) to the road centre line: 25 cm grid near the road, 2 m grid elsewhere."""
        fx = (x - self.cx0) / CORRIDOR_RES
        fy = (y - self.cy0) / CORRIDOR_RES
        h, w = self.corridor_shape
        inside = (fx > 1) & (fy > 1) & (fx < w - 2) & (fy < h - 2)
        out = sample(self.road_coarse, (x - self.x0) / SPACING, (y - self.y0) / SPACING, wrap=False)
        if inside.any():
            out[inside] = sample(self.road_fine, fx[inside], fy[inside], wrap=False)
        return out

    def field_values(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return sample(self.fields, x / FIELD_RES, y / FIELD_RES, wrap=True)

    def classify(self, x: np.ndarray, y: np.ndarray, footprint: np.ndarray | float = 0.0,
                 absent: int | None = None) -> np.ndarray:
        """Terrain class (uint8) of ground points. `footprint` (m) fades the small-scale boundary jitter so far
        boundaries do not alias; `absent` is a class that does not exist (yet) and is replaced by its neighbours'."""
        allowed = set(self.cfg.terrain_classes) - ({absent} if absent is not None else set())
        f = self.field_values(x, y)
        jit = sample(self.jitter, x / DETAIL_RES, y / DETAIL_RES, wrap=True)
        jit *= np.clip(1.0 - np.asarray(footprint, np.float32) / 0.6, 0.0, 1.0)
        d = self.road_distance(x, y) + 0.12 * jit
        cls = np.full(x.shape, C.GRASS, np.uint8)
        shoulder = d > self.half_width + 0.6
        near_road = np.exp(-np.maximum(d - self.half_width, 0.0) / 6.0)
        rules = (  # later rules win
            (C.TALL_GRASS, (f[..., 0] + 0.25 * jit > 0.55) & shoulder),
            (C.GRAVEL, f[..., 1] + 0.5 * near_road + 0.25 * jit > 1.45),
            (C.MUD, f[..., 2] + 0.2 * jit > 1.05),
            (C.ROCKS, (f[..., 3] + 0.3 * jit > 1.35) & shoulder),
        )
        for code, mask in rules:
            if code in allowed:
                cls[mask] = code
        road = d < self.half_width
        cls[road] = C.PATH
        if C.MUD in allowed:  # puddles on the road
            cls[road & (f[..., 2] + 0.2 * jit > 1.45)] = C.MUD
        return cls

    def macro(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Large-scale brightness variation field (zero mean, unit std) that breaks texture tiling."""
        return sample(self.fields[..., 5], x / FIELD_RES, y / FIELD_RES, wrap=True)
