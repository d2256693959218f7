"""Pictures for docs/detect.md: detections with their stereo range, next to the HOG baseline's."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from perception.detect.data import CLASS_COLORS, CLASSES

SHORT = {"pedestrian": "ped", "cyclist": "cyc", "car": "car", "truck": "truck"}


def draw_detections(image: np.ndarray, detections, *, truth=None, thickness: int = 2) -> np.ndarray:
    """Boxes in their class colour, labelled with class, score and range (when ranged); truth boxes thin white."""
    out = image.copy()
    for box in (truth if truth is not None else []):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x0, y0), (x1, y1), (255, 255, 255), 1)
    for d in detections:
        x0, y0, x1, y1 = (int(round(v)) for v in d.corners)
        rgb = CLASS_COLORS[CLASSES.index(d.class_id)] if d.class_id in CLASSES else (255, 255, 0)
        colour = (int(rgb[2]), int(rgb[1]), int(rgb[0]))
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thickness)
        text = f"{SHORT.get(d.class_id, d.class_id)} {d.score:.2f}"
        if d.range_m is not None:
            text += f" {d.range_m:.1f}m"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        ty = max(y0, th + 3)
        cv2.rectangle(out, (x0, ty - th - 3), (x0 + tw + 2, ty), colour, -1)
        cv2.putText(out, text, (x0 + 1, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def draw_boxes(image: np.ndarray, boxes, scores, colour=(0, 200, 255), label="HOG") -> np.ndarray:
    out = image.copy()
    for b, s in zip(boxes, scores):
        x0, y0, x1, y1 = (int(round(v)) for v in b)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2)
        cv2.putText(out, f"{label} {s:.2f}", (x0, max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1,
                    cv2.LINE_AA)
    return out


def _title(img: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((22, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, img])


def save_examples(folder: Path, sim_examples, camvid_examples) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for image, res, hog_boxes, gt, _ in sim_examples:
        left = _title(draw_detections(image, res.detections, truth=gt),
                      f"ours: synthetic 640x480, stereo range ({res.ms:.0f} ms); white: truth")
        right = _title(draw_boxes(image, hog_boxes, np.ones(len(hog_boxes))), "OpenCV HOG people detector")
        rows.append(np.hstack([left, right]))
    for image, res, hog_boxes, gt, _ in camvid_examples:
        image = cv2.resize(image, (640, 480))
        s = 640 / 480
        for d in res.detections:
            d.cx, d.cy, d.width, d.height = d.cx * s, d.cy * s, d.width * s, d.height * s
        left = _title(draw_detections(image, res.detections, truth=np.asarray(gt) * s),
                      "ours: CamVid test (no stereo); white: boxes from labels")
        right = _title(draw_boxes(image, np.asarray(hog_boxes) * s, np.ones(len(hog_boxes))),
                       "OpenCV HOG people detector")
        rows.append(np.hstack([left, right]))
    paths = []
    if rows:
        path = folder / "detect_examples.jpg"
        cv2.imwrite(str(path), np.vstack(rows))
        paths.append(path)
    return paths
