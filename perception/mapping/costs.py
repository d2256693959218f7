"""Cost values and conventions, written down once: Nav2 costmap costs, nav_msgs/OccupancyGrid values, the
conversions between them, and the LAGR cost of a cell's class histogram.

Nav2 (nav2_costmap_2d/cost_values.hpp), one byte per cell:

    0 FREE_SPACE ... 252 MAX_NON_OBSTACLE   graded traversal cost
    253 INSCRIBED_INFLATED_OBSTACLE          the footprint would touch an obstacle (the inflation layer's value)
    254 LETHAL_OBSTACLE
    255 NO_INFORMATION                       unknown

nav_msgs/OccupancyGrid, int8 per cell: 0..100 (100 = occupied / lethal), -1 unknown.

Nav2 -> OccupancyGrid is Nav2's own publishing table (nav2_costmap_2d costmap_2d_utils.cpp, `CostTranslationTable`):
0 -> 0, 1..252 -> 1 + (97 * (c - 1)) // 251 (i.e. 1..98), 253 -> 99, 254 -> 100, 255 -> -1.
OccupancyGrid -> Nav2 is what Nav2's StaticLayer does with a received grid (`StaticLayer::interpretValue`):
-1 -> 255 (with track_unknown_space), v >= lethal_threshold (100) -> 254, and otherwise 0 with
``trinary_costmap: true`` (Nav2's default!) or ``int(v / 100 * 254)`` with ``trinary_costmap: false``.
So a Nav2 consumer of ``terrain/costmap`` must set ``trinary_costmap: false`` to see graded terrain costs.

The LAGR cost of a cell (REFERENCE.md section 1; Hadsell et al., JFR 2009): each cell holds a histogram ``bin_k``
over the 5 classes (super-ground, ground, footline, obstacle, super-obstacle). With class weights ``w_k``
(super-ground most negative ... super-obstacle most positive), a gain ``g`` and an evidence offset ``c``::

    S = g * sum_k(w_k * bin_k) / (sum_k(bin_k) + c)

    S <= 0      cost = unexplored + S * (unexplored - min)      (S = -1 gives min; below -1: min)
    0 < S <= 1  cost = unexplored + S * (lethal - unexplored)   (S = 1 gives lethal)
    S > 1       cost = lethal

``c`` keeps thin evidence near the "unexplored" cost: one weak observation moves S only a little. A cell whose
histogram holds no evidence at all (sum <= min_evidence) is NOT given the unexplored cost: it is unknown
(Nav2 255, OccupancyGrid -1), so the planner's own unknown-space policy applies.

Here the LAGR cost scale is the Nav2 scale: min = FREE_SPACE (0), lethal = LETHAL_OBSTACLE (254), unexplored a
parameter (default 100). Results with S < 1 are capped at MAX_NON_OBSTACLE (252): 253 means "inscribed", a
footprint notion that belongs to Nav2's inflation layer, and 254 is reserved for S >= 1.

Worked example (default parameters: w = (-2, -1, 1.5, 1, 2), g = 1, c = 1, min 0, unexplored 100, lethal 254):

    bins = (1, 3, 0, 1, 0)          S = (-2 - 3 + 1) / (5 + 1) = -0.667   cost = 100 - 0.667 * 100 = 33.3 -> 33
                                    OccupancyGrid: 1 + (97 * 32) // 251 = 13
    bins = (0, 0.5, 1, 2, 0.5)      S = (-0.5 + 1.5 + 2 + 1) / (4 + 1) = 0.8
                                    cost = 100 + 0.8 * 154 = 223.2 -> 223;  OccupancyGrid: 1 + (97 * 222) // 251 = 86
    bins = (0, 0, 0, 0, 3)          S = 6 / 4 = 1.5 > 1  -> 254 lethal;      OccupancyGrid 100
    bins = (5, 0, 0, 0, 0)          S = -10 / 6 = -1.67 < -1 -> 0 free;       OccupancyGrid 0
    bins = (0, 0.01, 0, 0, 0)       S = -0.01 / 1.01 = -0.0099 -> cost 99 (barely seen: about "unexplored")
    bins = (0, 0, 0, 0, 0)          no evidence -> 255 unknown;               OccupancyGrid -1
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.errors import InputError

# --- Nav2 costmap values (nav2_costmap_2d/cost_values.hpp) ---
FREE_SPACE = 0
MAX_NON_OBSTACLE = 252
INSCRIBED_INFLATED_OBSTACLE = 253
LETHAL_OBSTACLE = 254
NO_INFORMATION = 255

# --- nav_msgs/OccupancyGrid values ---
OCCUPANCY_FREE = 0
OCCUPANCY_LETHAL = 100
OCCUPANCY_UNKNOWN = -1


def _nav2_to_occupancy_table() -> np.ndarray:
    table = np.empty(256, np.int8)
    table[0] = 0
    c = np.arange(1, 253)
    table[1:253] = 1 + (97 * (c - 1)) // 251
    table[INSCRIBED_INFLATED_OBSTACLE] = 99
    table[LETHAL_OBSTACLE] = OCCUPANCY_LETHAL
    table[NO_INFORMATION] = OCCUPANCY_UNKNOWN
    table.setflags(write=False)
    return table


NAV2_TO_OCCUPANCY = _nav2_to_occupancy_table()
"""int8[256]: Nav2 cost -> OccupancyGrid value, Nav2's own publishing table."""


def nav2_to_occupancy(costs) -> np.ndarray:
    """Nav2 costs (uint8 0..255) -> OccupancyGrid values (int8 0..100, -1 unknown), as Nav2 publishes them."""
    c = np.asarray(costs)
    if not np.issubdtype(c.dtype, np.integer) or (c.size and (c.min() < 0 or c.max() > 255)):
        raise InputError("Nav2 costs must be integers 0..255", subject="nav2_to_occupancy")
    return NAV2_TO_OCCUPANCY[c.astype(np.uint8, copy=False)]


