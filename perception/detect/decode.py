"""Letterbox, non-maximum suppression and the output decoders (ours and users' YOLO / NanoDet exports), in numpy.

Boxes are always returned at INPUT resolution: every decoder works in network-input pixels, then
`Letterbox.to_input` undoes the resize (and padding) exactly, for any input size and aspect ratio.

Decoders (the `decoding` of the model's first output, or `decoder.format` in its metadata / YAML):
- `centernet` (ours): heatmap (1 x C x h x w, probabilities) + ltrb (1 x 4 x h x w, pixels from the cell centre);
  peaks are the 3x3 local maxima above threshold.
- `yolov5`: 1 x N x (5 + C) rows of (cx, cy, w, h, objectness, class scores...), score = obj * class score
  (also YOLOv7 and the many "v5-style" exports). Layout NLC, or NCL (transposed) when the metadata says so.
- `yolov8`: 1 x (4 + C) x N (cx, cy, w, h, class scores...), no objectness (YOLOv8 / YOLO11 / v9 exports);
  layout NCL as exported by ultralytics, NLC accepted.
- `nanodet`: 1 x N x (C + 4 * (reg_max + 1)) NanoDet-Plus export: class scores (sigmoid already applied), then
  the distance distributions (softmax over reg_max + 1 bins, integral = distance in strides) for l, t, r, b;
  N cells of the grids at `strides` (default 8, 16, 32, 64), centre priors at (x * stride, y * stride).
`decoder` keys: num_classes, letterbox (bool; default true for yolo, false for nanodet), pad_value, strides,
reg_max, score_threshold, nms_iou, normalized (yolo boxes in 0..1 of the input size), centered (letterbox pads
both sides equally; false: image at top-left, as NanoDet and some exports do).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from perception.errors import ModelError

FORMATS = ("centernet", "yolov5", "yolov8", "nanodet")


@dataclass(frozen=True)
class Letterbox:
    """Input (w, h) -> network (W, H): x_net = x_in * scale_x + pad_x (and y). Same scale both axes if kept."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    in_w: int
    in_h: int
    net_w: int
    net_h: int

    @classmethod
    def fit(cls, in_w: int, in_h: int, net_w: int, net_h: int, *, keep_ratio: bool = True,
            centered: bool = True) -> "Letterbox":
        if not keep_ratio:
            return cls(net_w / in_w, net_h / in_h, 0.0, 0.0, in_w, in_h, net_w, net_h)
        s = min(net_w / in_w, net_h / in_h)
        rw, rh = int(round(in_w * s)), int(round(in_h * s))
        px, py = ((net_w - rw) // 2, (net_h - rh) // 2) if centered else (0, 0)
        # the exact scale of the resized image, per axis (rounding makes them differ by < 1 px over the image)
        return cls(rw / in_w, rh / in_h, float(px), float(py), in_w, in_h, net_w, net_h)

    @property
    def resized(self) -> tuple[int, int]:
        return int(round(self.in_w * self.scale_x)), int(round(self.in_h * self.scale_y))

    def apply(self, image: np.ndarray, pad_value: int = 114) -> np.ndarray:
        rw, rh = self.resized
        interp = cv2.INTER_AREA if rw < self.in_w else cv2.INTER_LINEAR
        small = cv2.resize(image, (rw, rh), interpolation=interp) if (rw, rh) != (self.in_w, self.in_h) else image
        if (rw, rh) == (self.net_w, self.net_h):
            return small
        out = np.full((self.net_h, self.net_w) + image.shape[2:], pad_value, image.dtype)
        px, py = int(self.pad_x), int(self.pad_y)
        out[py:py + rh, px:px + rw] = small
        return out

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """Nx4 x0 y0 x1 y1 in network pixels -> input pixels, clipped to the input image."""
        b = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
        b[:, [0, 2]] = (b[:, [0, 2]] - self.pad_x) / self.scale_x
        b[:, [1, 3]] = (b[:, [1, 3]] - self.pad_y) / self.scale_y
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, self.in_w)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, self.in_h)
        return b

    def to_network(self, boxes: np.ndarray) -> np.ndarray:
        b = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
        b[:, [0, 2]] = b[:, [0, 2]] * self.scale_x + self.pad_x
        b[:, [1, 3]] = b[:, [1, 3]] * self.scale_y + self.pad_y
        return b


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), 2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), 1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), 1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.5, classes: np.ndarray | None = None,
        max_out: int = 300) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best first. With `classes`, boxes of different classes never
    suppress each other."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if classes is not None:  # offset trick: shift each class far apart
        offset = (np.asarray(classes, np.float32) * (float(boxes.max()) + 1.0))[:, None]
        boxes = boxes + offset
    order = np.argsort(-scores, kind="stable")
    keep = []
    suppressed = np.zeros(len(boxes), bool)
    ious = None
    if len(boxes) <= 2000:
        ious = iou_matrix(boxes, boxes)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) >= max_out:
            break
        row = ious[i] if ious is not None else iou_matrix(boxes[i:i + 1], boxes)[0]
        suppressed |= row > iou
    return np.array(keep, np.int64)


