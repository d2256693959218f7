"""Window machinery of the near-range labels: the label codes, `LabelConfig`, `NearLabels` and the pure window
rules `classify_windows` (the rules, the code table and the label distribution are described in
`perception.stereo.labels`, which is the module to import).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.errors import InputError
from perception.params import describe_config, param, validate_config
from perception.stereo.plane import GroundStatus

UNKNOWN, SUPER_GROUND, GROUND, FOOTLINE, OBSTACLE, SUPER_OBSTACLE = range(6)
LABEL_NAMES = ("unknown", "super_ground", "ground", "footline", "obstacle", "super_obstacle")
LABEL_COLORS = ((0, 0, 0), (0, 160, 0), (90, 230, 90), (0, 215, 255), (0, 110, 255), (40, 30, 220))  # BGR
MOMENTS_NONE, MOMENTS_SLOPE, MOMENTS_GRASS = 0, 1, 2

WINDOW_DTYPE = np.dtype([
    ("row", np.int32), ("col", np.int32), ("v0", np.int32), ("u0", np.int32), ("class", np.uint8),
    ("confidence", np.float32), ("distance_m", np.float32), ("n_points", np.int32), ("coverage", np.float32),
    ("obstacle_fraction", np.float32), ("mean_height_m", np.float32), ("std_height_m", np.float32),
    ("foot_score", np.float32), ("moments", np.uint8), ("probabilities", np.float32, (5,)),
])


@dataclass(frozen=True)
class LabelConfig:
    """Parameters of the near-range labels; each has a description and a valid range, checked on creation."""

    window_rows: int = param(16, "window height, px of the full image", 2, 1024)
    window_cols: int = param(32, "window width, px of the full image", 2, 2048)
    max_range_m: float = param(12.0, "farthest range (distance from the camera) labelled, m (stereo's reach)",
                               0.5, 200.0)
    min_confidence: float = param(0.2, "stereo confidence (0..1) a point needs to be used", 0.0, 1.0)
    obstacle_height_m: float = param(0.3, "a point higher than this above the ground is an obstacle point, m",
                                     0.01, 10.0)
    max_point_height_m: float = param(4.0, "points higher than this above the ground are ignored (overhangs, "
                                      "canopy, sky mismatches): no obstacle to a ground robot, m", 0.1, 100.0)
    hole_depth_m: float = param(0.5, "a point lower than this below the ground is an obstacle point (ditch), m",
                                0.01, 100.0)
    min_points: int = param(10, "fewest usable points for a window to be labelled", 1, 100000)
    min_coverage: float = param(0.2, "least share of a window's pixels with usable points to label it", 0.0, 1.0)
    super_coverage: float = param(0.6, "least share of usable pixels for super-ground / super-obstacle", 0.0, 1.0)
    super_confidence: float = param(0.5, "least mean stereo confidence for super-ground / super-obstacle", 0.0, 1.0)
    obstacle_fraction: float = param(0.1, "least share of obstacle points for an obstacle window", 0.0, 1.0)
    super_obstacle_fraction: float = param(0.9, "least share of obstacle points for super-obstacle", 0.0, 1.0)
    foot_band: float = param(0.5, "central share of a window's rows where an obstacle foot makes a footline",
                             0.05, 1.0)
    foot_min_fraction: float = param(0.25, "least share of a window's columns with a visible foot for a footline",
                                     0.0, 1.0)
    foot_occlusion_m: float = param(0.5, "a foot farther than the observed surface by this (+5 %) is hidden, m",
                                    0.0, 100.0)
    plane_extent_margin_m: float = param(1.0, "a further ground plane applies this far beyond its inliers, m",
                                         0.0, 100.0)
    moments: bool = param(True, "apply the moments filter (traversable slope / tall grass)")
    slope_mean_m: float = param(0.5, "moments filter: |mean height| below this may be a traversable slope, m",
                                0.0, 10.0)
    slope_rms_m: float = param(0.04, "moments filter: RMS about the window's own plane of a smooth slope, m",
                               0.0, 10.0)
    slope_max_deg: float = param(25.0, "moments filter: steepest traversable slope relative to the ground, deg",
                                 0.0, 90.0)
    grass_mean_m: float = param(0.1, "moments filter: |mean height| below this may be tall grass, m", 0.0, 10.0)
    grass_std_m: float = param(0.25, "moments filter: largest height std of tall grass, m", 0.0, 10.0)

    def __post_init__(self) -> None:
        validate_config(self)
        if self.super_obstacle_fraction < self.obstacle_fraction:
            raise InputError("super_obstacle_fraction must be >= obstacle_fraction",
                             subject="LabelConfig.super_obstacle_fraction")

    @classmethod
    def describe(cls) -> dict[str, dict]:
        return describe_config(cls)


@dataclass
class NearLabels:
    """Labels of one frame. `windows`: one WINDOW_DTYPE record per grid window, row-major (row, col = grid
    indices; v0, u0 = top-left pixel); `image`: HxW uint8 codes (each window painted with its class);
    `pixel_class`: HxW uint8 0 / 2 ground / 4 obstacle per usable point; `height`: HxW float32 height above the
    ground (NaN where unusable or no ground). `status`/`reason` come from the ground estimate (or the input)."""

    windows: np.ndarray
    image: np.ndarray
    pixel_class: np.ndarray
    height: np.ndarray
    grid: tuple[int, int]
    window: tuple[int, int]
    status: GroundStatus = GroundStatus.OK
    reason: str = ""
    ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is GroundStatus.OK

    @property
    def classes(self) -> np.ndarray:
        """(rows, cols) uint8 grid of window classes."""
        return self.windows["class"].reshape(self.grid)

    @property
    def probabilities(self) -> np.ndarray:
        """(rows, cols, 5) label distributions (zeros for unknown windows)."""
        return self.windows["probabilities"].reshape(*self.grid, 5)

    def counts(self) -> dict[str, int]:
        c = np.bincount(self.windows["class"], minlength=6)
        return {name: int(c[k]) for k, name in enumerate(LABEL_NAMES)}

    @property
    def coverage(self) -> float:
        """Share of windows with a label (not unknown)."""
        return float((self.windows["class"] != UNKNOWN).mean()) if self.windows.size else 0.0


def _grid_shape(h: int, w: int, config: LabelConfig) -> tuple[int, int]:
    return -(-h // config.window_rows), -(-w // config.window_cols)


def empty_labels(shape: tuple[int, int], config: LabelConfig | None = None, status: GroundStatus = GroundStatus.OK,
                 reason: str = "", ms: float = 0.0) -> NearLabels:
    """All-unknown labels for an HxW image (bad frames)."""
    config = config or LabelConfig()
    h, w = (int(shape[0]), int(shape[1])) if len(shape) >= 2 else (0, 0)
    gh, gw = _grid_shape(h, w, config)
    win = np.zeros(gh * gw, WINDOW_DTYPE)
    rr, cc = np.divmod(np.arange(gh * gw), max(gw, 1))
    win["row"], win["col"] = rr, cc
    win["v0"], win["u0"] = rr * config.window_rows, cc * config.window_cols
    win["distance_m"] = win["mean_height_m"] = win["std_height_m"] = np.nan
    return NearLabels(win, np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8), np.full((h, w), np.nan, np.float32),
                      (gh, gw), (config.window_rows, config.window_cols), status, reason, ms)


def _blocks(a: np.ndarray, gh: int, gw: int, config: LabelConfig, fill) -> np.ndarray:
    """Pad an HxW(xC) array to the window grid and view it as (gh, rows, gw, cols, ...)."""
    wr, wc = config.window_rows, config.window_cols
    pad = [(0, gh * wr - a.shape[0]), (0, gw * wc - a.shape[1])] + [(0, 0)] * (a.ndim - 2)
    if any(p[1] for p in pad):
        a = np.pad(a, pad, constant_values=fill)
    return a.reshape(gh, wr, gw, wc, *a.shape[2:])


def _local_planes(points: np.ndarray, use: np.ndarray, normal: np.ndarray, which: np.ndarray, config: LabelConfig
                  ) -> tuple[np.ndarray, np.ndarray]:
    """For the windows `which` ((k, 2) grid row, col): RMS of their usable points about their own least-squares
    plane (m) and that plane's tilt from the ground `normal` (deg); NaN for windows with fewer than 3 points."""
    wr, wc = config.window_rows, config.window_cols
    rms, tilt = np.full(len(which), np.nan), np.full(len(which), np.nan)
    for j, (r, c) in enumerate(which):
        sl = (slice(r * wr, (r + 1) * wr), slice(c * wc, (c + 1) * wc))
        p = points[sl][use[sl]].astype(np.float64)
        if p.shape[0] < 3:
            continue
        q = p - p.mean(0)
        vals, vecs = np.linalg.eigh(q.T @ q / p.shape[0])
        rms[j] = np.sqrt(max(vals[0], 0.0))
        tilt[j] = np.degrees(np.arccos(min(1.0, abs(float(vecs[:, 0] @ normal)))))
    return rms, tilt