def occupancy_to_nav2(data, *, lethal_threshold: int = 100, trinary: bool = False,
                      track_unknown: bool = True) -> np.ndarray:
    """OccupancyGrid values (int8, -1 unknown) -> Nav2 costs (uint8), as Nav2's StaticLayer reads a grid.

    Defaults are those a terrain cost map needs (graded: `trinary=False`); Nav2's own default is trinary.
    """
    d = np.asarray(data)
    if not np.issubdtype(d.dtype, np.integer) or (d.size and (d.min() < -1 or d.max() > 100)):
        raise InputError("OccupancyGrid values must be integers -1..100", subject="occupancy_to_nav2")
    d = d.astype(np.int16)
    out = np.where(d >= lethal_threshold, LETHAL_OBSTACLE,
                   FREE_SPACE if trinary else (d.astype(np.float64) / lethal_threshold * LETHAL_OBSTACLE).astype(
                       np.int16))
    out = np.where(d == OCCUPANCY_UNKNOWN, NO_INFORMATION if track_unknown else FREE_SPACE, out)
    return out.astype(np.uint8)


@dataclass(frozen=True)
class CostParams:
    """The LAGR cost formula's parameters (module docstring); costs on the Nav2 scale."""

    class_weights: tuple[float, ...] = (-2.0, -1.0, 1.5, 1.0, 2.0)
    gain: float = 1.0
    offset: float = 1.0
    min_cost: int = FREE_SPACE
    unexplored_cost: int = 100
    lethal_cost: int = LETHAL_OBSTACLE
    min_evidence: float = 1e-3

    def __post_init__(self) -> None:
        w = tuple(float(v) for v in self.class_weights)
        object.__setattr__(self, "class_weights", w)
        subject = "CostParams"
        if len(w) != 5 or not all(np.isfinite(w)):
            raise InputError(f"class_weights must be 5 finite numbers, got {self.class_weights!r}", subject=subject)
        if not (w[0] <= w[1] and w[3] <= w[4] and w[0] < 0 < w[4] and w[1] < 0 < w[3]):
            raise InputError(f"class_weights {w} are not ordered", subject=subject,
                             hint="super-ground <= ground < 0 < obstacle <= super-obstacle (footline: any)")
        if not (np.isfinite(self.gain) and self.gain > 0):
            raise InputError(f"gain must be > 0, got {self.gain}", subject=subject)
        if not (np.isfinite(self.offset) and self.offset >= 0):
            raise InputError(f"offset c must be >= 0, got {self.offset}", subject=subject)
        if not (0 <= self.min_cost <= self.unexplored_cost <= MAX_NON_OBSTACLE):
            raise InputError(f"need 0 <= min_cost ({self.min_cost}) <= unexplored_cost ({self.unexplored_cost}) "
                             f"<= {MAX_NON_OBSTACLE}", subject=subject)
        if self.lethal_cost not in (INSCRIBED_INFLATED_OBSTACLE, LETHAL_OBSTACLE):
            raise InputError(f"lethal_cost must be 253 or 254, got {self.lethal_cost}", subject=subject)
        if not (np.isfinite(self.min_evidence) and self.min_evidence >= 0):
            raise InputError(f"min_evidence must be >= 0, got {self.min_evidence}", subject=subject)


def _score_total(bins, params: CostParams):
    b = np.asarray(bins)
    if b.shape[-1] != 5:
        raise InputError(f"histograms need 5 bins on the last axis, got shape {b.shape}", subject="lagr_score")
    if not np.issubdtype(b.dtype, np.floating):
        b = b.astype(np.float64)
    # matrix-vector products, not .sum(axis=-1): numpy's reductions over 5-wide rows are ~8x slower
    total = b @ np.ones(5, b.dtype)
    score = params.gain * (b @ np.asarray(params.class_weights, b.dtype)) / (total + b.dtype.type(params.offset))
    return score, total


def lagr_score(bins, params: CostParams = CostParams()) -> np.ndarray:
    """S = g * sum(w_k * bin_k) / (sum(bin_k) + c) over the last axis (length 5)."""
    return _score_total(bins, params)[0]


def score_to_cost(score, params: CostParams = CostParams()) -> np.ndarray:
    """LAGR score S -> Nav2 cost (uint8), by the piecewise formula (module docstring). No unknown here."""
    s = np.asarray(score)
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    lo, mid, hi = float(params.min_cost), float(params.unexplored_cost), float(params.lethal_cost)
    cost = np.where(s <= 0, mid + s * (mid - lo), mid + s * (hi - mid))
    cost = np.clip(np.round(cost), lo, MAX_NON_OBSTACLE)
    cost = np.where(s >= 1, hi, cost)
    return np.where(np.isnan(s), NO_INFORMATION, cost).astype(np.uint8)


def lagr_cost(bins, params: CostParams = CostParams()) -> np.ndarray:
    """Histograms (..., 5) -> Nav2 costs (uint8): the LAGR formula, NO_INFORMATION where there is no evidence."""
    score, total = _score_total(bins, params)
    return np.where(total > params.min_evidence, score_to_cost(score, params), NO_INFORMATION).astype(np.uint8)


def lagr_occupancy(bins, params: CostParams = CostParams()) -> np.ndarray:
    """Histograms (..., 5) -> OccupancyGrid values (int8 0..100, -1 unknown)."""
    return NAV2_TO_OCCUPANCY[lagr_cost(bins, params)]
