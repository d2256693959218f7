"""Training data from logged stereo drives, without human labels: band strips with stereo label targets.

Each band window gets a target from stereo alone:
- near: the stereo label of the window it lies in (as the online classifier gets it);
- hindsight (`hindsight=True`): a far window whose ground point the robot passes later in the drive gets the
  label stereo gave that place when it was near. The near-range labels of the whole drive are accumulated in a
  top-down grid (odom, `HINDSIGHT_CELL_M` cells, class distributions weighted by label confidence); after the drive
  every far window looks its ground point up there. Only logs can do this (they know the future); it teaches the
  offline model what far terrain looks like, which near windows alone do not (docs/terrain.md measures it).

Used by `perception train classifier` to fit the online classifier's default weights and, with
`--finetune-features`, to fine-tune the feature net on these targets (perception.terrain.feature_finetune).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.pipeline.terrain_stage import near_observations
from perception.terrain import bands as B
from perception.terrain.classifier import NUM_CLASSES
from perception.terrain.long_range import stereo_targets

HINDSIGHT_CELL_M = 0.5
HINDSIGHT_MIN_MASS = 0.5  # evidence (summed label confidence) a cell needs before it labels a far window


@dataclass
class StripLabels:
    """strips (N, 3, 36, 484) float16; targets (N, 25, 115, 5) float16; weights (N, 25, 115) float16."""

    strips: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    frames: int = 0

    def window_samples(self, features: np.ndarray | None = None):
        """Flatten to (positions with weight > 0): targets n x 5, weights n (and features n x F when given as
        (N, F, 25, 115))."""
        keep = self.weights > 0
        t = self.targets[keep].astype(np.float32)
        w = self.weights[keep].astype(np.float32)
        if features is None:
            return t, w
        f = features.transpose(0, 2, 3, 1)[keep]
        return f, t, w


class HindsightGrid:
    """Near-range stereo label distributions of a whole drive on a top-down odom grid."""

    def __init__(self, cell: float = HINDSIGHT_CELL_M) -> None:
        self.cell = cell
        self.points: list[np.ndarray] = []
        self.probs: list[np.ndarray] = []
        self.bins: dict[tuple[int, int], np.ndarray] | None = None

    def add(self, xy_odom: np.ndarray, probs: np.ndarray, conf: np.ndarray) -> None:
        xy = np.asarray(xy_odom, np.float64)
        ok = np.isfinite(xy).all(1)
        self.points.append(xy[ok])
        self.probs.append(np.asarray(probs, np.float32)[ok] * np.asarray(conf, np.float32)[ok, None])

    def finish(self) -> None:
        if not self.points:
            self.keys, self.table = np.zeros((0, 2), np.int64), np.zeros((0, NUM_CLASSES), np.float32)
            return
        ij = np.floor(np.concatenate(self.points) / self.cell).astype(np.int64)
        probs = np.concatenate(self.probs)
        keys, inverse = np.unique(ij, axis=0, return_inverse=True)
        table = np.zeros((len(keys), NUM_CLASSES), np.float32)
        np.add.at(table, inverse.ravel(), probs)
        self.keys, self.table = keys, table

    def lookup(self, xy_odom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distributions n x 5, mass n) at the points; mass 0 where the drive never labelled the place."""
        n = len(xy_odom)
        out, mass = np.zeros((n, NUM_CLASSES), np.float32), np.zeros(n, np.float32)
        if not len(self.keys) or not n:
            return out, mass
        ok = np.isfinite(xy_odom).all(1)
        ij = np.floor(xy_odom[ok] / self.cell).astype(np.int64)
        # sorted-key search: keys are unique and lexicographically sorted by np.unique
        code_keys = self.keys[:, 0] * (1 << 32) + self.keys[:, 1]
        codes = ij[:, 0] * (1 << 32) + ij[:, 1]
        pos = np.clip(np.searchsorted(code_keys, codes), 0, len(code_keys) - 1)
        hit = code_keys[pos] == codes
        rows = np.flatnonzero(ok)[hit]
        out[rows] = self.table[pos[hit]]
        mass[rows] = out[rows].sum(1)
        out[rows] /= np.maximum(mass[rows], 1e-9)[:, None]
        return out, mass


