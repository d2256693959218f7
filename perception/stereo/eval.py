"""Disparity accuracy against ground truth, ours and OpenCV's plain StereoSGBM, in one process.

Datasets (both rectified, ground-truth disparity in pixels of the images as shipped; checked photometrically:
warping the right image by the GT disparity matches the left best at scale 1, not 0.5 or 2):
- Middlebury 2014 Motorcycle from scikit-image (`skimage.data.stereo_motorcycle()`): 741x500, a quarter of
  the full 2964x2000 resolution; f = 994.978 px, baseline 193.001 mm, doffs 31.086 px (quarter-scale values);
  unknown GT = inf. Search range: the dataset's ndisp = 270 at full size -> 67.5 here -> 80 (multiple of 16).
  doffs matters for depth (Z = f*B / (d + doffs)), not for the disparity comparison.
- Middlebury 2006 Aloe from OpenCV's samples: aloeL.jpg / aloeR.jpg, 1282x1110, aloeGT.png at the same full
  resolution (0 = unknown, max 211 px). Search range: 224 (the GT range rounded up to a multiple of 16).

Metrics, over pixels whose ground truth is known:
- bad2_pct: share of pixels whose error exceeds 2 px, an invalid estimate counted as bad;
- avg_err_px: mean |error| over pixels where both ground truth and the estimate are valid;
- density_pct: share with a valid estimate;
- ms: median wall time of `repeats` runs, methods interleaved so machine noise hits all alike.

Baseline (`baseline_sgbm`): cv2.StereoSGBM_create with OpenCV's typical parameters, on the BGR images:
minDisparity 0, numDisparities = the search range above, blockSize 5, P1 = 8*3*5^2 = 600, P2 = 32*3*5^2 = 2400,
disp12MaxDiff 1, preFilterCap 63, uniquenessRatio 10, speckleWindowSize 100, speckleRange 2, mode MODE_SGBM.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from perception.errors import InputError, SourceError
from perception.stereo.disparity import DisparityConfig, DisparityResult, compute_disparity

MOTORCYCLE_NDISP_FULL = 270  # Middlebury 2014 calib.txt, for the 2964x2000 images
MOTORCYCLE_SCALE = 0.25  # scikit-image ships the quarter-size pair
BASELINE_PARAMS = dict(
    minDisparity=0, blockSize=5, P1=8 * 3 * 5 ** 2, P2=32 * 3 * 5 ** 2, disp12MaxDiff=1, preFilterCap=63,
    uniquenessRatio=10, speckleWindowSize=100, speckleRange=2, mode=cv2.STEREO_SGBM_MODE_SGBM,
)


@dataclass
class StereoPair:
    """A rectified pair with ground truth disparity of the left image (px, NaN = unknown)."""

    name: str
    left: np.ndarray
    right: np.ndarray
    gt: np.ndarray
    num_disparities: int
    fx: float = float("nan")
    baseline: float = float("nan")
    doffs: float = 0.0

    def __post_init__(self) -> None:
        if self.left.shape[:2] != self.gt.shape or self.right.shape[:2] != self.gt.shape:
            raise InputError("images and ground truth differ in size", subject=f"eval pair '{self.name}'")

    def scaled(self, s: float) -> "StereoPair":
        """The pair resized by `s` (INTER_AREA images, nearest-neighbour GT times s; doffs and f scale too)."""
        if s == 1.0:
            return self
        h, w = self.gt.shape
        size = (max(16, round(w * s)), max(16, round(h * s)))
        sx = size[0] / w
        gt = cv2.resize(self.gt, size, interpolation=cv2.INTER_NEAREST) * sx
        return replace(
            self, left=cv2.resize(self.left, size, interpolation=cv2.INTER_AREA),
            right=cv2.resize(self.right, size, interpolation=cv2.INTER_AREA), gt=gt.astype(np.float32),
            num_disparities=round16(self.num_disparities * sx), fx=self.fx * sx, doffs=self.doffs * sx,
        )


def round16(n: float) -> int:
    return int(max(16, math.ceil(n / 16.0) * 16))


def load_motorcycle() -> StereoPair:
    """The Middlebury 2014 Motorcycle pair shipped inside scikit-image (BGR, quarter size)."""
    try:
        from skimage import data  # the `test` extra
    except ImportError as err:
        raise SourceError("scikit-image is not installed", subject="Middlebury Motorcycle pair",
                          hint="pip install 'perception[test]' (scikit-image ships the pair)") from err
    left, right, gt = data.stereo_motorcycle()
    gt = np.where(np.isfinite(gt), gt, np.nan).astype(np.float32)
    return StereoPair(
        "motorcycle", cv2.cvtColor(left, cv2.COLOR_RGB2BGR), cv2.cvtColor(right, cv2.COLOR_RGB2BGR), gt,
        num_disparities=round16(MOTORCYCLE_NDISP_FULL * MOTORCYCLE_SCALE), fx=994.978, baseline=0.193001,
        doffs=31.086,
    )


def aloe_folder(data_dir: str | Path | None = None) -> Path | None:
    """$PERCEPTION_DATA/opencv_samples/aloe when it holds the pair and its ground truth, else None."""
    root = data_dir or os.environ.get("PERCEPTION_DATA")
    if not root:
        return None
    folder = Path(root) / "opencv_samples" / "aloe"
    return folder if all((folder / n).is_file() for n in ("aloeL.jpg", "aloeR.jpg", "aloeGT.png")) else None


def load_aloe(folder: str | Path) -> StereoPair:
    """OpenCV's copy of the Middlebury 2006 Aloe pair (full size) with aloeGT.png (px, 0 = unknown)."""
    folder = Path(folder)
    left = cv2.imread(str(folder / "aloeL.jpg"), cv2.IMREAD_COLOR)
    right = cv2.imread(str(folder / "aloeR.jpg"), cv2.IMREAD_COLOR)
    gt8 = cv2.imread(str(folder / "aloeGT.png"), cv2.IMREAD_UNCHANGED)
    if left is None or right is None or gt8 is None:
        raise InputError("cannot read the Aloe images", subject=str(folder))
    if gt8.ndim == 3:
        gt8 = gt8[:, :, 0]
    gt = np.where(gt8 > 0, gt8.astype(np.float32), np.nan).astype(np.float32)
    return StereoPair("aloe", left, right, gt, num_disparities=round16(float(gt8.max()) + 1))


