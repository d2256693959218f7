"""Confusion matrices and the scene-parsing metrics (pixel accuracy, mean class accuracy, mean IoU), numpy only."""
from __future__ import annotations

import numpy as np

from perception.scene.data import IGNORE


def confusion(truth: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """K x K counts, rows = truth, columns = prediction; IGNORE (and out-of-range truth) pixels skipped."""
    if truth.shape != pred.shape:
        raise ValueError(f"truth {truth.shape} and prediction {pred.shape} differ in shape")
    t = truth.reshape(-1).astype(np.int64)
    p = pred.reshape(-1).astype(np.int64)
    keep = (t != IGNORE) & (t < num_classes) & (p >= 0) & (p < num_classes)
    return np.bincount(t[keep] * num_classes + p[keep], minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def scores(conf: np.ndarray) -> dict:
    """pixel_acc, class_acc (mean per-class recall), miou, and per-class IoU / accuracy (classes present in truth)."""
    conf = conf.astype(np.float64)
    tp = np.diag(conf)
    truth = conf.sum(1)
    predicted = conf.sum(0)
    present = truth > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(present, tp / truth, np.nan)
        iou = np.where(present, tp / (truth + predicted - tp), np.nan)
    total = conf.sum()
    return {
        "pixel_acc": float(tp.sum() / total) if total else 0.0,
        "class_acc": float(np.nanmean(acc)) if present.any() else 0.0,
        "miou": float(np.nanmean(iou)) if present.any() else 0.0,
        "iou": [None if np.isnan(v) else float(v) for v in iou],
        "acc": [None if np.isnan(v) else float(v) for v in acc],
    }
