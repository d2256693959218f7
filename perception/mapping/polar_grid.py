"""The LAGR hyperbolic-polar grid (REFERENCE.md section 1; Hadsell et al., JFR 2009), as a histogram store.

Geometry (defaults): centred on the robot, angles measured in the odom frame (so turning on the spot moves
nothing), 400 angular cells (0.9 degrees: 16 cm at 10 m, 1.6 m at 100 m). Radially:

    r < 15 m            75 cells of 0.2 m
    15 m <= r < 350 m   75 hyperbolic cells, equal steps in 1/r:
                        1/r_k = 1/15 - k * d,  d = (1/15 - 1/350) / 75,  k = 0..75
                        cell size ~ d * r^2: 0.19 m at 15 m, 2.1 m at 50 m, 8.5 m at 100 m, 25 m at 170 m

Equal steps in 1/r are equal steps in image rows for a camera over flat ground (the row of a ground point at
range r is ~ f * h / r below the horizon), so cells follow the sensor's own range resolution; the paper treats
the map as accurate to 100 m. Observations beyond `max_range` (200 m) are not stored.

Moving: the grid stays centred on an anchor point in odom and is re-centred on the robot when the robot is more
than `recentre_distance` from it. Re-centring re-projects every non-empty cell, whole, into the new grid at its
CENTROID: each cell keeps, beside its 5-bin histogram, the evidence-weighted sum of the odom positions that went
into it, so a cell's evidence moves with where it was really seen, not with the (up to 8.5 m long) cell's
centre. Without this a far obstacle would be snapped to a cell centre at every move and drift (a cell whose
content moves less than half a cell per re-centre would never move at all). What is lost: cells whose centroids
fall into one new cell merge (histograms add, the centroid is their weighted mean), so sub-cell detail mixes
toward the cell's centroid; evidence whose centroid falls beyond `max_range` is dropped (counted in
`dropped_on_recentre`). One centroid per class instead of per cell was tried and rejected: with soft class
probabilities it tears a mixed cell's obstacle evidence away from the ground evidence that balanced it, and the
obstacle blob grew from about 3 x 3 m to 8.5 x 3.7 m after a 40 m drive (docs/mapping.md).
"""
from __future__ import annotations

import math

import numpy as np

NUM_BINS = 5