def disparity_metrics(disparity: np.ndarray, gt: np.ndarray, threshold: float = 2.0) -> dict[str, float]:
    """avg_err_px, bad2_pct, density_pct of `disparity` (NaN invalid) over the pixels where `gt` is finite."""
    known = np.isfinite(gt)
    n = int(known.sum())
    if n == 0:
        raise InputError("ground truth has no known pixel", subject="disparity_metrics")
    valid = np.isfinite(disparity) & known
    err = np.abs(np.where(valid, disparity, 0.0) - np.where(known, gt, 0.0))
    bad = known & (~valid | (err > threshold))
    nv = int(valid.sum())
    return {
        "avg_err_px": float(err[valid].mean()) if nv else float("nan"),
        "bad2_pct": 100.0 * float(bad.sum()) / n,
        "density_pct": 100.0 * nv / n,
    }


def baseline_sgbm(left: np.ndarray, right: np.ndarray, num_disparities: int) -> np.ndarray:
    """Plain OpenCV StereoSGBM (BASELINE_PARAMS) -> float32 disparity, NaN invalid."""
    matcher = cv2.StereoSGBM_create(numDisparities=num_disparities, **BASELINE_PARAMS)
    raw = matcher.compute(left, right)
    out = raw.astype(np.float32) / 16.0
    out[raw < 0] = np.nan
    return out


def our_config(pair: StereoPair, **overrides) -> DisparityConfig:
    """The configuration `perception eval stereo` reports as ours: the defaults, the pair's search range, and
    hole filling on (the benchmark counts invalid pixels as bad). Overrides give the reported variants."""
    params = dict(num_disparities=pair.num_disparities, fill_holes=True)
    params.update(overrides)
    return DisparityConfig(**params)


