"""Pictures drawn with OpenCV only: learning curves, confusion matrices, overlays (no matplotlib needed)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (200, 200, 200)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img, text, org, scale=0.4, color=BLACK, thickness=1):
    cv2.putText(img, text, (int(org[0]), int(org[1])), FONT, scale, color, thickness, cv2.LINE_AA)


def learning_curve(history: list[dict], path: str | Path, *, title: str = "training") -> Path:
    """Train loss (left axis, blue), train-batch pixel accuracy (right axis, orange) and, where present, val mIoU
    (green) and val pixel accuracy (red) per step (right axis, 0..1)."""
    w, h, left, right, top, bottom = 720, 420, 60, 60, 50, 40
    img = np.full((h, w, 3), 255, np.uint8)
    train = [(e["step"], e["loss"]) for e in history if "loss" in e]
    val = [(e["step"], e["val_miou"], e.get("val_pixel_acc")) for e in history if "val_miou" in e]
    steps = [s for s, _ in train] + [s for s, *_ in val]
    smax = max(steps) if steps else 1
    lmax = max([l for _, l in train], default=1.0) * 1.05 or 1.0
    x0, x1, y0, y1 = left, w - right, h - bottom, top
    cv2.rectangle(img, (x0, y1), (x1, y0), BLACK, 1)
    X = lambda s: x0 + (x1 - x0) * s / max(smax, 1)  # noqa: E731
    YL = lambda v: y0 - (y0 - y1) * v / lmax  # noqa: E731
    YR = lambda v: y0 - (y0 - y1) * v  # noqa: E731
    for i in range(5):
        v = lmax * i / 4
        _text(img, f"{v:.2f}", (5, YL(v) + 4), color=(180, 80, 0))
        _text(img, f"{i / 4:.2f}", (x1 + 5, YR(i / 4) + 4), color=(0, 120, 0))
        cv2.line(img, (x0, int(YR(i / 4))), (x1, int(YR(i / 4))), GREY, 1)
    for i in range(5):
        s = smax * i / 4
        _text(img, f"{int(s)}", (X(s) - 10, y0 + 15))
    if len(train) > 1:
        losses = np.array([l for _, l in train])
        k = max(1, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        xs = [s for s, _ in train][k - 1:]
        pts = np.array([[X(s), YL(v)] for s, v in zip(xs, smooth)], np.int32)
        cv2.polylines(img, [pts], False, (180, 80, 0), 2, cv2.LINE_AA)
    accs = [(e["step"], e["train_pixel_acc"]) for e in history if "train_pixel_acc" in e]
    if len(accs) > 1:
        values = np.array([a for _, a in accs])
        k = max(1, len(values) // 50)
        smooth = np.convolve(values, np.ones(k) / k, mode="valid")
        pts = np.array([[X(s), YR(v)] for (s, _), v in zip(accs[k - 1:], smooth)], np.int32)
        cv2.polylines(img, [pts], False, (0, 140, 255), 2, cv2.LINE_AA)
    for idx, color in ((1, (0, 150, 0)), (2, (0, 0, 200))):
        pts = np.array([[X(e[0]), YR(e[idx])] for e in val if e[idx] is not None], np.int32)
        if len(pts):
            cv2.polylines(img, [pts], False, color, 2, cv2.LINE_AA)
            for p in pts:
                cv2.circle(img, tuple(int(v) for v in p), 3, color, -1)
    _text(img, title, (x0, 18), 0.5)
    _text(img, "train loss (left axis)", (x0, 40), 0.4, (180, 80, 0))
    _text(img, "train-batch pixel acc (right axis)", (x0 + 170, 40), 0.4, (0, 140, 255))
    if val:
        _text(img, "val mIoU", (x0 + 420, 40), 0.4, (0, 150, 0))
        _text(img, "val pixel acc", (x0 + 500, 40), 0.4, (0, 0, 200))
    _text(img, "step", (w // 2, h - 8))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path


def confusion_image(conf: np.ndarray, names: list[str], path: str | Path, *, title: str = "") -> Path:
    """Row-normalised confusion matrix (rows truth, columns prediction) as a heat map with percentages."""
    k = len(names)
    cell, left, top = 44, 110, 120
    img = np.full((top + k * cell + 20, left + k * cell + 20, 3), 255, np.uint8)
    rows = conf.astype(np.float64) / np.maximum(conf.sum(1, keepdims=True), 1)
    for i in range(k):
        for j in range(k):
            v = rows[i, j]
            shade = int(255 - 200 * v)
            color = (shade, shade, 255) if i != j else (shade, 255, shade)
            x, y = left + j * cell, top + i * cell
            cv2.rectangle(img, (x, y), (x + cell, y + cell), color, -1)
            cv2.rectangle(img, (x, y), (x + cell, y + cell), GREY, 1)
            if v >= 0.005:
                _text(img, f"{100 * v:.0f}", (x + 8, y + 27), 0.42)
        _text(img, names[i][:12], (5, top + i * cell + 27), 0.42)
        lbl = np.full((30, top - 10, 3), 255, np.uint8)
        _text(lbl, names[i][:14], (2, 20), 0.42)
        lbl = cv2.rotate(lbl, cv2.ROTATE_90_COUNTERCLOCKWISE)
        x = left + i * cell + 7
        img[0: lbl.shape[0], x: x + lbl.shape[1]] = np.minimum(img[0: lbl.shape[0], x: x + lbl.shape[1]], lbl)
    _text(img, title or "rows: truth, columns: prediction (% of row)", (5, 15), 0.4)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path


def overlay(bgr: np.ndarray, color_mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    return cv2.addWeighted(bgr, 1.0 - alpha, color_mask, alpha, 0.0)
