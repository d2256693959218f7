"""Stereo range and 3-D position of each detection, from the disparities inside its box (not the centre pixel).

A box holds the object, but also background beside it (between a pedestrian's legs, around a cyclist) and ground
below it, and the centre pixel may be a hole. `box_disparity` takes the valid disparities of the box's inner
region (`inner_x`, `inner_y`: the share of width / height kept, centred), histograms them in LOG disparity (bins of
`bin_rel`, i.e. equal relative range steps, so near and far objects are treated alike), takes the strongest mode
(ties: the nearer, the foreground) and returns the mean of the disparities within +-`mode_rel` of that mode (at
least +-`window_px`: SGBM's sub-pixel disparities lock to whole pixels at small disparities, and the mean over the
two neighbouring whole values undoes that where a median would not; measured in docs/detect.md).
The spread (median absolute deviation / disparity) says how clean the estimate is.

Position (left optical frame): Z = fx * B / (d + doffs), X and Y of the box centre at that depth. `range_m` is the
distance to the visible surface along that ray (what the stereo pair measures; what a collision warning needs).

Size check: the metric width and height of the box at that depth against the class's plausible range
(`CLASS_SIZES`); sides cut by the image border are not checked. `size_ok` False flags a detection whose range and
box disagree (a wrong range, or a wrong class).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.errors import InputError

# plausible (min, max) metric width and height of a box of each class, m (width: any viewing angle)
CLASS_SIZES = {
    "pedestrian": ((0.25, 1.5), (0.8, 2.3)),
    "cyclist": ((0.3, 2.4), (0.9, 2.4)),
    "car": ((1.2, 6.0), (0.9, 2.6)),
    "truck": ((1.6, 14.0), (1.8, 4.8)),
    "person": ((0.25, 1.5), (0.8, 2.3)),
    "bicycle": ((0.3, 2.4), (0.5, 2.4)),
    "bus": ((2.0, 15.0), (2.2, 4.8)),
}


@dataclass
class StereoRange:
    range_m: float  # camera to the object's visible surface, along the box-centre ray
    position: tuple[float, float, float]  # X, Y, Z (m), left optical frame
    disparity: float  # px
    n_valid: int  # valid disparities used
    spread: float  # MAD / disparity of the mode's members (0 = perfectly flat)
    size_m: tuple[float, float]  # metric box width, height
    size_ok: bool | None  # None when not checkable


def box_disparity(disparity: np.ndarray, box, *, inner_x: float = 0.6, inner_y: float = 0.8, bin_rel: float = 0.04,
                  mode_rel: float = 0.06, window_px: float = 0.75, min_valid: int = 6, min_disparity: float = 0.2):
    """(disparity, n_valid, spread) of the object in `box` (x0, y0, x1, y1), or None without enough valid pixels."""
    h, w = disparity.shape
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    a = int(np.clip(np.floor(cx - bw * inner_x / 2), 0, w - 1))
    b = int(np.clip(np.ceil(cx + bw * inner_x / 2), a + 1, w))
    c = int(np.clip(np.floor(cy - bh * inner_y / 2), 0, h - 1))
    d = int(np.clip(np.ceil(cy + bh * inner_y / 2), c + 1, h))
    vals = disparity[c:d, a:b].ravel()
    vals = vals[np.isfinite(vals) & (vals > min_disparity)]
    if vals.size < min_valid:
        return None
    logd = np.log(vals)
    lo, hi = float(logd.min()), float(logd.max())
    nbins = max(1, int(np.ceil((hi - lo) / bin_rel)) + 1)
    hist = np.bincount(((logd - lo) / bin_rel).astype(np.int64), minlength=nbins).astype(np.float64)
    if nbins >= 3:
        hist = np.convolve(hist, [1.0, 2.0, 1.0], mode="same")
    best = np.flatnonzero(hist >= hist.max() * 0.999)[-1]  # strongest mode; ties go to the nearer
    peak = float(np.exp(lo + (best + 0.5) * bin_rel))
    # the object's disparities: within +-mode_rel of the mode, but at least +-window_px (SGBM's sub-pixel values
    # lock to whole pixels at small disparities; the mean over both neighbours undoes that, a median would not)
    half = max(mode_rel * peak, window_px)
    members = vals[np.abs(vals - peak) <= half]
    if members.size < max(3, min_valid // 2):
        members = vals
    dmed = float(np.median(members))
    members = members[np.abs(members - dmed) <= half]  # re-centre on the members, then average
    dmean = float(np.mean(members)) if members.size else dmed
    spread = float(np.median(np.abs(members - dmean)) / max(dmean, 1e-6)) if members.size else 1.0
    return dmean, int(members.size), spread


def refine_disparity(left: np.ndarray, right: np.ndarray, disparity: np.ndarray, box, d0: float, *,
                     inner_x: float = 0.6, inner_y: float = 0.8, window_px: float = 0.75, search_rel: float = 0.2,
                     search_px: float = 1.0, step: float = 0.125, min_pixels: int = 30, min_zncc: float = 0.6):
    """Object-level sub-pixel refinement: the whole object (the box's inner pixels whose disparity is within the
    mode window of `d0`) is matched as ONE block against the right image, over d0 +- max(search_px, search_rel *
    d0) in `step` px with linear interpolation, by zero-mean normalised cross-correlation, and the peak is refined
    by a parabola. Hundreds of pixels per block average out SGBM's per-pixel sub-pixel bias. Returns the refined
    disparity, or None when the block is too small, textureless (peak ZNCC < min_zncc) or the peak is at the edge."""
    h, w = disparity.shape
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    a = int(np.clip(np.floor(cx - bw * inner_x / 2), 0, w - 1))
    b = int(np.clip(np.ceil(cx + bw * inner_x / 2), a + 1, w))
    c = int(np.clip(np.floor(cy - bh * inner_y / 2), 0, h - 1))
    e = int(np.clip(np.ceil(cy + bh * inner_y / 2), c + 1, h))
    region = disparity[c:e, a:b]
    half = max(0.06 * d0, window_px)
    rows, cols = np.nonzero(np.isfinite(region) & (np.abs(region - d0) <= half))
    if rows.size < min_pixels:
        return None
    ys, xs = rows + c, cols + a
    gl = gray(left)
    gr = gray(right)
    lv = gl[ys, xs]
    lv = lv - lv.mean()
    ln = float(np.sqrt((lv * lv).sum()))
    if ln < 1e-3:
        return None
    span = max(search_px, search_rel * d0)
    cands = np.arange(d0 - span, d0 + span + step / 2, step, dtype=np.float32)
    xr = xs[None, :].astype(np.float32) - cands[:, None]  # right-image columns, one row per candidate
    x_lo = np.floor(xr).astype(np.int64)
    f = xr - x_lo
    ok = (x_lo >= 0) & (x_lo + 1 < w)
    x_lo = np.clip(x_lo, 0, w - 2)
    rv = gr[ys[None, :], x_lo] * (1 - f) + gr[ys[None, :], x_lo + 1] * f
    if not ok.all(axis=0).any():
        return None
    keep = ok.all(axis=0)  # pixels valid for every candidate
    if keep.sum() < min_pixels:
        return None
    lk = lv[keep] - lv[keep].mean()
    rk = rv[:, keep] - rv[:, keep].mean(axis=1, keepdims=True)
    z = (rk @ lk) / (np.sqrt((rk * rk).sum(1)) * np.sqrt((lk * lk).sum()) + 1e-9)
    k = int(np.argmax(z))
    if z[k] < min_zncc or k == 0 or k == len(z) - 1:
        return None
    denom = z[k - 1] - 2 * z[k] + z[k + 1]
    off = 0.5 * (z[k - 1] - z[k + 1]) / denom if denom < 0 else 0.0
    return float(cands[k] + np.clip(off, -0.5, 0.5) * step)


def gray(img: np.ndarray) -> np.ndarray:
    """A BGR or grey image as float32 grey (what `refine_disparity` matches; convert a frame once, not per box)."""
    img = np.asarray(img)
    if img.ndim == 3:
        img = img.astype(np.float32) @ np.array([0.114, 0.587, 0.299], np.float32)  # BGR
    return img.astype(np.float32, copy=False)


def size_ok(class_id: str, width_m: float, height_m: float, *, check_width: bool = True,
            check_height: bool = True, tolerance: float = 1.3) -> bool | None:
    sizes = CLASS_SIZES.get(class_id)
    if sizes is None or not (check_width or check_height):
        return None
    (wlo, whi), (hlo, hhi) = sizes
    ok = True
    if check_width:
        ok &= wlo / tolerance <= width_m <= whi * tolerance
    if check_height:
        ok &= hlo / tolerance <= height_m <= hhi * tolerance
    return bool(ok)


def range_box(disparity: np.ndarray, box, class_id: str, *, fx: float, baseline: float, cx: float, cy: float,
              fy: float | None = None, doffs: float = 0.0, left: np.ndarray | None = None,
              right: np.ndarray | None = None, **kw) -> StereoRange | None:
    """Stereo range, position and size check of one box (see module doc). With the rectified `left` and `right`
    images the box's disparity is refined by matching the object as one block (`refine_disparity`)."""
    disparity = np.asarray(disparity)
    if disparity.ndim != 2:
        raise InputError(f"disparity has shape {disparity.shape}", subject="detection ranging",
                         hint="pass the HxW disparity map of the left image")
    if not (fx > 0 and baseline > 0):
        raise InputError(f"fx={fx}, baseline={baseline}", subject="detection ranging", hint="both must be > 0")
    fy = fy or fx
    est = box_disparity(disparity, box, **kw)
    if est is None:
        return None
    d, n, spread = est
    if left is not None and right is not None:
        refined = refine_disparity(left, right, disparity, box, d)
        if refined is not None and refined > 0:
            d = refined
    z = fx * baseline / (d + doffs) if d + doffs > 0 else float("inf")
    if not np.isfinite(z):
        return None
    x0, y0, x1, y1 = (float(v) for v in box)
    u, v = (x0 + x1) / 2, (y0 + y1) / 2
    X, Y = (u - cx) * z / fx, (v - cy) * z / fy
    wm, hm = (x1 - x0) * z / fx, (y1 - y0) * z / fy
    h, w = disparity.shape
    cut_x = x0 <= 1 or x1 >= w - 1
    cut_y = y0 <= 1 or y1 >= h - 1
    ok = size_ok(class_id, wm, hm, check_width=not cut_x, check_height=not cut_y)
    return StereoRange(float(np.sqrt(X * X + Y * Y + z * z)), (float(X), float(Y), float(z)), d, n, spread,
                       (float(wm), float(hm)), ok)


def range_detections(detections, disparity: np.ndarray, *, fx: float, baseline: float, cx: float, cy: float,
                     fy: float | None = None, doffs: float = 0.0, left=None, right=None,
                     **kw) -> list[StereoRange | None]:
    """Range every Detection2D in place (its `position` set, or left None) and return the StereoRange list."""
    out = []
    for det in detections:
        r = range_box(disparity, det.corners, det.class_id, fx=fx, baseline=baseline, cx=cx, cy=cy, fy=fy,
                      doffs=doffs, left=left, right=right, **kw)
        det.position = r.position if r is not None else None
        out.append(r)
    return out