VARIANTS = {
    "full_lr": dict(lr_check=True),  # + full left-right check with a mirrored right disparity map
    "unfilled": dict(fill_holes=False),  # measured pixels only: what a robot should act on
    "half_scale": dict(scale=0.5),  # matching at half resolution
}


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def confidence_metrics(result: DisparityResult, gt: np.ndarray, threshold: float = 2.0) -> dict[str, float]:
    """How well confidence ranks errors: share of MEASURED pixels (not filled) with error > 2 px, over all of
    them and over the most confident half."""
    pick = result.measured & np.isfinite(gt)
    err = np.abs(result.disparity[pick] - gt[pick])
    if err.size == 0:
        return {"measured_err2_pct": float("nan"), "top50conf_err2_pct": float("nan")}
    order = np.argsort(-result.confidence[pick], kind="stable")
    top = err[order[: max(1, err.size // 2)]]
    return {"measured_err2_pct": 100.0 * float((err > threshold).mean()),
            "top50conf_err2_pct": 100.0 * float((top > threshold).mean())}


def evaluate_pair(pair: StereoPair, repeats: int = 3, log: Callable[[str], None] = _progress) -> dict:
    """Run baseline, ours and our variants `repeats` times, interleaved; metrics + median ms for each."""
    methods: dict[str, Callable[[], object]] = {
        "baseline": lambda: baseline_sgbm(pair.left, pair.right, pair.num_disparities),
        "ours": lambda: compute_disparity(pair.left, pair.right, our_config(pair)),
    }
    for name, overrides in VARIANTS.items():
        methods[name] = lambda o=overrides: compute_disparity(pair.left, pair.right, our_config(pair, **o))
    times: dict[str, list[float]] = {k: [] for k in methods}
    outputs: dict[str, object] = {}
    for i in range(max(1, repeats)):
        for name, fn in methods.items():
            t0 = time.perf_counter()
            outputs[name] = fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
        log(f"  {pair.name}: run {i + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.0f} ms" for k, v in times.items()))
    result = {}
    for name, out in outputs.items():
        disparity = out.disparity if isinstance(out, DisparityResult) else out
        metrics = disparity_metrics(disparity, pair.gt)
        metrics["ms"] = float(np.median(times[name]))
        if name == "ours":
            metrics.update(confidence_metrics(out, pair.gt))
        result[name] = metrics
    result["_outputs"] = outputs
    return result


def run_eval(data_dir: str | Path | None = None, *, scale: float = 1.0, repeats: int = 3,
             log: Callable[[str], None] = _progress, keep_outputs: bool = False) -> dict:
    """The `perception eval stereo` JSON: ours per pair, "baseline" per pair, "variants", "vs_baseline", "notes".

    `scale` < 1 evaluates a downscaled copy of each pair (GT scaled alike) to run faster (tests).
    """
    pairs: list[StereoPair] = []
    notes: list[str] = []
    log("loading Middlebury Motorcycle (scikit-image)")
    pairs.append(load_motorcycle())
    folder = aloe_folder(data_dir)
    if folder is None:
        notes.append("aloe skipped: $PERCEPTION_DATA/opencv_samples/aloe (aloeL.jpg, aloeR.jpg, aloeGT.png) not found")
        log(notes[-1])
    else:
        log(f"loading Aloe from {folder}")
        pairs.append(load_aloe(folder))
    out: dict = {"baseline": {}, "variants": {k: {} for k in VARIANTS}, "vs_baseline": {},
                 "eval_scale": float(scale), "repeats": int(repeats)}
    outputs = {}
    for pair in pairs:
        pair = pair.scaled(scale)
        h, w = pair.gt.shape
        log(f"{pair.name}: {w}x{h}, {pair.num_disparities} disparities")
        res = evaluate_pair(pair, repeats, log)
        outputs[pair.name] = (pair, res.pop("_outputs"))
        out[pair.name] = res["ours"]
        out["baseline"][pair.name] = res["baseline"]
        for k in VARIANTS:
            out["variants"][k][pair.name] = res[k]
        out["vs_baseline"][pair.name] = {
            "bad2_ratio": res["ours"]["bad2_pct"] / max(res["baseline"]["bad2_pct"], 1e-9),
            "time_ratio": res["ours"]["ms"] / max(res["baseline"]["ms"], 1e-9),
        }
        log(f"{pair.name}: ours bad2 {res['ours']['bad2_pct']:.2f}% in {res['ours']['ms']:.0f} ms; "
            f"baseline bad2 {res['baseline']['bad2_pct']:.2f}% in {res['baseline']['ms']:.0f} ms")
    if notes:
        out["notes"] = notes
    if keep_outputs:
        out["_outputs"] = outputs
    return out


def colorize_disparity(disparity: np.ndarray, max_disp: float) -> np.ndarray:
    """BGR picture of a disparity map (turbo colour map; invalid = black)."""
    d = np.nan_to_num(disparity, nan=0.0, posinf=0.0, neginf=0.0)
    img = cv2.applyColorMap(np.clip(d * (255.0 / max(max_disp, 1e-6)), 0, 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    img[~np.isfinite(disparity)] = 0
    return img


def save_picture(pair: StereoPair, ours: DisparityResult, baseline: np.ndarray, folder: str | Path,
                 tile_width: int = 240) -> Path:
    """One small PNG for the docs: left image, ground truth, baseline / ours (measured only), ours filled,
    confidence, each labelled; invalid = black."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    h, w = pair.gt.shape
    size = (tile_width, max(1, round(h * tile_width / w)))
    vmax = float(np.nanmax(pair.gt))
    measured = np.where(ours.measured, ours.disparity, np.nan)
    left = pair.left if pair.left.ndim == 3 else cv2.cvtColor(pair.left, cv2.COLOR_GRAY2BGR)
    conf = cv2.applyColorMap((np.clip(ours.confidence, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    conf[~ours.measured] = 0
    tiles = [
        ("left image", left), ("ground truth", colorize_disparity(pair.gt, vmax)),
        ("OpenCV SGBM (baseline)", colorize_disparity(baseline, vmax)),
        ("ours, measured", colorize_disparity(measured, vmax)), ("ours, holes filled", colorize_disparity(ours.disparity, vmax)),
        ("ours, confidence", conf),
    ]
    cells = []
    for label, img in tiles:
        cell = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        cv2.rectangle(cell, (0, 0), (8 + 8 * len(label), 20), (0, 0, 0), -1)
        cv2.putText(cell, label, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        cells.append(cell)
    grid = np.vstack([np.hstack(cells[:3]), np.hstack(cells[3:])])
    grid = (grid // 16) * 16 + 8  # 16 levels per channel: a docs picture, several times smaller as PNG
    path = folder / f"stereo_{pair.name}.png"
    cv2.imwrite(str(path), grid, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path
