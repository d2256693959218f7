"""Training and evaluation samples for the detector: synthetic drives with truth, CamVid boxes from label components.

A sample is (bgr uint8 image, boxes float32 Nx4 [x0, y0, x1, y1] in its pixels, classes int64 N, ignore float32 Mx4):
`ignore` boxes are objects too small, too occluded or too far to count; a detection on one is neither a true nor a
false positive in evaluation, and training does not push the network down there.

Synthetic: `sim_samples(seed, ...)` renders a drive of `perception.sim` (which knows every actor's class and tight
visible box, `box2d_visible`). Real: `camvid_boxes(label)` turns CamVid's per-pixel labels 8 Car, 9 Pedestrian and
10 Bicyclist into boxes: connected components of each class, split where the shape says a component holds several
objects side by side (a component much wider than one object of its class is cut at the valleys of its column
profile). CamVid has no depth, so the depth cue cannot be used there; the boxes are rough (groups of people that
touch and overlap vertically stay one box, a car behind a car may merge) and that is said wherever they are used.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("pedestrian", "cyclist", "car", "truck")
CLASS_COLORS = ((220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 60, 100))  # RGB, Cityscapes-like
CAMVID_TO_CLASS = {9: 0, 10: 1, 8: 2}  # CamVid label index -> our class (CamVid has no truck: its Car holds vans)
# widest plausible width / height of one object of each class (beyond it a component is split)
MAX_ASPECT = {0: 0.75, 1: 1.6, 2: 3.0, 3: 3.5}
TYPICAL_ASPECT = {0: 0.42, 1: 0.9, 2: 1.9, 3: 2.2}


@dataclass
class Sample:
    image: np.ndarray  # HxWx3 uint8 BGR
    boxes: np.ndarray  # Nx4 float32 x0 y0 x1 y1 (pixels, x1/y1 exclusive edge)
    classes: np.ndarray  # N int64
    ignore: np.ndarray  # Mx4 float32
    source: str = ""
    truth: dict | None = None  # sim frames kept for ranging evaluation


@dataclass(frozen=True)
class TruthFilter:
    """Which truth objects count (KITTI-like "moderate"): the rest become ignore regions."""

    min_height: float = 20.0  # px at 640x480 (scaled with the image height)
    max_occlusion: float = 0.6
    max_truncation: float = 0.6
    min_pixels: int = 40  # visible pixels at 640x480 (scaled with the area)

    def scaled(self, height: int) -> "TruthFilter":
        s = height / 480.0
        return TruthFilter(self.min_height * s, self.max_occlusion, self.max_truncation, max(4, int(self.min_pixels * s * s)))


def sim_objects(truth: dict, height: int, flt: TruthFilter = TruthFilter()):
    """(boxes, classes, ignore, kept object dicts) from a sim frame's truth."""
    f = flt.scaled(height)
    boxes, classes, ignore, kept = [], [], [], []
    for o in truth["objects"]:
        if o["cls"] not in CLASSES or not o.get("box2d_visible") or o.get("pixels_visible", 0) <= 0:
            continue
        x0, y0, x1, y1 = (float(v) for v in o["box2d_visible"])
        box = [x0, y0, x1 + 1.0, y1 + 1.0]  # inclusive pixel indices -> edges
        good = (box[3] - box[1] >= f.min_height and o["occlusion"] <= f.max_occlusion
                and o["truncation"] <= f.max_truncation and o["pixels_visible"] >= f.min_pixels)
        if good:
            boxes.append(box)
            classes.append(CLASSES.index(o["cls"]))
            kept.append(o)
        else:
            ignore.append(box)
    return (np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int64),
            np.array(ignore, np.float32).reshape(-1, 4), kept)