def class_thresholds(thresholds, names: list[str], default: float) -> np.ndarray:
    """Per-class score thresholds from {name: t} (unknown names refused), a number, or None."""
    out = np.full(len(names), float(default), np.float32)
    if thresholds is None:
        return out
    if isinstance(thresholds, (int, float)):
        out[:] = float(thresholds)
        return out
    for name, t in dict(thresholds).items():
        if name not in names:
            raise ModelError(f"threshold for unknown class '{name}'", subject="detector",
                             hint=f"classes are {', '.join(names)}")
        out[names.index(name)] = float(t)
    return out


# --- decoders: raw outputs -> (boxes Nx4 in network pixels, scores N, classes N) --------------------------------
def decode_centernet(heat: np.ndarray, ltrb: np.ndarray, thresholds: np.ndarray, stride: int = 4, top_k: int = 200):
    heat, ltrb = heat[0], ltrb[0]
    c, h, w = heat.shape
    peaks = np.stack([cv2.dilate(heat[k], np.ones((3, 3), np.uint8)) for k in range(c)])
    mask = (heat >= peaks) & (heat >= thresholds[:, None, None])
    cls, ys, xs = np.nonzero(mask)
    scores = heat[cls, ys, xs]
    if len(scores) > top_k:
        top = np.argsort(-scores)[:top_k]
        cls, ys, xs, scores = cls[top], ys[top], xs[top], scores[top]
    cx, cy = (xs + 0.5) * stride, (ys + 0.5) * stride
    d = ltrb[:, ys, xs]
    boxes = np.stack([cx - d[0], cy - d[1], cx + d[2], cy + d[3]], 1).astype(np.float32)
    return boxes, scores.astype(np.float32), cls.astype(np.int64)


def _rows(out: np.ndarray, layout: str, width: int) -> np.ndarray:
    """The output as N x width rows, whichever of NLC / NCL it comes in."""
    a = np.asarray(out)
    a = a.reshape(a.shape[-2], a.shape[-1]) if a.ndim == 3 else a
    if layout == "NCL" or (layout not in ("NLC",) and a.shape[0] == width and a.shape[1] != width):
        a = a.T
    if a.shape[1] != width:
        raise ModelError(f"output rows have {a.shape[1]} values, expected {width}", subject="detector decoder")
    return a


def _xywh(rows: np.ndarray) -> np.ndarray:
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).astype(np.float32)


def decode_yolo(out: np.ndarray, num_classes: int, thresholds: np.ndarray, *, version: str, layout: str = "",
                normalized: bool = False, net_size=(640, 640)):
    width = num_classes + (5 if version == "yolov5" else 4)
    rows = _rows(out, layout, width).astype(np.float32)
    if version == "yolov5":
        cls_scores = rows[:, 5:] * rows[:, 4:5]
    else:
        cls_scores = rows[:, 4:]
    cls = cls_scores.argmax(1)
    scores = cls_scores[np.arange(len(rows)), cls]
    keep = scores >= thresholds[cls]
    boxes = _xywh(rows[keep])
    if normalized:
        boxes *= np.array([net_size[0], net_size[1]] * 2, np.float32)
    return boxes, scores[keep], cls[keep].astype(np.int64)


def nanodet_priors(net_w: int, net_h: int, strides=(8, 16, 32, 64)) -> np.ndarray:
    """N x 3 (x, y, stride) centre priors in NanoDet-Plus order (stride by stride, row-major)."""
    out = []
    for s in strides:
        gw, gh = int(np.ceil(net_w / s)), int(np.ceil(net_h / s))
        ys, xs = np.mgrid[0:gh, 0:gw]
        out.append(np.stack([xs.ravel() * s, ys.ravel() * s, np.full(gw * gh, s)], 1))
    return np.concatenate(out).astype(np.float32)


def decode_nanodet(out: np.ndarray, num_classes: int, thresholds: np.ndarray, *, net_size, strides=(8, 16, 32, 64),
                   reg_max: int = 7, layout: str = ""):
    width = num_classes + 4 * (reg_max + 1)
    rows = _rows(out, layout, width).astype(np.float32)
    priors = nanodet_priors(net_size[0], net_size[1], strides)
    if len(priors) != len(rows):
        raise ModelError(f"{len(rows)} output rows but strides {tuple(strides)} on {net_size[0]}x{net_size[1]} give "
                         f"{len(priors)} cells", subject="nanodet decoder", hint="set decoder.strides in the YAML")
    scores_all = rows[:, :num_classes]
    cls = scores_all.argmax(1)
    scores = scores_all[np.arange(len(rows)), cls]
    keep = np.flatnonzero(scores >= thresholds[cls])
    dist = rows[keep, num_classes:].reshape(-1, 4, reg_max + 1)
    dist = np.exp(dist - dist.max(2, keepdims=True))
    dist /= dist.sum(2, keepdims=True)
    d = (dist * np.arange(reg_max + 1, dtype=np.float32)).sum(2) * priors[keep, 2:3]
    x, y = priors[keep, 0], priors[keep, 1]
    boxes = np.stack([x - d[:, 0], y - d[:, 1], x + d[:, 2], y + d[:, 3]], 1).astype(np.float32)
    return boxes, scores[keep], cls[keep].astype(np.int64)
