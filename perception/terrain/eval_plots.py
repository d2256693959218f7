"""Pictures of `perception eval terrain`: learning curves and maps (OpenCV drawing; no plotting dependency)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from perception.mapping.render import render_map

WHITE, GREY, BLACK = (255, 255, 255), (170, 170, 170), (0, 0, 0)


def line_plot(series: dict[str, tuple[np.ndarray, tuple[int, int, int]]], *, title: str, ylabel: str,
              marker: int | None = None, size=(720, 300), ylim=(0.0, 1.0)) -> np.ndarray:
    """Curves over frame index on a white canvas; `marker`: a vertical line (e.g. the terrain change)."""
    w, h = size
    left, right, top, bottom = 52, 150, 28, 34
    img = np.full((h, w, 3), 255, np.uint8)
    pw, ph = w - left - right, h - top - bottom
    n = max(len(v) for v, _ in series.values())
    lo, hi = ylim

    def pt(i, y):
        return (int(left + pw * i / max(n - 1, 1)), int(top + ph * (1 - (y - lo) / (hi - lo))))

    for k in range(6):
        y = lo + (hi - lo) * k / 5
        p = pt(0, y)
        cv2.line(img, (left, p[1]), (left + pw, p[1]), (230, 230, 230), 1)
        cv2.putText(img, f"{y:.1f}", (8, p[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, BLACK, 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (left + pw, top + ph), GREY, 1)
    if marker is not None:
        x = pt(marker, lo)[0]
        cv2.line(img, (x, top), (x, top + ph), (0, 0, 200), 1, cv2.LINE_AA)
        cv2.putText(img, "terrain change", (x + 4, top + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 200), 1,
                    cv2.LINE_AA)
    for j, (name, (values, colour)) in enumerate(series.items()):
        v = np.asarray(values, np.float64)
        pts = [pt(i, float(np.clip(y, lo, hi))) for i, y in enumerate(v) if np.isfinite(y)]
        if len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
        ly = top + 14 + 18 * j
        cv2.line(img, (left + pw + 10, ly - 4), (left + pw + 30, ly - 4), colour, 2)
        cv2.putText(img, name, (left + pw + 34, ly), cv2.FONT_HERSHEY_SIMPLEX, 0.4, BLACK, 1, cv2.LINE_AA)
    cv2.putText(img, title, (left, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, BLACK, 1, cv2.LINE_AA)
    cv2.putText(img, "frame", (left + pw // 2 - 20, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, BLACK, 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (left, top + ph + 26), cv2.FONT_HERSHEY_SIMPLEX, 0.38, GREY, 1, cv2.LINE_AA)
    return img


def _mean_curve(drives, attr: str) -> np.ndarray:
    n = min(len(getattr(d, attr)) for d in drives)
    return np.nanmean(np.array([np.asarray(getattr(d, attr)[:n], np.float64) for d in drives]), 0)


def truth_map_image(truth: dict, robot_xy, size_m: float = 200.0, pixels: int = 400) -> np.ndarray:
    """The world's traversability around the robot (green traversable .. red not), north up, like render_map."""
    res, (x0, y0) = truth["resolution"], truth["origin"][:2]
    n = pixels
    xs = robot_xy[0] - size_m / 2 + (np.arange(n) + 0.5) * size_m / n
    ys = robot_xy[1] + size_m / 2 - (np.arange(n) + 0.5) * size_m / n
    gx, gy = np.meshgrid(xs, ys)
    i, j = np.floor((gy - y0) / res).astype(int), np.floor((gx - x0) / res).astype(int)
    t = truth["traversability"]
    inside = (i >= 0) & (i < t.shape[0]) & (j >= 0) & (j < t.shape[1])
    img = np.full((n, n, 3), 55, np.uint8)
    v = t[i[inside], j[inside]]
    img[inside] = np.stack([np.zeros_like(v), 220 * v, 220 * (1 - v)], 1).astype(np.uint8)
    c = (n // 2, n // 2)
    cv2.circle(img, c, int(100 / size_m * n), (140, 140, 140), 1, cv2.LINE_AA)
    cv2.circle(img, c, 4, WHITE, -1)
    cv2.putText(img, "ground truth", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, WHITE, 1, cv2.LINE_AA)
    return img


def save_eval_images(folder: Path, drives, cfg) -> list[Path]:
    """terrain_learning_curve.png (mean over drives) and terrain_maps.png (first drive) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    change = drives[0].change_frame
    err = line_plot({"online": (_mean_curve(drives, "err_online"), (200, 80, 0)),
                     "offline (defaults)": (_mean_curve(drives, "err_offline"), (0, 140, 255))},
                    title="error vs stereo labels (before each update)", ylabel="share of windows", marker=change)
    acc = line_plot({"online": (_mean_curve(drives, "far_acc_online"), (200, 80, 0)),
                     "offline (defaults)": (_mean_curve(drives, "far_acc_offline"), (0, 140, 255)),
                     "stereo 12 m": (_mean_curve(drives, "far_acc_baseline"), (60, 60, 60)),
                     "stereo to 100 m": (_mean_curve(drives, "far_acc_stereo100"), (170, 170, 170))},
                    title="far accuracy 12-100 m vs ground truth", ylabel="traversable vs not", marker=change)
    paths = [folder / "terrain_learning_curve.png"]
    cv2.imwrite(str(paths[0]), np.vstack([err, acc]))
    keep = next((d.maps for d in drives if d.maps), None)
    if keep:
        maps, robot = keep["maps"], keep["robot"]
        tiles = [render_map(maps["online"], label="online (stereo + long range)"),
                 render_map(maps["baseline"], label="stereo only (12 m)"),
                 truth_map_image(keep["truth"], robot)]
        paths.append(folder / "terrain_maps.png")
        cv2.imwrite(str(paths[-1]), np.hstack(tiles))
    return paths