def sim_samples(seed: int, frames: int, *, size=(384, 288), stride: int = 4, actor_density: float = 10.0,
                keep_truth: bool = False, first: int = 0):
    """Yield `frames` samples of the synthetic drive `seed` (every `stride`-th frame), rendered at `size`."""
    from perception.sim import SimConfig, SimWorld

    w, h = size
    world = SimWorld(SimConfig(seed=seed, width=w, height=h, frames=first + frames * stride + 1,
                               actor_density=actor_density))
    for k in range(frames):
        frame = world.render(first + k * stride)
        boxes, classes, ignore, kept = sim_objects(frame.truth, h)
        truth = None
        if keep_truth:
            truth = {"frame": frame, "objects": kept}
        yield Sample(frame.left, boxes, classes, ignore, source=f"sim seed {seed} frame {first + k * stride}",
                     truth=truth)


def _split_columns(mask: np.ndarray, n: int) -> list[tuple[int, int]]:
    """Cut a component mask (h x w) into n column ranges at the lowest points of its column profile."""
    w = mask.shape[1]
    profile = cv2.GaussianBlur(mask.sum(0).astype(np.float32)[None], (0, 0), sigmaX=max(1.0, w / (4 * n)))[0]
    cuts = []
    for k in range(1, n):
        centre = int(round(k * w / n))
        half = max(1, int(w / (2.5 * n)))
        lo, hi = max(1, centre - half), min(w - 1, centre + half)
        cuts.append(lo + int(np.argmin(profile[lo:hi])) if hi > lo else centre)
    edges = [0, *sorted(set(cuts)), w]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def label_boxes(label: np.ndarray, mapping: dict[int, int], *, min_area: int = 25, min_height: float = 8.0):
    """Boxes from a class-index label image: (boxes Nx4, classes N, ignore Mx4), components split by shape."""
    boxes, classes, ignore = [], [], []
    kernel = np.ones((3, 3), np.uint8)
    for label_id, cls in mapping.items():
        mask = (label == label_id).astype(np.uint8)
        if not mask.any():
            continue
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)  # cut one-pixel bridges between touching objects
        n, comp, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area < min_area:
                continue
            pieces = [(x, x + w)]
            if w > MAX_ASPECT[cls] * h:
                k = max(2, int(round(w / (TYPICAL_ASPECT[cls] * h))))
                sub = comp[y:y + h, x:x + w] == i
                pieces = [(x + a, x + b) for a, b in _split_columns(sub, k)]
            for a, b in pieces:
                sub = comp[y:y + h, a:b] == i
                rows = np.flatnonzero(sub.any(1))
                cols = np.flatnonzero(sub.any(0))
                if rows.size == 0 or sub.sum() < min_area // 2:
                    continue
                box = [a + cols[0], y + rows[0], a + cols[-1] + 1, y + rows[-1] + 1]
                (boxes if box[3] - box[1] >= min_height else ignore).append(box)
                if box[3] - box[1] >= min_height:
                    classes.append(cls)
    return (np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int64),
            np.array(ignore, np.float32).reshape(-1, 4))


def camvid_root(data: str | Path) -> Path:
    data = Path(data)
    return data / "camvid" if (data / "camvid").is_dir() else data


def camvid_files(data: str | Path, split: str) -> list[tuple[Path, Path]]:
    root = camvid_root(data)
    images = sorted((root / split).glob("*.png")) + sorted((root / split).glob("*.jpg"))
    pairs = []
    for img in sorted(images):
        lab = root / f"{split}annot" / (img.stem + ".png")
        if lab.is_file():
            pairs.append((img, lab))
    return pairs


def camvid_samples(data: str | Path, split: str, limit: int = 0, min_height: float = 12.0):
    """CamVid images of `split` (train / val / test) with boxes from their label components."""
    pairs = camvid_files(data, split)
    if limit:
        pairs = pairs[:limit]
    for img_path, lab_path in pairs:
        image = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        label = cv2.imread(str(lab_path), cv2.IMREAD_UNCHANGED)
        if image is None or label is None:
            continue
        if label.ndim == 3:
            label = label[:, :, 0]
        boxes, classes, ignore = label_boxes(label, CAMVID_TO_CLASS, min_height=min_height)
        yield Sample(image, boxes, classes, ignore, source=f"camvid {split} {img_path.name}")
