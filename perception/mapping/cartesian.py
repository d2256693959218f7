"""A multi-resolution Cartesian histogram store: the alternative to the hyperbolic-polar grid (the default).

Levels of square grids aligned with the odom axes, each centred on the robot (defaults):

    level 0: 0.2 m cells, 32 m wide  (to 16 m around the robot)   160 x 160
    level 1: 1.0 m cells, 110 m wide (to 55 m)                    110 x 110
    level 2: 4.0 m cells, 416 m wide (to 208 m)                   104 x 104

Every observation goes into every level whose window holds it. A point is answered by the finest level whose
window holds it (not "the finest level with evidence there": falling back to a coarser level wherever a fine
cell happened to get no observation would smear every obstacle over the coarse cell around it).

Each level is a rolling window addressed as a torus (world cell (i, j) lives at (i mod n, j mod n)), the way
Nav2's rolling costmaps work: when the robot crosses a cell boundary the window moves by whole cells and only
the rows/columns that leave it are cleared. Nothing is ever re-projected, so moving and turning lose nothing
inside the windows. Cells that ENTER a window (the robot drove toward ground seen so far only from far away)
are seeded from the next coarser level with their share of its evidence by area (a 1 m cell gets 1/16 of the
4 m cell it lies in), so a far obstacle stays on the map as the robot approaches it, at the coarse position
and with the lower certainty of a smaller share, until it is seen again at the finer resolution. What leaves a
level's window is forgotten by that level (the coarser levels still hold it).
"""
from __future__ import annotations

import math

import numpy as np

NUM_BINS = 5