def classify_windows(points: np.ndarray, height: np.ndarray, obstacle: np.ndarray, usable: np.ndarray,
                     confidence: np.ndarray, feet, normal: np.ndarray | None,
                     config: LabelConfig | None = None, range_m: np.ndarray | None = None) -> NearLabels:
    """The window rules of the module doc on per-point inputs (all HxW; points HxWx3): `usable` points, which of
    them are `obstacle`, their `height`, stereo `confidence`, the ground `normal` (for the moments filter's slope
    test; None = no moments filter) and `feet`: an HxW bool foot image, or a function of the obstacle mask left
    after the moments filter that returns one (so traversable slopes and grass make no footline).
    Pure function: the truth labels use it too."""
    config = config or LabelConfig()
    hh, ww = height.shape
    gh, gw = _grid_shape(hh, ww, config)
    wr, wc = config.window_rows, config.window_cols
    lab = empty_labels((hh, ww), config)
    win = lab.windows
    obstacle = obstacle & usable
    if range_m is None:
        range_m = np.sqrt((np.nan_to_num(points.astype(np.float32)) ** 2).sum(-1))
    hz = np.where(usable, height, np.float32(0.0)).astype(np.float32)
    chans = np.stack([np.ones((hh, ww), np.float32), usable.astype(np.float32), obstacle.astype(np.float32), hz,
                      hz * hz, np.where(usable, confidence, np.float32(0.0)).astype(np.float32),
                      np.where(usable, range_m, np.float32(0.0)).astype(np.float32)], -1)
    sums = _blocks(chans, gh, gw, config, 0.0).sum((1, 3), dtype=np.float64)
    area, n, n_obs, s_h, s_hh, s_c, s_r = (sums[..., k] for k in range(7))
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.maximum(n, 1.0)
        cov = n / area
        fo = n_obs / nn
        mean_h = s_h / nn
        std_h = np.sqrt(np.maximum(s_hh / nn - mean_h ** 2, 0.0))
        mconf = s_c / nn
        dist = s_r / nn
    enough = (n >= config.min_points) & (cov >= config.min_coverage)
    has_obs = enough & (fo >= config.obstacle_fraction)
    moments = np.zeros((gh, gw), np.uint8)
    if config.moments and normal is not None and has_obs.any():
        slope = np.zeros((gh, gw), bool)
        cand = has_obs & (np.abs(mean_h) < config.slope_mean_m)
        which = np.argwhere(cand)
        if which.size:
            rms, tilt = _local_planes(points, usable, np.asarray(normal, np.float64), which, config)
            with np.errstate(invalid="ignore"):
                slope[cand] = (rms <= config.slope_rms_m) & (tilt <= config.slope_max_deg)
        grass = has_obs & ~slope & (np.abs(mean_h) < config.grass_mean_m) & (std_h <= config.grass_std_m)
        moments[slope], moments[grass] = MOMENTS_SLOPE, MOMENTS_GRASS
    filtered = moments > 0
    flt = np.repeat(np.repeat(filtered, wr, 0), wc, 1)[:hh, :ww]
    obstacle_kept = obstacle & ~flt
    if callable(feet):
        feet = feet(obstacle_kept)
    band0 = int(round(wr * (1.0 - config.foot_band) / 2.0))
    band1 = max(band0 + 1, wr - band0)
    fb = _blocks(feet, gh, gw, config, False)[:, band0:band1]
    foot_cols = fb.any(1).sum(-1).astype(np.float64)  # (gh, gw): columns with a foot in the central band
    cols = _blocks(np.ones((hh, ww), bool), gh, gw, config, False)[:, 0].sum(-1).astype(np.float64)
    foot_frac = foot_cols / cols
    foot_score = np.clip(foot_frac / max(config.foot_min_fraction, 1e-6), 0.0, 1.0)
    footline = (foot_frac >= config.foot_min_fraction) & (foot_cols > 0)
    quality = mconf * np.minimum(1.0, cov / max(config.super_coverage, 1e-6))
    super_ok = (cov >= config.super_coverage) & (mconf >= config.super_confidence)
    cls = np.full((gh, gw), GROUND, np.uint8)
    cls[enough & (n_obs == 0) & super_ok] = SUPER_GROUND
    obs = has_obs & ~filtered
    cls[obs] = OBSTACLE
    cls[obs & (fo >= config.super_obstacle_fraction) & super_ok] = SUPER_OBSTACLE
    cls[~enough] = UNKNOWN
    cls[footline] = FOOTLINE
    g_share = np.where(filtered, 1.0, 1.0 - fo)
    o_share = 1.0 - g_share
    span = max(config.super_obstacle_fraction - config.obstacle_fraction, 1e-6)
    purity = np.where(filtered, 0.5, np.clip(1.0 - 0.5 * fo / max(config.obstacle_fraction, 1e-6), 0.5, 1.0))
    purity = np.where(cls == OBSTACLE, 0.5 + 0.5 * np.clip((fo - config.obstacle_fraction) / span, 0.0, 1.0), purity)
    purity = np.where((cls == SUPER_GROUND) | (cls == SUPER_OBSTACLE), 1.0, purity)
    conf = np.where(cls == FOOTLINE, foot_score * np.where(enough, np.maximum(quality, 0.5), 0.5), quality * purity)
    conf = np.where(cls == UNKNOWN, 0.0, np.clip(conf, 0.0, 1.0))
    fill = np.where(filtered, 0.0, n_obs / area)
    soft = np.stack([g_share * quality, g_share * (1 - quality), foot_score, o_share * (1 - fill), o_share * fill], -1)
    soft = np.nan_to_num(soft) + 1e-6
    soft /= soft.sum(-1, keepdims=True)
    onehot = np.zeros((gh, gw, 5))
    known = cls > 0
    onehot[known, cls[known].astype(np.int64) - 1] = 1.0
    wgt = (0.5 + 0.5 * conf)[..., None]
    prob = np.where(known[..., None], wgt * onehot + (1 - wgt) * soft, 0.0)

    win["class"] = cls.ravel()
    win["confidence"] = conf.ravel()
    win["distance_m"] = np.where(n > 0, dist, np.nan).ravel()
    win["n_points"] = n.ravel()
    win["coverage"] = cov.ravel()
    win["obstacle_fraction"] = np.where(filtered, 0.0, fo).ravel()
    win["mean_height_m"] = np.where(n > 0, mean_h, np.nan).ravel()
    win["std_height_m"] = np.where(n > 0, std_h, np.nan).ravel()
    win["foot_score"] = foot_score.ravel()
    win["moments"] = moments.ravel()
    win["probabilities"] = prob.reshape(-1, 5)
    lab.image = np.repeat(np.repeat(cls, wr, 0), wc, 1)[:hh, :ww].copy()
    pc = np.zeros((hh, ww), np.uint8)
    pc[usable] = GROUND
    pc[obstacle_kept] = OBSTACLE
    lab.pixel_class = pc
    lab.height = np.where(usable, height, np.nan).astype(np.float32)
    return lab
