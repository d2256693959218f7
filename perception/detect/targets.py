"""Training targets and augmentation for the centre-point detector (numpy; the losses are in `train.py`).

For each object: a 2-D Gaussian of its centre on its class's heatmap (sigma = box size / 6 per axis, in cells,
at least `min_sigma`), exactly 1 at the cell holding the centre; box regression (log of the distances from the
cell centre to the four edges, in stride units) at every cell where that object's Gaussian is above
`reg_threshold` (smaller objects win shared cells), weighted by the Gaussian. Cells inside ignore boxes are
masked out of the heatmap loss unless they belong to a counted object.
"""
from __future__ import annotations

import cv2
import numpy as np

from perception.detect.models import STRIDE


def make_targets(boxes: np.ndarray, classes: np.ndarray, ignore: np.ndarray, num_classes: int, width: int,
                 height: int, *, stride: int = STRIDE, min_sigma: float = 0.6, reg_threshold: float = 0.3):
    """(heatmap CxHxW, heat_mask HxW, reg 4xHxW log-ltrb, reg_weight HxW) for a crop of width x height px."""
    gw, gh = width // stride, height // stride
    heat = np.zeros((num_classes, gh, gw), np.float32)
    mask = np.ones((gh, gw), np.float32)
    reg = np.zeros((4, gh, gw), np.float32)
    reg_w = np.zeros((gh, gw), np.float32)
    owner_area = np.full((gh, gw), np.inf, np.float32)
    ys = (np.arange(gh, dtype=np.float32) + 0.5) * stride
    xs = (np.arange(gw, dtype=np.float32) + 0.5) * stride
    for x0, y0, x1, y1 in ignore:
        a, b = int(np.floor(x0 / stride)), int(np.ceil(x1 / stride))
        c, d = int(np.floor(y0 / stride)), int(np.ceil(y1 / stride))
        mask[max(c, 0):max(d, 0), max(a, 0):max(b, 0)] = 0.0
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])) if len(boxes) else []
    for i in order:  # large first, so smaller objects overwrite shared regression cells
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        bw, bh = x1 - x0, y1 - y0
        if bw < 1 or bh < 1:
            continue
        cx, cy = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride
        ci, cj = int(np.clip(np.floor(cy), 0, gh - 1)), int(np.clip(np.floor(cx), 0, gw - 1))
        if not (0 <= cx < gw and 0 <= cy < gh):
            continue
        sx, sy = max(min_sigma, bw / stride / 6), max(min_sigma, bh / stride / 6)
        gx = np.exp(-((np.arange(gw) + 0.5 - (cj + 0.5)) ** 2) / (2 * sx * sx)).astype(np.float32)
        gy = np.exp(-((np.arange(gh) + 0.5 - (ci + 0.5)) ** 2) / (2 * sy * sy)).astype(np.float32)
        g = gy[:, None] * gx[None, :]
        k = int(classes[i])
        heat[k] = np.maximum(heat[k], g)
        heat[k, ci, cj] = 1.0
        # regression cells: inside the box, on the Gaussian's core
        inside = (xs[None, :] > x0) & (xs[None, :] < x1) & (ys[:, None] > y0) & (ys[:, None] < y1)
        cells = (g >= reg_threshold) & inside
        cells[ci, cj] = True
        take = cells & (bw * bh <= owner_area)
        owner_area[take] = bw * bh
        l = np.maximum(xs[None, :] - x0, 0.5)
        t = np.maximum(ys[:, None] - y0, 0.5)
        r = np.maximum(x1 - xs[None, :], 0.5)
        b = np.maximum(y1 - ys[:, None], 0.5)
        for c, v in enumerate((l, t, r, b)):
            reg[c][take] = np.log(np.broadcast_to(v, (gh, gw))[take] / stride)
        reg_w[take] = g[take]
        # an object's own cells are never ignored
        a, bb = max(int(x0 // stride), 0), min(int(np.ceil(x1 / stride)), gw)
        c0, d0 = max(int(y0 // stride), 0), min(int(np.ceil(y1 / stride)), gh)
        mask[c0:d0, a:bb] = np.maximum(mask[c0:d0, a:bb], (g[c0:d0, a:bb] > 0.1).astype(np.float32))
    return heat, mask, reg, reg_w


def augment(image: np.ndarray, boxes: np.ndarray, ignore: np.ndarray, crop_w: int, crop_h: int, base_scale: float,
            rng: np.random.Generator, scale_range=(0.7, 1.4)):
    """Random scale (around `base_scale`), crop of crop_w x crop_h, left-right flip, colour jitter.

    Returns (crop, boxes, keep index, ignore): boxes clipped to the crop; objects left with under half their
    area become ignore regions."""
    s = base_scale * float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
    h, w = image.shape[:2]
    sw, sh = max(crop_w, int(round(w * s))), max(crop_h, int(round(h * s)))
    sx, sy = sw / w, sh / h
    x_off = int(rng.integers(0, sw - crop_w + 1))
    y_off = int(rng.integers(0, sh - crop_h + 1))
    M = np.array([[sx, 0, -x_off], [0, sy, -y_off]], np.float32)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    crop = cv2.warpAffine(image, M, (crop_w, crop_h), flags=interp, borderMode=cv2.BORDER_REFLECT)

    def tf(b):
        b = b.astype(np.float32).reshape(-1, 4) * np.array([sx, sy, sx, sy], np.float32)
        return b - np.array([x_off, y_off, x_off, y_off], np.float32)

    bx, ig = tf(boxes), tf(ignore)
    clipped = bx.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, crop_w)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, crop_h)
    area = np.prod(np.maximum(bx[:, 2:] - bx[:, :2], 1e-6), 1)
    area_c = np.prod(np.maximum(clipped[:, 2:] - clipped[:, :2], 0), 1)
    keep = area_c >= 0.5 * area
    partial = (~keep) & (area_c > 0)
    ig = np.concatenate([ig, clipped[partial]])
    bx = clipped[keep]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
        bx = np.stack([crop_w - bx[:, 2], bx[:, 1], crop_w - bx[:, 0], bx[:, 3]], 1) if len(bx) else bx
        ig = np.stack([crop_w - ig[:, 2], ig[:, 1], crop_w - ig[:, 0], ig[:, 3]], 1) if len(ig) else ig
    crop = crop.astype(np.float32)
    crop = crop * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25) + rng.normal(0, 6, 3).astype(np.float32)
    crop = np.clip(crop, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(crop), bx.reshape(-1, 4), np.flatnonzero(keep), ig.reshape(-1, 4)
