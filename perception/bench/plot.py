"""Line charts drawn with OpenCV (matplotlib is not a dependency): the soak's memory and latency curves."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from perception.errors import InputError

FONT = cv2.FONT_HERSHEY_SIMPLEX
COLOURS = ((200, 80, 0), (0, 120, 230), (40, 160, 40), (160, 0, 160))  # BGR


def _nice_ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    step = 10 ** np.floor(np.log10(raw))
    step *= min((m for m in (1, 2, 5, 10) if m * step >= raw), default=10)
    return np.arange(np.floor(lo / step) * step, hi + step * 0.5, step)


def line_chart(x: Sequence[float], series: dict[str, Sequence[float]], *, title: str, xlabel: str, ylabel: str,
               size: tuple[int, int] = (900, 320), zero_based: bool = False, min_span: float = 0.0) -> np.ndarray:
    """One panel (BGR uint8 image): `series` {legend: y values} against `x`; the y axis spans at least
    `min_span` (so that noise of a few units does not fill the panel)."""
    w, h = size
    left, right, top, bottom = 70, 20, 30, 45
    img = np.full((h, w, 3), 255, np.uint8)
    x = np.asarray(x, np.float64)
    ys = {k: np.asarray(v, np.float64) for k, v in series.items()}
    if x.size == 0 or any(v.shape != x.shape for v in ys.values()):
        raise InputError("every series needs one value per x", subject=f"chart '{title}'")
    allv = np.concatenate([v[np.isfinite(v)] for v in ys.values()]) if ys else np.zeros(1)
    allv = allv if allv.size else np.zeros(1)
    y_lo = 0.0 if zero_based else float(allv.min())
    y_hi = float(allv.max())
    if y_hi - y_lo < min_span:
        mid = 0.5 * (y_hi + y_lo)
        y_lo, y_hi = (0.0, max(y_hi, min_span)) if zero_based else (mid - min_span / 2, mid + min_span / 2)
    pad = 0.05 * (y_hi - y_lo) if y_hi > y_lo else 1.0
    yt = _nice_ticks(y_lo - (0 if zero_based else pad), y_hi + pad)
    xt = _nice_ticks(float(x.min()), float(x.max()))
    y0, y1, x0, x1 = yt[0], yt[-1], xt[0], max(xt[-1], x.max())

    def px(xv, yv):
        u = left + (np.asarray(xv) - x0) / max(x1 - x0, 1e-12) * (w - left - right)
        v = h - bottom - (np.asarray(yv) - y0) / max(y1 - y0, 1e-12) * (h - top - bottom)
        return u, v

    for t in yt:
        _, v = px(x0, t)
        cv2.line(img, (left, int(v)), (w - right, int(v)), (225, 225, 225), 1)
        cv2.putText(img, f"{t:g}", (4, int(v) + 4), FONT, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    for t in xt:
        u, _ = px(t, y0)
        if u <= w - right + 1:
            cv2.line(img, (int(u), top), (int(u), h - bottom), (235, 235, 235), 1)
            cv2.putText(img, f"{t:g}", (int(u) - 12, h - bottom + 16), FONT, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    for i, (name, v) in enumerate(ys.items()):
        ok = np.isfinite(v)
        u, vv = px(x[ok], v[ok])
        pts = np.stack([u, vv], 1).round().astype(np.int32)
        colour = COLOURS[i % len(COLOURS)]
        if len(pts) > 1:
            cv2.polylines(img, [pts], False, colour, 2, cv2.LINE_AA)
        elif len(pts) == 1:
            cv2.circle(img, tuple(int(c) for c in pts[0]), 3, colour, -1)
        cv2.putText(img, name, (left + 10 + 220 * i, top + 16), FONT, 0.45, colour, 1, cv2.LINE_AA)
    cv2.putText(img, title, (left, 20), FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (w // 2 - 40, h - 8), FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (4, top - 12), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def save_panels(path: str | Path, panels: Sequence[np.ndarray]) -> Path:
    """Stack chart panels vertically into one PNG at `path` (its folder is created)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError("the plot is written as PNG", subject=str(path), hint="give a path ending in .png")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.vstack(list(panels))):
        raise InputError("could not be written", subject=str(path))
    return path
