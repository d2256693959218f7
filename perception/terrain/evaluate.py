"""`perception eval terrain`: near-to-far terrain classification on synthetic drives, against the ground truth.

Every drive is a synthetic world (`perception.sim`, 640x480, trees near the track as on LAGR's courses) whose
terrain changes appearance mid-drive (`SimConfig.change_frame`). Per frame: stereo -> ground -> labels, then the
band features once, classified three ways on the same features and frames:
- online: the shipped offline defaults + online learning (what the pipeline runs);
- offline: the same defaults, no online learning (the paper's "default weights" row);
- baseline: no long-range vision, a stereo-only map: the stereo labels at their own range (`max_range_m`,
  12 m), nothing beyond; and, as a stronger reference, `baseline_stereo_100m`: the same stereo labeller pushed out
  to `far_m` (100 m), however noisy stereo is there.

Ground truth per pixel (every `pixel_step`-th pixel), what stereo supervision can teach: a pixel is NOT
traversable when its surface stands more than `obstacle_height_m` (0.3 m, the stereo labels' own threshold) above
the terrain under it (trees, rocks, bushes, walls) or belongs to an actor (pedestrian, cyclist, car, truck);
traversable otherwise (any ground surface). Evaluated pixels: not sky, at most `max_height_m` (2 m) above the
terrain (what a ground robot meets). Near = range <= the stereo labels' `max_range_m`; far = beyond it up to
`far_m`. A pixel without an answer (unknown) counts as wrong in accuracies and scores 0.5 in AUROC.
The synthetic world also gives flat surfaces a traversability cost (mud 0.35, rocky ground 0.1: flat, so stereo
calls them ground); `far_auroc_surface_cost` scores the long-range output against that on flat far pixels
(traversability >= 0.5), to show what geometry-supervised learning does not learn.

Metrics (the JSON's keys):
- stereo_range_m: the labels' max range; near_acc / far_acc / far_auroc: traversable vs not, the long-range
  classes (online) against the truth; the baselines' are the stereo labels' (codes 1, 2 traversable, 3 half,
  4, 5 not);
- err_vs_stereo_offline / _online: share of stereo-labelled windows whose predicted class (before the frame's
  update) differs from the stereo label (the paper's 32 % -> 15 % measure), over all frames;
- frames_to_adapt: frames after the terrain change until the online far accuracy is back to 90 % of its mean
  over the 10 frames before the change (mean over drives; a drive that never recovers counts its remaining
  frames);
- map_cell_acc_100m: the map after the drive, cells within 100 m of the robot known to any of the maps,
  traversable (Nav2 cost <= the unexplored cost) vs the truth map (no static object stands there); unknown cells
  count as wrong;
- ms_per_frame: bands + features + classifier update + class image + map, mean over frames.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from perception.mapping import TerrainMap
from perception.pipeline.core import PipelineConfig
from perception.pipeline.terrain_stage import near_observations
from perception.sim import SimConfig, SimWorld
from perception.sim.config import TERRAIN_NONE
from perception.stereo.labels import label_near_range
from perception.stereo.near_range import NearRangeLabeller
from perception.stereo.windows import LabelConfig
from perception.terrain.long_range import (
    LongRange, classify, load_default_classifier, map_observations, paint,
)

LABEL_TRAVERSABILITY = np.array([np.nan, 1.0, 1.0, 0.5, 0.0, 0.0], np.float32)  # per stereo label code


@dataclass
class TerrainEvalConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    frames: int = 60
    size: tuple[int, int] = (640, 480)
    tree_density: float = 3.0
    far_m: float = 100.0
    max_height_m: float = 2.0
    obstacle_height_m: float = 0.3
    pixel_step: int = 4
    cost_threshold: float = 0.5
    adapt_window: int = 10
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)  # labels, bands, terrain, classifier, map


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for the positive `labels` (Mann-Whitney U with tied ranks).

    >>> auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True]))
    0.75
    """
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s), np.float64)
    bounds = np.flatnonzero(np.diff(s)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(s)]])
    for a, b in zip(starts, ends):
        ranks[a:b] = (a + b + 1) / 2.0  # mean 1-based rank of a tie group
    r = np.empty_like(ranks)
    r[order] = ranks
    return float((r[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def truth_pixels(frame, world: SimWorld, cfg: TerrainEvalConfig):
    """(rows, cols, range_m, traversable, flat_cost_ok) of the evaluated pixels of a synthetic frame (module
    docstring): `traversable` geometric truth; `flat_cost_ok` NaN where not flat ground, else traversability
    >= cost_threshold."""
    t, step = frame.truth, cfg.pixel_step
    depth = t["depth"][::step, ::step]
    trav = t["traversability"][::step, ::step]
    terrain = t["terrain_class"][::step, ::step]
    h, w = t["depth"].shape
    vs, us = np.mgrid[0:h:step, 0:w:step]
    info = frame.left_info
    x = (us - info.cx) / info.fx * depth
    y = (vs - info.cy) / info.fy * depth
    ok = np.isfinite(depth) & np.isfinite(trav)
    pts = np.stack([x[ok], y[ok], depth[ok], np.ones(ok.sum())], 0)
    world_pts = t["camera_pose"] @ pts
    height = world_pts[2] - world.terrain.height(world_pts[0], world_pts[1])
    rng = np.sqrt(x[ok] ** 2 + y[ok] ** 2 + depth[ok] ** 2)
    keep = height <= cfg.max_height_m
    actor = terrain[ok] == TERRAIN_NONE
    standing = (height > cfg.obstacle_height_m) | actor
    flat = np.where(standing, np.nan, (trav[ok] >= cfg.cost_threshold).astype(np.float32))
    return vs[ok][keep], us[ok][keep], rng[keep], ~standing[keep], flat[keep]


@dataclass
class Scores:
    """Per-pixel scores (NaN unknown) and truth, accumulated over frames for one method and one region."""

    score: list = field(default_factory=list)
    truth: list = field(default_factory=list)

    def add(self, score: np.ndarray, truth: np.ndarray) -> None:
        self.score.append(score.astype(np.float32))
        self.truth.append(truth)

    @staticmethod
    def acc_of(score: np.ndarray, truth: np.ndarray) -> float:
        if not len(score):
            return float("nan")
        known = np.isfinite(score)
        return float(np.mean(known & ((score >= 0.5) == truth)))

    def metrics(self) -> tuple[float, float, float]:
        """(accuracy, AUROC, coverage)."""
        if not self.score:
            return float("nan"), float("nan"), 0.0
        s, t = np.concatenate(self.score), np.concatenate(self.truth)
        return self.acc_of(s, t), auroc(np.where(np.isfinite(s), s, 0.5), t), float(np.isfinite(s).mean())


@dataclass
class DriveResult:
    seed: int
    change_frame: int
    far_acc_online: list = field(default_factory=list)
    far_acc_offline: list = field(default_factory=list)
    far_acc_baseline: list = field(default_factory=list)
    far_acc_stereo100: list = field(default_factory=list)
    err_online: list = field(default_factory=list)
    err_offline: list = field(default_factory=list)
    ms: list = field(default_factory=list)
    map_acc: float = float("nan")
    map_acc_baseline: float = float("nan")
    map_acc_stereo100: float = float("nan")
    map_coverage: float = 0.0
    maps: dict = field(default_factory=dict)

    def frames_to_adapt(self, window: int) -> int:
        return _adapt(self.far_acc_online, self.change_frame, window)


def _adapt(far_acc, change_frame: int, window: int) -> int:
    """Frames after `change_frame` until far accuracy is back to 90 % of its mean over `window` frames before."""
    acc = np.asarray(far_acc, np.float64)
    c = change_frame
    before = acc[max(0, c - window): c]
    before = before[np.isfinite(before)]
    if not before.size:
        return 0
    target = 0.9 * before.mean()
    for k in range(c, len(acc)):
        if np.isfinite(acc[k]) and acc[k] >= target:
            return k - c
    return len(acc) - c


def _map_accuracy(maps: dict[str, TerrainMap], truth_map: dict, robot_xy, radius: float = 100.0):
    """Traversable-vs-not accuracy of each map over the cells within `radius` known to any of them."""
    grids = {k: m.nav2_cost_grid(0.5, 2 * radius, center_xy=robot_xy) for k, m in maps.items()}
    any_grid = next(iter(grids.values()))
    n = any_grid.data.shape[0]
    ox, oy, _ = any_grid.origin_xy_yaw
    xs = ox + (np.arange(n) + 0.5) * 0.5
    ys = oy + (np.arange(n) + 0.5) * 0.5
    gx, gy = np.meshgrid(xs, ys)
    res, (tx, ty) = truth_map["resolution"], truth_map["origin"][:2]
    ti = np.floor((gy - ty) / res).astype(int)
    tj = np.floor((gx - tx) / res).astype(int)
    th, tw = truth_map["traversability"].shape
    inside = (ti >= 0) & (ti < th) & (tj >= 0) & (tj < tw)
    inside &= np.hypot(gx - robot_xy[0], gy - robot_xy[1]) <= radius
    truth = np.full(gx.shape, np.nan, np.float32)
    truth[inside] = ~truth_map["obstacle"][ti[inside], tj[inside]]
    known_any = np.zeros(gx.shape, bool)
    for g in grids.values():
        known_any |= g.data != 255
    cells = known_any & np.isfinite(truth)
    unexplored = next(iter(maps.values())).cost_params.unexplored_cost
    out = {}
    for k, g in grids.items():
        pred_trav = g.data[cells] <= unexplored
        known = g.data[cells] != 255
        out[k] = float(np.mean(known & (pred_trav == (truth[cells] >= 0.5)))) if cells.any() else float("nan")
    out["cells"] = int(cells.sum())
    return out, grids


def evaluate_drive(seed: int, cfg: TerrainEvalConfig, engine, *, progress=None, keep_maps: bool = False,
                   defaults=None) -> tuple[DriveResult, dict[str, Scores]]:
    world = SimWorld(SimConfig(seed=seed, frames=cfg.frames, width=cfg.size[0], height=cfg.size[1],
                               tree_density=cfg.tree_density))
    pc = cfg.pipeline
    labeller = NearRangeLabeller(pc.disparity, pc.ground, pc.labels, keep_points=True)
    far_labels = replace(labeller.labels_config, max_range_m=cfg.far_m)
    stereo_range = labeller.labels_config.max_range_m
    lr_config = pc.terrain
    long_range = LongRange(lr_config, pc.bands, pc.classifier, engine=engine, default_weights=defaults)
    online = long_range.classifier
    offline = load_default_classifier(defaults, pc.classifier, engine.path)
    maps = {"online": TerrainMap(pc.map), "baseline": TerrainMap(pc.map), "stereo100": TerrainMap(pc.map)}
    scores = {f"{region}_{method}": Scores() for region in ("near", "far")
              for method in ("online", "baseline", "stereo100")}
    scores["far_offline"] = Scores()
    scores["far_surface_cost"] = Scores()
    dr = DriveResult(seed, world.cfg.change_frame)
    for i in range(cfg.frames):
        frame = world.render(i)
        nr = labeller.process(frame)
        vs, us, rng, truth, flat = truth_pixels(frame, world, cfg)
        near, far = rng <= stereo_range, (rng > stereo_range) & (rng <= cfg.far_m)
        # baselines: the stereo labels at their range, and pushed to far_m
        far_img = np.zeros(frame.left.shape[:2], np.uint8)
        labels_far = None
        if nr.ok and nr.points is not None:
            conf = np.where(nr.disparity.measured, nr.disparity.confidence, np.float32(0.0))
            labels_far = label_near_range(nr.points, nr.ground, far_labels, conf, frame.left_info)
            far_img = labels_far.image
        for name, img in (("baseline", nr.labels.image), ("stereo100", far_img)):
            score = LABEL_TRAVERSABILITY[img[vs, us]]
            scores[f"near_{name}"].add(score[near], truth[near])
            scores[f"far_{name}"].add(score[far], truth[far])
            getattr(dr, f"far_acc_{name}").append(Scores.acc_of(score[far], truth[far]))
        t0 = time.perf_counter()
        pose = frame.pose
        if i % lr_config.every_n_frames:  # the long range rests this frame (as in the pipeline): near range only
            xy, probs, conf = near_observations(nr.labels, nr.ground, frame.left_info)
            if len(xy):
                for name in ("online", "baseline"):
                    maps[name].add_observations(xy, probs, pose, conf * 4.0, 1.0, frame="base_link",
                                                stamp_ns=frame.header.stamp_ns)
            dr.ms.append((time.perf_counter() - t0) * 1e3)
            dr.far_acc_online.append(np.nan)  # not scored: no long-range classes this frame
            dr.far_acc_offline.append(np.nan)
            continue
        ff = long_range.observe(frame.left, frame.left_info, nr.ground)
        if ff is None:
            flat_far = far & np.isfinite(flat)
            for name, region in (("near_online", near), ("far_online", far), ("far_offline", far)):
                scores[name].add(np.full(region.sum(), np.nan), truth[region])
            scores["far_surface_cost"].add(np.full(flat_far.sum(), np.nan), flat[flat_far] > 0.5)
            dr.far_acc_online.append(0.0)
            dr.far_acc_offline.append(0.0)
            continue
        res_on = classify(ff, nr.labels, online, learn=True, min_label_confidence=lr_config.min_label_confidence)
        _, trav_on = paint(res_on.probabilities, ff.plan, ff.shape, lr_config.image_step)
        xy, probs, conf = near_observations(nr.labels, nr.ground, frame.left_info)
        if len(xy):
            for name in ("online", "baseline"):
                maps[name].add_observations(xy, probs, pose, conf * 4.0, 1.0, frame="base_link",
                                            stamp_ns=frame.header.stamp_ns)
        fxy, fprobs, fweights = map_observations(res_on)
        maps["online"].add_observations(fxy, fprobs, pose, fweights, res_on.confidence, frame="base_link",
                                        stamp_ns=frame.header.stamp_ns)
        dr.ms.append((time.perf_counter() - t0) * 1e3)
        res_off = classify(ff, nr.labels, offline, learn=False)
        _, trav_off = paint(res_off.probabilities, ff.plan, ff.shape, lr_config.image_step)
        if labels_far is not None:
            bxy, bprobs, bconf = near_observations(labels_far, nr.ground, frame.left_info)
            if len(bxy):
                maps["stereo100"].add_observations(bxy, bprobs, pose, bconf, 1.0, frame="base_link",
                                                   stamp_ns=frame.header.stamp_ns)
        s_on, s_off = trav_on[vs, us], trav_off[vs, us]
        scores["near_online"].add(s_on[near], truth[near])
        scores["far_online"].add(s_on[far], truth[far])
        scores["far_offline"].add(s_off[far], truth[far])
        flat_far = far & np.isfinite(flat)
        scores["far_surface_cost"].add(s_on[flat_far], flat[flat_far] > 0.5)
        dr.far_acc_online.append(Scores.acc_of(s_on[far], truth[far]))
        dr.far_acc_offline.append(Scores.acc_of(s_off[far], truth[far]))
        dr.err_online.append(res_on.err_vs_stereo)
        dr.err_offline.append(res_off.err_vs_stereo)
        if progress is not None:
            progress(seed, i)
    robot = maps["online"].robot_xy_yaw[:2]
    accs, grids = _map_accuracy(maps, world.traversability_map(cfg.frames - 1), robot)
    dr.map_acc, dr.map_acc_baseline, dr.map_coverage = accs["online"], accs["baseline"], accs["cells"]
    dr.map_acc_stereo100 = accs["stereo100"]
    if keep_maps:
        dr.maps = {"maps": maps, "truth": world.traversability_map(cfg.frames - 1), "robot": robot}
    return dr, scores


def summarize(drives: list[DriveResult], scores: list[dict[str, Scores]], cfg: TerrainEvalConfig,
              stereo_range: float) -> dict:
    merged = {k: Scores(sum((s[k].score for s in scores), []), sum((s[k].truth for s in scores), []))
              for k in scores[0]}
    near_on, _, near_cov = merged["near_online"].metrics()
    far_on, auroc_on, far_cov = merged["far_online"].metrics()
    far_off, auroc_off, _ = merged["far_offline"].metrics()

    def mean(values):
        v = np.asarray([x for d in values for x in d], np.float64)
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else float("nan")

    def reference(name: str, title: str) -> dict:
        near_acc, _, near_cov = merged[f"near_{name}"].metrics()
        far_acc, far_auc, far_cov = merged[f"far_{name}"].metrics()
        return {"name": title, "near_acc": near_acc, "far_acc": far_acc, "far_auroc": far_auc,
                "near_coverage": near_cov, "far_coverage": far_cov,
                "map_cell_acc_100m": float(np.nanmean([getattr(d, f"map_acc_{name}") for d in drives])),
                "frames_to_adapt": float(np.mean([_adapt(getattr(d, f"far_acc_{name}"), d.change_frame,
                                                          cfg.adapt_window) for d in drives]))}

    adapt = [d.frames_to_adapt(cfg.adapt_window) for d in drives]
    out = {
        "stereo_range_m": stereo_range,
        "near_acc": near_on, "far_acc": far_on, "far_auroc": auroc_on,
        "err_vs_stereo_offline": mean([d.err_offline for d in drives]),
        "err_vs_stereo_online": mean([d.err_online for d in drives]),
        "frames_to_adapt": float(np.mean(adapt)),
        "map_cell_acc_100m": float(np.nanmean([d.map_acc for d in drives])),
        "ms_per_frame": mean([d.ms for d in drives]),
        "far_acc_offline": far_off, "far_auroc_offline": auroc_off,
        "far_auroc_surface_cost": merged["far_surface_cost"].metrics()[1],
        "near_coverage": near_cov, "far_coverage": far_cov,
        "frames_to_adapt_per_drive": adapt,
        "map_cells": int(sum(d.map_coverage for d in drives)),
        "drives": len(drives), "frames_per_drive": cfg.frames, "seeds": list(cfg.seeds),
        "long_range_every_n_frames": cfg.pipeline.terrain.every_n_frames,
        "baseline": reference("baseline", f"stereo-only map: stereo labels to {stereo_range:g} m, no long-range "
                                          "vision"),
        "baseline_stereo_100m": reference("stereo100", f"stereo labels pushed to {cfg.far_m:g} m (reference)"),
    }
    for key in ("baseline", "baseline_stereo_100m"):
        out[key] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out[key].items()}
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}