def _to_odom(xy_base: np.ndarray, pose) -> np.ndarray:
    m = pose.matrix()
    return xy_base @ m[:2, :2].T + m[:2, 3]


def _per_chunk(values: np.ndarray, plan: B.BandPlan, tail: tuple[int, ...]) -> np.ndarray:
    """Window values in `feature_pixels` order (band, row, column) -> (n_chunks, 25, 115, *tail)."""
    out, i, k = [], 0, 0
    for b in plan.bands:
        n = B.FEATURE_ROWS * b.feature_cols
        grid = values[i: i + n].reshape(B.FEATURE_ROWS, b.chunks, B.FEATURE_COLS, *tail)
        out.extend(np.moveaxis(grid, 1, 0))
        i += n
        k += b.chunks
    return np.stack(out)


def collect_stereo_strips(seeds, frames: int, long_range, *, size=(640, 480), tree_density: float = 3.0,
                          every: int = 2, hindsight: bool = True, camera_xy=(0.0, 0.0), progress=None
                          ) -> StripLabels:
    """Band strips and stereo targets from synthetic drives (the world seeds stand for logged drives)."""
    from perception.sim import SimConfig, SimWorld
    from perception.stereo.near_range import NearRangeLabeller

    strips, targets, weights, n_frames = [], [], [], 0
    offset = np.asarray(camera_xy, np.float64)
    for seed in seeds:
        world = SimWorld(SimConfig(seed=int(seed), frames=frames, width=size[0], height=size[1],
                                   tree_density=tree_density))
        labeller = NearRangeLabeller()
        grid = HindsightGrid()
        pending = []
        for i in range(frames):
            frame = world.render(i)
            nr = labeller.process(frame)
            xy, probs, conf = near_observations(nr.labels, nr.ground, frame.left_info)
            if len(xy):
                grid.add(_to_odom(xy + offset, frame.pose), probs, conf)
            if i % every == 0:
                ff = long_range.observe(frame.left, frame.left_info, nr.ground)
                if ff is not None:
                    near, t_near, w_near = stereo_targets(ff, nr.labels, long_range.config.min_label_confidence)
                    t = np.zeros((len(ff.pixels), NUM_CLASSES), np.float32)
                    w = np.zeros(len(ff.pixels), np.float32)
                    t[near], w[near] = t_near, w_near
                    pending.append((ff.plan, B.extract_bands(frame.left, ff.plan).astype(np.float16), t, w,
                                    near, ff.inside, _to_odom(ff.ground_xy + offset, frame.pose)))
                    n_frames += 1
            if progress is not None:
                progress(seed, i)
        grid.finish()
        for plan, s, t, w, near, inside, xy_odom in pending:
            if hindsight:
                far = inside & ~near
                dist, mass = grid.lookup(xy_odom[far])
                rows = np.flatnonzero(far)
                good = mass >= HINDSIGHT_MIN_MASS
                t[rows[good]] = dist[good]
                w[rows[good]] = np.minimum(1.0, mass[good] / 4.0)
            strips.append(s)
            targets.append(_per_chunk(t, plan, (NUM_CLASSES,)).astype(np.float16))
            weights.append(_per_chunk(w, plan, ()).astype(np.float16))
    if not strips:
        shape = (0, 3, B.HEIGHT, B.WIDTH)
        return StripLabels(np.zeros(shape, np.float16), np.zeros((0, B.FEATURE_ROWS, B.FEATURE_COLS, NUM_CLASSES),
                           np.float16), np.zeros((0, B.FEATURE_ROWS, B.FEATURE_COLS), np.float16), 0)
    return StripLabels(np.concatenate(strips), np.concatenate(targets), np.concatenate(weights), n_frames)