class _Level:
    def __init__(self, cell: float, n: int):
        self.cell = float(cell)
        self.n = int(n)
        self.bins = np.zeros((NUM_BINS, self.n * self.n), np.float32)  # class-major: bins[k, cell]
        self.origin = None  # world cell index (ix, iy) of the window's first column/row

    def _window_for(self, x: float, y: float) -> tuple[int, int]:
        return (math.floor(x / self.cell) - self.n // 2, math.floor(y / self.cell) - self.n // 2)

    def move_to(self, x: float, y: float):
        """Roll the window so that (x, y) is in its centre cell. Returns (storage index, world x, world y) of the
        cells that entered the window (empty arrays when it did not move)."""
        new = self._window_for(x, y)
        none = (np.empty(0, np.int64), np.empty(0), np.empty(0))
        if self.origin is None:
            self.origin = new
            return none
        if new == self.origin:
            return none
        old = self.origin
        grid = self.bins.reshape(NUM_BINS, self.n, self.n)  # [class, row = y, column = x]
        if abs(new[0] - old[0]) >= self.n or abs(new[1] - old[1]) >= self.n:
            grid[...] = 0
        else:
            for axis, old_o, new_o in ((1, old[0], new[0]), (0, old[1], new[1])):
                if new_o == old_o:
                    continue
                # world indices that leave the window; their torus slots get the ones that enter
                leaving = np.arange(old_o, new_o) if new_o > old_o else np.arange(new_o + self.n, old_o + self.n)
                slots = leaving % self.n
                if axis == 1:
                    grid[:, :, slots] = 0
                else:
                    grid[:, slots, :] = 0
        self.origin = new
        ix = new[0] + np.arange(self.n)
        iy = new[1] + np.arange(self.n)
        out_x = (ix < old[0]) | (ix >= old[0] + self.n)
        out_y = (iy < old[1]) | (iy >= old[1] + self.n)
        rows, cols = np.nonzero(out_x[None, :] | out_y[:, None])
        wx, wy = ix[cols], iy[rows]
        return ((wy % self.n) * self.n + wx % self.n, (wx + 0.5) * self.cell, (wy + 0.5) * self.cell)

    def index(self, x, y) -> np.ndarray:
        """Flat storage index of odom points (broadcast), -1 outside the window."""
        ix = np.floor(np.asarray(x, dtype=np.float64) / self.cell).astype(np.int64)
        iy = np.floor(np.asarray(y, dtype=np.float64) / self.cell).astype(np.int64)
        ox, oy = self.origin if self.origin is not None else (0, 0)
        inside = (ix >= ox) & (ix < ox + self.n) & (iy >= oy) & (iy < oy + self.n)
        return np.where(inside, (iy % self.n) * self.n + ix % self.n, -1)


class MultiResGrid:
    """Histograms on robot-centred rolling Cartesian windows of several resolutions (module docstring)."""

    kind = "cartesian"

    def __init__(self, cells=(0.2, 1.0, 4.0), sizes=(32.0, 110.0, 416.0), max_range: float = 200.0):
        self.levels = [_Level(c, max(1, int(round(s / c)))) for c, s in zip(cells, sizes)]
        self.max_range = float(max_range)
        self.anchor = np.zeros(2, np.float64)
        for lv in self.levels:
            lv.move_to(0.0, 0.0)

    @property
    def memory_bytes(self) -> int:
        return sum(lv.bins.nbytes for lv in self.levels)

    def cell_size(self, r: float) -> tuple[float, float]:
        """(x, y) size in m of the finest cell covering a point r m ahead of the robot."""
        for lv in self.levels:
            if r < lv.n // 2 * lv.cell:
                return lv.cell, lv.cell
        return float("nan"), float("nan")

    def add(self, x: np.ndarray, y: np.ndarray, contrib: np.ndarray, mass: np.ndarray | None = None) -> int:
        """Add per-point class evidence (N x 5, already weighted) at odom points to every level holding them;
        returns how many points were stored in at least one level. (`mass` is not needed here.)"""
        stored = np.zeros(len(x), bool)
        contrib_t = contrib.T.astype(np.float64)
        for lv in self.levels:
            idx = lv.index(x, y)
            ok = idx >= 0
            stored |= ok
            if not ok.any():
                continue
            n = lv.bins.shape[1]
            dump = np.where(ok, idx, n)  # points outside the window go to a spare slot: no masked copies
            for k in range(NUM_BINS):
                lv.bins[k] += np.bincount(dump, weights=contrib_t[k], minlength=n + 1)[:n]
        return int(stored.sum())

    def move_to(self, x: float, y: float, force: bool = False) -> bool:
        """Roll every window to the robot, coarse first; cells entering a window are seeded from the next
        coarser level, their share of its evidence by area. Returns whether any window moved."""
        moved = False
        for k in range(len(self.levels) - 1, -1, -1):
            lv = self.levels[k]
            slots, cx, cy = lv.move_to(x, y)
            if slots.size == 0:
                continue
            moved = True
            if k + 1 < len(self.levels):
                coarse = self.levels[k + 1]
                src = coarse.index(cx, cy)
                ok = src >= 0
                share = np.float32((lv.cell / coarse.cell) ** 2)
                lv.bins[:, slots[ok]] = coarse.bins[:, src[ok]] * share
        self.anchor = np.array([x, y], np.float64)
        return moved

    def scale(self, factor: float, floor: float = 0.0) -> None:
        for lv in self.levels:
            lv.bins *= np.float32(factor)
            if floor > 0:
                lv.bins[:, np.ones(NUM_BINS, np.float32) @ lv.bins <= floor] = 0

    def clear(self) -> None:
        for lv in self.levels:
            lv.bins[:] = 0

    def total_mass(self) -> float:
        """Evidence in the coarsest level (every stored observation is in it, unless outside its window)."""
        return float(self.levels[-1].bins.sum(dtype=np.float64))

    def lookup(self, x, y):
        """[(flat index with -1 outside the window, class-major bins 5 x cells)] per level, finest first; a
        point is answered by the finest level whose window holds it."""
        return [(lv.index(x, y), lv.bins) for lv in self.levels]