class PolarGrid:
    """Histograms on the hyperbolic-polar grid, re-centred lazily (module docstring). Positions in odom, m."""

    kind = "polar"

    def __init__(self, inner_radius: float = 15.0, inner_cell: float = 0.2, outer_radius: float = 350.0,
                 outer_cells: int = 75, angular_cells: int = 400, max_range: float = 200.0,
                 recentre_distance: float = 2.0):
        self.inner_radius = float(inner_radius)
        self.n_inner = max(1, int(round(inner_radius / inner_cell)))
        self.inner_cell = self.inner_radius / self.n_inner
        self.outer_radius = float(outer_radius)
        self.n_outer = int(outer_cells)
        self.n_radial = self.n_inner + self.n_outer
        self.n_angular = int(angular_cells)
        self.max_range = min(float(max_range), self.outer_radius)
        self.recentre_distance = float(recentre_distance)
        self.inv_step = (1.0 / self.inner_radius - 1.0 / self.outer_radius) / max(1, self.n_outer)
        inner_edges = np.arange(self.n_inner + 1) * self.inner_cell
        outer_edges = 1.0 / (1.0 / self.inner_radius - np.arange(1, self.n_outer + 1) * self.inv_step)
        self.radial_edges = np.concatenate([inner_edges, outer_edges])
        self.n_cells = self.n_radial * self.n_angular
        self.bins = np.zeros((NUM_BINS, self.n_cells), np.float32)  # class-major: bins[k, cell]
        # per cell: evidence-weighted sums of the positions (relative to the anchor) that went in
        self.sum_x = np.zeros(self.n_cells, np.float64)
        self.sum_y = np.zeros(self.n_cells, np.float64)
        self.anchor = np.zeros(2, np.float64)
        self.recentred = 0
        self.dropped_on_recentre = 0.0

    # --------------------------------------------------------------- geometry
    def radial_index(self, r: np.ndarray) -> np.ndarray:
        """Radial cell of each range (m); -1 beyond `max_range`."""
        r = np.asarray(r, dtype=np.float64)
        with np.errstate(divide="ignore"):
            outer = self.n_inner + np.floor((1.0 / self.inner_radius - 1.0 / r) / self.inv_step)
        idx = np.where(r < self.inner_radius, np.floor(r / self.inner_cell), outer)
        idx = np.minimum(idx, self.n_radial - 1)  # the last edge is rounding-exact only to ~1e-12
        return np.where((r <= self.max_range) & np.isfinite(r), idx, -1).astype(np.int64)

    def cell_index(self, x, y) -> np.ndarray:
        """Flat cell index of odom points (broadcast), -1 outside the map."""
        dx = np.asarray(x, dtype=np.float64) - self.anchor[0]
        dy = np.asarray(y, dtype=np.float64) - self.anchor[1]
        ri = self.radial_index(np.hypot(dx, dy))
        ai = np.floor((np.arctan2(dy, dx) + math.pi) * (self.n_angular / (2 * math.pi))).astype(np.int64)
        ai %= self.n_angular
        return np.where(ri >= 0, ri * self.n_angular + ai, -1)

    def cell_size(self, r: float) -> tuple[float, float]:
        """(radial, angular) size in m of the cell at range r."""
        i = int(self.radial_index(np.array([r]))[0])
        radial = float(self.radial_edges[i + 1] - self.radial_edges[i]) if i >= 0 else float("nan")
        return radial, 2 * math.pi * r / self.n_angular

    @property
    def memory_bytes(self) -> int:
        return self.bins.nbytes + self.sum_x.nbytes + self.sum_y.nbytes

    # --------------------------------------------------------------- contents
    def add(self, x: np.ndarray, y: np.ndarray, contrib: np.ndarray, mass: np.ndarray) -> int:
        """Add per-point class evidence (N x 5, already weighted; `mass` = its row sums) at odom points;
        returns how many points were stored."""
        idx = self.cell_index(x, y)
        ok = idx >= 0
        if not ok.all():
            idx, x, y, contrib, mass = idx[ok], x[ok], y[ok], contrib[ok], mass[ok]
        if idx.size == 0:
            return 0
        # one bincount per class into a class-major store: 6x faster than one over (cell, class) pairs
        for k, c in enumerate(contrib.T.astype(np.float64)):
            self.bins[k] += np.bincount(idx, weights=c, minlength=self.n_cells)
        self.sum_x += np.bincount(idx, weights=mass * (x - self.anchor[0]), minlength=self.n_cells)
        self.sum_y += np.bincount(idx, weights=mass * (y - self.anchor[1]), minlength=self.n_cells)
        return int(idx.size)

    def mass(self) -> np.ndarray:
        """Total evidence per cell."""
        return (np.ones(NUM_BINS, np.float32) @ self.bins).astype(np.float64)

    def centroids(self) -> tuple[np.ndarray, np.ndarray]:
        """Per cell, the odom position its evidence came from (NaN where the cell has none)."""
        m = self.mass()
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.anchor[0] + self.sum_x / m, self.anchor[1] + self.sum_y / m

    def move_to(self, x: float, y: float, force: bool = False) -> bool:
        """Follow the robot: re-centre on (x, y) if it is farther than `recentre_distance` from the anchor.

        Each cell's histogram moves, whole, to the new cell holding its centroid (module docstring)."""
        if not force and math.hypot(x - self.anchor[0], y - self.anchor[1]) <= self.recentre_distance:
            return False
        mass = self.mass()
        live = np.flatnonzero(mass > 0)
        old = self.anchor.copy()
        self.anchor = np.array([x, y], np.float64)
        self.recentred += 1
        if live.size == 0:
            return True
        m = mass[live]
        cx = old[0] + self.sum_x[live] / m  # odom centroid of each live cell
        cy = old[1] + self.sum_y[live] / m
        bins = self.bins[:, live]
        idx = self.cell_index(cx, cy)
        ok = idx >= 0
        self.dropped_on_recentre += float(m[~ok].sum())
        idx, m, cx, cy, bins = idx[ok], m[ok], cx[ok], cy[ok], bins[:, ok]
        self.bins = np.stack([np.bincount(idx, weights=b.astype(np.float64), minlength=self.n_cells)
                              for b in bins]).astype(np.float32)
        self.sum_x = np.bincount(idx, weights=m * (cx - x), minlength=self.n_cells)
        self.sum_y = np.bincount(idx, weights=m * (cy - y), minlength=self.n_cells)
        return True

    def scale(self, factor: float, floor: float = 0.0) -> None:
        """Multiply all evidence by `factor`; cells left with total mass <= floor are emptied (unknown again)."""
        self.bins *= np.float32(factor)
        self.sum_x *= factor
        self.sum_y *= factor
        if floor > 0:
            gone = np.ones(NUM_BINS, np.float32) @ self.bins <= floor
            self.bins[:, gone] = 0
            self.sum_x[gone] = 0
            self.sum_y[gone] = 0

    def clear(self) -> None:
        self.bins[:] = 0
        self.sum_x[:] = 0
        self.sum_y[:] = 0

    def total_mass(self) -> float:
        return float(self.bins.sum(dtype=np.float64))

    def lookup(self, x, y):
        """[(flat cell index with -1 outside, class-major bins 5 x cells)], finest first (one level here).

        The map composes several of these for multi-resolution stores; the polar grid has one level."""
        return [(self.cell_index(x, y), self.bins)]
