"""Detection metrics: VOC-style AP at IoU 0.5 (all-point interpolation) with ignore regions, and matching.

Per class: detections of all images sorted by score; each is a true positive when it overlaps (IoU >= 0.5) a
not-yet-matched ground-truth box of its class (the best such), else it is dropped when it lies on an ignore region
(IoU >= 0.5 with one, or at least half its area inside one: objects too small / occluded to count), else it is a
false positive. AP = area under the precision envelope over all recall points (VOC 2010+). mAP50 = mean over
the classes that have ground truth (a class without any is reported as null and left out of the mean).
"""
from __future__ import annotations

import numpy as np

from perception.detect.decode import iou_matrix


def _ioa(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of each a box's area inside each b box."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), 2)
    area = np.prod(np.clip(a[:, 2:] - a[:, :2], 1e-9, None), 1)
    return inter / area[:, None]


def match_image(det_boxes, det_scores, gt_boxes, ignore, iou: float = 0.5):
    """Per detection: index of the matched GT (>= 0), -1 false positive, -2 ignored. Greedy by score."""
    det_boxes = np.asarray(det_boxes, np.float32).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    ignore = np.asarray(ignore, np.float32).reshape(-1, 4)
    out = np.full(len(det_boxes), -1, np.int64)
    if len(det_boxes) == 0:
        return out
    order = np.argsort(-np.asarray(det_scores, np.float32), kind="stable")
    ious = iou_matrix(det_boxes, gt_boxes) if len(gt_boxes) else np.zeros((len(det_boxes), 0))
    taken = np.zeros(len(gt_boxes), bool)
    ign = np.zeros(len(det_boxes), bool)
    if len(ignore):
        ign = (iou_matrix(det_boxes, ignore).max(1) >= iou) | (_ioa(det_boxes, ignore).max(1) >= 0.5)
    for i in order:
        if ious.shape[1]:
            cand = np.where(taken, -1.0, ious[i])
            j = int(np.argmax(cand))
            if cand[j] >= iou:
                taken[j] = True
                out[i] = j
                continue
        if ign[i]:
            out[i] = -2
    return out


def average_precision(scores, tp, n_gt: int) -> float:
    """VOC all-point interpolated AP from detection scores and their TP flags (ignored ones removed)."""
    if n_gt == 0:
        return float("nan")
    scores = np.asarray(scores, np.float64)
    tp = np.asarray(tp, bool)
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = tp[order]
    ctp, cfp = np.cumsum(tp), np.cumsum(~tp)
    recall = ctp / n_gt
    precision = ctp / np.maximum(ctp + cfp, 1e-9)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


class APAccumulator:
    """Collects per-image detections and truth for several classes; `result()` gives AP50 per class and mAP50."""

    def __init__(self, class_names) -> None:
        self.class_names = list(class_names)
        self.scores = {c: [] for c in self.class_names}
        self.tp = {c: [] for c in self.class_names}
        self.n_gt = {c: 0 for c in self.class_names}

    def add(self, det_boxes, det_scores, det_classes, gt_boxes, gt_classes, ignore) -> dict:
        """det_classes / gt_classes: names. Ignore regions apply to every class. Returns per class the match
        arrays ({class: (det index array, match array)})."""
        det_boxes = np.asarray(det_boxes, np.float32).reshape(-1, 4)
        gt_boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
        det_scores = np.asarray(det_scores, np.float32).reshape(-1)
        matches = {}
        for c in self.class_names:
            di = np.array([k for k, n in enumerate(det_classes) if n == c], np.int64)
            gi = np.array([k for k, n in enumerate(gt_classes) if n == c], np.int64)
            m = match_image(det_boxes[di], det_scores[di], gt_boxes[gi], ignore)
            self.n_gt[c] += len(gi)
            keep = m != -2
            self.scores[c] += list(det_scores[di][keep])
            self.tp[c] += list(m[keep] >= 0)
            matches[c] = (di, np.where(m >= 0, gi[np.clip(m, 0, None)] if len(gi) else -1, m))
        return matches

    def result(self) -> dict:
        ap = {c: average_precision(self.scores[c], self.tp[c], self.n_gt[c]) for c in self.class_names}
        valid = [v for v in ap.values() if np.isfinite(v)]
        return {"ap50": {c: (round(v, 4) if np.isfinite(v) else None) for c, v in ap.items()},
                "map50": round(float(np.mean(valid)), 4) if valid else 0.0,
                "gt_counts": {c: n for c, n in self.n_gt.items() if n}}
