"""Ground plane and near-range labels against the synthetic world's ground truth (`perception eval stereo --synthetic`).

Each frame goes through the product path (`NearRangeLabeller`: our SGBM disparity on the rendered pair -> points
-> ground -> labels) and is compared with truth derived from the sim (`perception.sim`: truth depth, instance,
camera pose, and the terrain heightfield):

Ground plane, two references:
- the TRUE LOCAL GROUND PLANE: a least-squares plane through the true 3-D points (from truth depth) of the terrain
  pixels (no object: instance < 0; not sky) within the estimator's range (forward distance 0.5..12 m). This is the
  plane a perfect estimator would find; errors against it: normal angle (deg), camera height (m), pitch and roll
  (deg, same convention as `perception.stereo.ground`), horizon row (mean |dv| over the columns, px);
- the TRUE CAMERA POSE (`vs_pose`): pitch and roll of the camera relative to gravity (the up vector is the third
  row of the camera-to-odom rotation) and its height above the terrain straight below it. On hills the local
  ground is not level, so these errors include the terrain's own slope.

Labels: true per-point classes from true geometry: the true height h of each pixel's 3-D point above the terrain
heightfield at its (x, y) (vertical); usable = finite true depth, range <= max_range_m, h <= max_point_height_m;
obstacle = an object pixel (tree, rock, wall, bush, pedestrian, cyclist, car, truck: instance >= 0) with
h > obstacle_height_m; every other usable pixel is ground (terrain surface of any class, and the lowest
obstacle_height_m of objects, which no stereo geometry can tell from ground). Feet: each true obstacle point moved
straight down to the terrain (floating points, e.g. canopy seen against the sky, are dropped by the same support
test as the estimate's). The true window labels are then the SAME window rules (`classify_windows`) applied to
these true points with stereo confidence 1 and no moments filter. Compared: windows that both label (not unknown);
coverage = share of truth-labelled windows that the estimate labels. `accuracy_3class` merges super-ground with
ground and super-obstacle with obstacle (the super classes also depend on stereo density and confidence, which
truth always has: textureless object sides make the estimate say obstacle where truth says super-obstacle).

Frames: `frames` per seed spread evenly over the drive (far apart, so the temporal filter is off);
with `consecutive` the first `frames` frames in order with the configured filter.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from perception.stereo.disparity import DisparityConfig
from perception.stereo.ground import GroundConfig, angles_from_up, horizon_line, plane_from_points
from perception.stereo.labels import (
    FOOTLINE, LABEL_NAMES, OBSTACLE, SUPER_OBSTACLE, LabelConfig, NearLabels, classify_windows, project_feet,
)
from perception.stereo.near_range import NearRangeLabeller
from perception.stereo.points import disparity_to_points

MERGE3 = np.array([0, 1, 1, 2, 3, 3])  # unknown, ground-ish, footline, obstacle-ish


def sim_available() -> tuple[bool, str]:
    """(True, '') when perception.sim imports and builds; else (False, why)."""
    try:
        importlib.import_module("perception.sim.config")
        importlib.import_module("perception.sim.world")
    except Exception as err:  # any import failure of a module being written by others
        return False, f"perception.sim is not importable: {type(err).__name__}: {err}"
    return True, ""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- truth ------------------------------------------------------------------------------------------------------
def true_points(frame) -> np.ndarray:
    """HxWx3 true points in the left optical frame (NaN for sky)."""
    baseline = -frame.right_info.P[0, 3] / frame.right_info.P[0, 0]
    return disparity_to_points(frame.truth["disparity"], frame.left_info, baseline)


def true_heights(world, frame, points: np.ndarray) -> np.ndarray:
    """HxW true vertical height (m) of each point above the terrain heightfield (NaN where no point)."""
    T = np.asarray(frame.truth["camera_pose"], np.float64)
    p = points.reshape(-1, 3)
    ok = np.isfinite(p).all(1)
    out = np.full(p.shape[0], np.nan, np.float32)
    pw = p[ok].astype(np.float64) @ T[:3, :3].T + T[:3, 3]
    ground = world.terrain.height(pw[:, 0].astype(np.float32), pw[:, 1].astype(np.float32))
    out[ok] = (pw[:, 2] - ground).astype(np.float32)
    return out.reshape(points.shape[:2])


def true_up(frame) -> np.ndarray:
    """World up (gravity) in the left optical frame."""
    return np.asarray(frame.truth["camera_pose"], np.float64)[2, :3].copy()


def true_local_plane(frame, points: np.ndarray, config: GroundConfig):
    """(normal, d) of the least-squares plane through the true terrain points within range, or None."""
    inst = frame.truth["instance"]
    z = points[..., 2]
    with np.errstate(invalid="ignore"):
        m = (inst < 0) & np.isfinite(z) & (z >= config.min_range_m) & (z <= config.max_range_m)
    if m.sum() < 50:
        return None
    return plane_from_points(points[m][:: max(1, int(m.sum()) // 50000)], up=true_up(frame))


def true_pose_ground(world, frame) -> dict:
    """Camera pitch/roll relative to gravity and height above the terrain below it."""
    T = np.asarray(frame.truth["camera_pose"], np.float64)
    pitch, roll = angles_from_up(T[2, :3])
    below = float(world.terrain.height(np.array([T[0, 3]], np.float32), np.array([T[1, 3]], np.float32))[0])
    return {"pitch_deg": pitch, "roll_deg": roll, "height_m": float(T[2, 3] - below)}


def true_labels(world, frame, config: LabelConfig) -> NearLabels:
    """The true window labels (module doc): the label rules on true points and true heights."""
    pts = true_points(frame)
    hgt = true_heights(world, frame, pts)
    rng = np.sqrt(np.einsum("ijk,ijk->ij", np.nan_to_num(pts), np.nan_to_num(pts)))
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(hgt) & (rng <= config.max_range_m) & (hgt <= config.max_point_height_m)
        obstacle = usable & (frame.truth["instance"] >= 0) & (hgt > config.obstacle_height_m)
    up = true_up(frame)
    feet = project_feet(pts, hgt, obstacle, up, frame.left_info, config, rng.astype(np.float32))
    floating = np.zeros(hgt.size, bool)
    floating[feet.index[~feet.supported]] = True
    floating = floating.reshape(hgt.shape)
    usable &= ~floating
    obstacle &= ~floating
    h, w = hgt.shape
    return classify_windows(pts, hgt, obstacle, usable, np.ones((h, w), np.float32),
                            lambda keep: feet.image((h, w), keep), None, replace(config, moments=False), rng)


# --- metrics -----------------------------------------------------------------------------------------------------
def _summary(values) -> dict:
    a = np.abs(np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64))
    if a.size == 0:
        return {"n": 0, "median": None, "mean": None, "p90": None, "max": None}
    return {"n": int(a.size), "median": round(float(np.median(a)), 4), "mean": round(float(a.mean()), 4),
            "p90": round(float(np.percentile(a, 90)), 4), "max": round(float(a.max()), 4)}


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(abs(float(a @ b)) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def label_metrics(confusion: np.ndarray) -> dict:
    """Accuracy (5 classes, windows both label), balanced accuracy (mean recall of the classes present: the
    near range is mostly super-ground), 3-class accuracy, coverage and per-class precision/recall from a 6x6
    confusion matrix (rows truth, columns estimate, index = label code)."""
    c = np.asarray(confusion, np.int64)
    both = c[1:, 1:]
    n_both = int(both.sum())
    truth_known = int(c[1:, :].sum())
    m3 = np.zeros((4, 4), np.int64)
    for t in range(6):
        for e in range(6):
            m3[MERGE3[t], MERGE3[e]] += c[t, e]
    per = {}
    for k in range(1, 6):
        tp = int(c[k, k])
        per[LABEL_NAMES[k]] = {
            "truth_windows": int(c[k, 1:].sum()),
            "precision": round(tp / max(int(c[1:, k].sum()), 1), 4) if c[1:, k].sum() else None,
            "recall": round(tp / max(int(c[k, 1:].sum()), 1), 4) if c[k, 1:].sum() else None,
        }
    recalls = [v["recall"] for v in per.values() if v["recall"] is not None]
    return {
        "accuracy": round(float(np.trace(both)) / n_both, 4) if n_both else None,
        "balanced_accuracy": round(float(np.mean(recalls)), 4) if recalls else None,
        "accuracy_3class": round(float(np.trace(m3[1:, 1:])) / max(int(m3[1:, 1:].sum()), 1), 4) if n_both else None,
        "coverage": round(n_both / truth_known, 4) if truth_known else None,
        "windows_compared": n_both, "truth_windows": truth_known,
        "estimate_only_windows": int(c[0, 1:].sum()),
        "per_class": per,
    }


def run_synthetic_eval(seeds=(0, 1, 2), frames: int = 6, *, size: tuple[int, int] = (640, 480),
                       consecutive: bool = False, ground: GroundConfig | None = None,
                       labels: LabelConfig | None = None, log: Callable[[str], None] = _log,
                       keep_example: bool = False) -> dict:
    """The `perception eval stereo --synthetic` JSON (module doc). Skips with `skipped` set when perception.sim
    cannot be imported."""
    ok, why = sim_available()
    if not ok:
        log(f"synthetic eval skipped: {why}")
        return {"synthetic": True, "skipped": why}
    from perception.sim.config import SimConfig
    from perception.sim.world import SimWorld

    w, h = size
    gcfg = ground or GroundConfig(prior_pitch_deg=6.0)  # the sim's camera is mounted 6 deg down (SimConfig)
    if not consecutive:
        gcfg = replace(gcfg, temporal_filter=False)
    lcfg = labels or LabelConfig()
    confusion = np.zeros((6, 6), np.int64)
    g_err: dict[str, list] = {k: [] for k in ("normal", "height", "pitch", "roll", "horizon", "raw_normal")}
    p_err: dict[str, list] = {k: [] for k in ("pitch", "roll", "height")}
    ms: dict[str, list] = {k: [] for k in ("disparity", "ground", "labels", "ground_labels")}
    status: dict[str, int] = {}
    example, example_score = None, -1
    n_frames = 0
    for seed in seeds:
        cfg = SimConfig(seed=int(seed), width=w, height=h)
        world = SimWorld(cfg)
        idx = list(range(min(frames, cfg.frames))) if consecutive else \
            sorted(set(np.linspace(0, cfg.frames - 1, max(frames, 1)).round().astype(int).tolist()))
        fx = world.left_info.fx
        nd = int(np.ceil(fx * cfg.baseline / 1.0 / 16.0) * 16)  # nearest point 1 m away
        labeller = NearRangeLabeller(DisparityConfig(num_disparities=max(nd, 32)), gcfg, lcfg)
        for i in idx:
            frame = world.render(i)
            res = labeller.process(frame)
            n_frames += 1
            status[res.status.value] = status.get(res.status.value, 0) + 1
            for k in ("disparity", "ground", "labels"):
                ms[k].append(res.timings_ms.get(k, np.nan))
            ms["ground_labels"].append(res.timings_ms.get("ground", np.nan) + res.timings_ms.get("labels", np.nan))
            pts_true = true_points(frame)
            plane = true_local_plane(frame, pts_true, gcfg)
            pose = true_pose_ground(world, frame)
            if res.ground.ok and plane is not None:
                n_true, d_true = plane
                est = res.ground.primary
                tp, tr = angles_from_up(n_true)
                g_err["normal"].append(_angle(est.normal, n_true))
                g_err["raw_normal"].append(_angle(res.ground.planes[0].normal, n_true))
                g_err["height"].append(est.d - d_true)
                g_err["pitch"].append(res.ground.pitch_deg - tp)
                g_err["roll"].append(res.ground.roll_deg - tr)
                hz = horizon_line(n_true, frame.left_info)
                if hz is not None and res.ground.horizon is not None:
                    u = np.arange(w)
                    g_err["horizon"].append(float(np.mean(np.abs(res.ground.horizon.row(u) - hz.row(u)))))
                p_err["pitch"].append(res.ground.pitch_deg - pose["pitch_deg"])
                p_err["roll"].append(res.ground.roll_deg - pose["roll_deg"])
                p_err["height"].append(res.ground.height_m - pose["height_m"])
            truth = true_labels(world, frame, lcfg)
            t_cls, e_cls = truth.windows["class"], res.labels.windows["class"]
            np.add.at(confusion, (t_cls, e_cls), 1)
            score = int(np.isin(t_cls, (FOOTLINE, OBSTACLE, SUPER_OBSTACLE)).sum())
            if keep_example and score > example_score:
                example, example_score = (frame, res, truth), score
            log(f"seed {seed} frame {i}: {res.status.value}, height {res.ground.height_m:.3f} m, "
                f"labels {res.labels.coverage:.2f} covered, ground+labels "
                f"{ms['ground_labels'][-1]:.1f} ms")
    lm = label_metrics(confusion)
    out = {
        "synthetic": True, "seeds": [int(s) for s in seeds], "frames_per_seed": int(frames), "frames": n_frames,
        "size": f"{w}x{h}", "consecutive": bool(consecutive), "status": status,
        "ground": {
            "ok_frames": len(g_err["normal"]),
            "normal_err_deg": _summary(g_err["normal"]), "height_err_m": _summary(g_err["height"]),
            "pitch_err_deg": _summary(g_err["pitch"]), "roll_err_deg": _summary(g_err["roll"]),
            "horizon_err_px": _summary(g_err["horizon"]), "unsmoothed_normal_err_deg": _summary(g_err["raw_normal"]),
            "height_bias_m": round(float(np.mean(g_err["height"])), 4) if g_err["height"] else None,
            "vs_pose": {"pitch_err_deg": _summary(p_err["pitch"]), "roll_err_deg": _summary(p_err["roll"]),
                        "height_err_m": _summary(p_err["height"])},
        },
        "labels": {**lm, "classes": list(LABEL_NAMES), "confusion": confusion.tolist(),
                   "window": [lcfg.window_rows, lcfg.window_cols], "max_range_m": lcfg.max_range_m},
        "ms": {k: round(float(np.nanmedian(v)), 2) if v else None for k, v in ms.items()},
    }
    if keep_example:
        out["_example"] = example
    return out


# --- pictures ----------------------------------------------------------------------------------------------------
def save_confusion_png(confusion, path: str | Path, title: str = "near-range labels: truth (rows) vs estimate"
                       ) -> Path:
    """The 6x6 confusion matrix as a PNG (row-normalised shading, counts printed)."""
    import cv2

    c = np.asarray(confusion, np.int64)
    names = ["unknown", "super-gnd", "ground", "footline", "obstacle", "super-obs"]
    cell, left, top = 78, 96, 64
    img = np.full((top + 6 * cell + 30, left + 6 * cell + 10, 3), 255, np.uint8)
    rows = c.sum(1, keepdims=True).astype(np.float64)
    frac = np.where(rows > 0, c / np.maximum(rows, 1), 0.0)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i in range(6):
        for j in range(6):
            x0, y0 = left + j * cell, top + i * cell
            shade = int(255 - 200 * frac[i, j])
            col = (shade, shade, 255) if i != j else (shade, 255, shade)
            cv2.rectangle(img, (x0, y0), (x0 + cell - 2, y0 + cell - 2), col, -1)
            txt = str(int(c[i, j]))
            cv2.putText(img, txt, (x0 + 6, y0 + cell // 2), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
            cv2.putText(img, f"{100 * frac[i, j]:.0f}%", (x0 + 6, y0 + cell // 2 + 18), font, 0.4, (60, 60, 60), 1,
                        cv2.LINE_AA)
        cv2.putText(img, names[i], (4, top + i * cell + cell // 2), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, names[i], (left + i * cell + 2, top - 8), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title, (4, 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "rows: truth, columns: estimate (windows)", (4, img.shape[0] - 10), font, 0.42, (0, 0, 0), 1,
                cv2.LINE_AA)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


def save_example_png(example, path: str | Path) -> Path | None:
    """Left image with estimated labels and horizon | with true labels, for the docs."""
    import cv2

    from perception.stereo.labels import overlay

    if example is None:
        return None
    frame, res, truth = example
    a = overlay(frame.left, res.labels, res.ground.horizon)
    b = overlay(frame.left, truth, None)
    for img, text in ((a, "estimate (stereo)"), (b, "truth (sim geometry)")):
        cv2.rectangle(img, (0, 0), (8 + 9 * len(text), 22), (0, 0, 0), -1)
        cv2.putText(img, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = np.hstack([a, b])
    grid = cv2.resize(grid, (grid.shape[1] * 3 // 4, grid.shape[0] * 3 // 4), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), (grid // 8) * 8 + 4, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


__all__ = ["run_synthetic_eval", "sim_available", "true_labels", "true_local_plane", "true_pose_ground",
           "true_heights", "true_points", "label_metrics", "save_confusion_png", "save_example_png"]
