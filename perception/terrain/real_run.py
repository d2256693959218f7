"""The terrain pipeline end to end on a real stereo bag (no ground truth): what it produces and how fast.

`perception eval terrain --real BAG` runs the full pipeline (rectify, stereo, ground, labels, bands, features,
online classifier, map) over the bag and reports, under "real": frames in / with a ground plane, the share of
the image the stereo labels and the long-range classes cover, the classes' shares, the online error against the
stereo labels (first and last thirds of the bag), the map's known cells and the time per stage; with
--save-images, a picture of the last frame (input, stereo labels, long-range classes) and of the map.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from perception.mapping.render import render_map
from perception.pipeline.core import Pipeline
from perception.sources import open_source
from perception.stereo.labels import colorize_labels
from perception.terrain.classifier import CLASS_NAMES


def _overlay(left: np.ndarray, codes: np.ndarray, title: str) -> np.ndarray:
    base = cv2.cvtColor(left, cv2.COLOR_GRAY2BGR) if left.ndim == 2 else left
    colour = colorize_labels(codes)
    mix = np.where((codes > 0)[..., None], cv2.addWeighted(base, 0.45, colour, 0.55, 0), base)
    cv2.putText(mix, title, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
    return mix


def run_real(bag: str | Path, *, config=None, save_images: Path | None = None, progress=None) -> dict:
    pipeline = Pipeline(config)
    frames = ground = 0
    label_cov, class_cov, errs = [], [], []
    shares = np.zeros(6)
    last = None
    with open_source(str(bag)) as source:
        for frame in source:
            res = pipeline.process(frame)
            frames += 1
            if progress is not None:
                progress(frames)
            if not res.ok or res.near is None:
                continue
            if res.near.ground.ok:
                ground += 1
            label_cov.append(float((res.near.labels.image > 0).mean()))
            far = res.terrain
            if far is not None and far.ok:
                class_cov.append(float((far.classes > 0).mean()))
                shares += np.bincount(far.classes.ravel(), minlength=6)
                errs.append(far.err_vs_stereo)
                last = res
    stages = pipeline.times.summary()
    third = max(1, len(errs) // 3)
    known = int((last.fused_map.data >= 0).sum()) if last is not None and last.fused_map is not None else 0
    out = {
        "bag": str(bag), "frames": frames, "frames_with_ground": ground,
        "label_coverage": float(np.mean(label_cov)) if label_cov else 0.0,
        "class_coverage": float(np.mean(class_cov)) if class_cov else 0.0,
        "class_shares": {name: float(shares[k + 1] / max(shares[1:].sum(), 1)) for k, name in enumerate(CLASS_NAMES)},
        "err_vs_stereo_first_third": float(np.nanmean(errs[:third])) if errs else float("nan"),
        "err_vs_stereo_last_third": float(np.nanmean(errs[-third:])) if errs else float("nan"),
        "map_known_cells": known,
        "ms": {k: v["mean_ms"] for k, v in stages.items()},
    }
    if save_images is not None and last is not None:
        save_images.mkdir(parents=True, exist_ok=True)
        left = last.frame.left
        tiles = [_overlay(left, np.zeros(left.shape[:2], np.uint8), "input (rectified left)"),
                 _overlay(left, last.near.labels.image, "stereo labels (near range)"),
                 _overlay(left, last.terrain.classes, "long-range classes (online)")]
        path = save_images / "terrain_euroc.png"
        cv2.imwrite(str(path), cv2.resize(np.hstack(tiles), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
        map_path = save_images / "terrain_euroc_map.png"
        cv2.imwrite(str(map_path), render_map(pipeline.terrain.map, size_m=40.0, resolution=0.1, ring_m=5.0,
                                              label="EuRoC: map after the bag (no odometry: robot fixed)"))
        out["images"] = [str(path), str(map_path)]
    pipeline.close()
    return out
