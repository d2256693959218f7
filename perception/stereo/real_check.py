"""Ground plane and near-range labels on the real data of $PERCEPTION_DATA: numbers and pictures for the docs.

- KITTI street pair (`kitti_street_pair/`, rectified, fx = fy = 718.856, cx = 607.1928, cy = 185.2157): the
  cameras are 1.65 m above the road (KITTI setup). Baseline: KITTI's calib.txt for odometry sequences 00-02 gives
  P1[0,3] = -386.1448, i.e. 386.1448 / 718.856 = 0.5372 m, which we use; the data README's 0.573 m is the value
  hard-coded in slambook2 (where the pair comes from) and makes every length 6.7 % longer (height 1.79 m).
- EuRoC bag (`euroc_stereo_bag/`): raw pairs rectified with the bag's camera_info (`BagSource` +
  `NearRangeLabeller`), a MAV camera looking down at the machine-hall floor.

`run_real_check(data_dir, save_dir)` (data_dir None: $PERCEPTION_DATA; "": none) returns {"kitti": {...}, "euroc": {...}} (a key is missing, with a note, when
its data is absent) and writes labels_kitti.png, ground_kitti.png, labels_euroc.png to `save_dir` when given.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from perception.stereo.disparity import DisparityConfig
from perception.stereo.ground import GroundConfig
from perception.stereo.labels import GROUND, LabelConfig, SUPER_GROUND, overlay
from perception.stereo.near_range import NearRangeLabeller

KITTI_FX, KITTI_CX, KITTI_CY = 718.856, 607.1928, 185.2157
KITTI_BASELINE = 386.1448 / 718.856  # KITTI odometry calib.txt, sequences 00-02
KITTI_README_BASELINE = 0.573  # the data README's (slambook2's) value
KITTI_CAMERA_HEIGHT = 1.65


def _quantised_png(path: Path, img: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), (img // 8) * 8 + 4, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


def height_picture(left: np.ndarray, height: np.ndarray, horizon=None, limit: float = 1.0) -> np.ndarray:
    """Height above the ground plane as colour over the left image (blue at or below 0, red at `limit` m and
    above; no colour where there is no usable point), with the horizon line."""
    import cv2

    base = left if left.ndim == 3 else cv2.cvtColor(left, cv2.COLOR_GRAY2BGR)
    base = (base.astype(np.float32) * 0.5).astype(np.uint8)
    ok = np.isfinite(height)
    scaled = np.clip(np.nan_to_num(height) / limit, 0, 1) * 255
    col = cv2.applyColorMap(scaled.astype(np.uint8), cv2.COLORMAP_JET)
    base[ok] = (0.35 * base[ok] + 0.65 * col[ok]).astype(np.uint8)
    if horizon is not None:
        cv2.line(base, tuple(int(round(v)) for v in horizon.p0), tuple(int(round(v)) for v in horizon.p1),
                 (255, 255, 0), 2, cv2.LINE_AA)
    return base


def kitti_check(folder: Path, save_dir: Path | None = None) -> dict:
    import cv2

    from perception.camera.model import CameraInfo
    from perception.frame import Frame, Header

    left = cv2.imread(str(folder / "left.png"), cv2.IMREAD_GRAYSCALE)
    right = cv2.imread(str(folder / "right.png"), cv2.IMREAD_GRAYSCALE)
    h, w = left.shape
    out = {}
    for name, baseline in (("", KITTI_BASELINE), ("_readme_baseline", KITTI_README_BASELINE)):
        li = CameraInfo.from_intrinsics(w, h, KITTI_FX, KITTI_FX, KITTI_CX, KITTI_CY, name="left")
        ri = CameraInfo.from_intrinsics(w, h, KITTI_FX, KITTI_FX, KITTI_CX, KITTI_CY, baseline=baseline, name="right")
        lab = NearRangeLabeller(DisparityConfig(num_disparities=128), GroundConfig(), LabelConfig())
        res = lab.process(Frame(Header(0, "left"), left, right, li, ri))
        if name:
            out["height_m" + name] = round(res.ground.height_m, 4)
            continue
        win = res.labels.windows
        cu, cv = win["u0"] + lab.labels_config.window_cols // 2, win["v0"] + lab.labels_config.window_rows // 2
        road = (cv >= 288) & (cu >= 352) & (cu <= 736) & (win["class"] > 0)
        out.update({
            "status": res.status.value, "baseline_m": round(baseline, 4), "height_m": round(res.ground.height_m, 4),
            "height_expected_m": KITTI_CAMERA_HEIGHT, "pitch_deg": round(res.ground.pitch_deg, 3),
            "roll_deg": round(res.ground.roll_deg, 3), "planes": len(res.ground.planes),
            "horizon_row_at_centre": round(float(res.ground.horizon.row(w / 2)), 1) if res.ground.horizon else None,
            "road_windows": int(road.sum()),
            "road_ground_share": round(float(np.isin(win["class"][road], (SUPER_GROUND, GROUND)).mean()), 4)
            if road.any() else None,
            "labels": res.labels.counts(), "ms": {k: round(v, 1) for k, v in res.timings_ms.items()},
        })
        if save_dir is not None and res.ok:
            _quantised_png(Path(save_dir) / "labels_kitti.png", overlay(left, res.labels, res.ground.horizon))
            _quantised_png(Path(save_dir) / "ground_kitti.png",
                           height_picture(left, res.labels.height, res.ground.horizon))
    return out


def euroc_check(folder: Path, save_dir: Path | None = None, frames: int = 20) -> dict:
    from perception.camera.rectify import StereoRectifier
    from perception.sources.bag import BagSource

    source = BagSource(folder)
    lab = NearRangeLabeller(DisparityConfig(num_disparities=64), GroundConfig(), LabelConfig())
    heights, pitches, rolls, status = [], [], [], {}
    picture = None
    for k, frame in enumerate(source):
        if k >= frames:
            break
        res = lab.process(frame)
        status[res.status.value] = status.get(res.status.value, 0) + 1
        if res.ok:
            heights.append(res.ground.height_m)
            pitches.append(res.ground.pitch_deg)
            rolls.append(res.ground.roll_deg)
        if picture is None and res.ok:
            rect_left, _ = StereoRectifier(frame.left_info, frame.right_info).rectify(frame.left, frame.right)
            picture = overlay(rect_left, res.labels, res.ground.horizon)
            counts = res.labels.counts()
    if save_dir is not None and picture is not None:
        _quantised_png(Path(save_dir) / "labels_euroc.png", picture)
    if not heights:
        return {"frames": sum(status.values()), "status": status}
    return {
        "frames": sum(status.values()), "status": status,
        "height_m": {"median": round(float(np.median(heights)), 4), "std": round(float(np.std(heights)), 4)},
        "pitch_deg": {"median": round(float(np.median(pitches)), 3), "std": round(float(np.std(pitches)), 3)},
        "roll_deg": {"median": round(float(np.median(rolls)), 3), "std": round(float(np.std(rolls)), 3)},
        "labels_first_frame": counts,
    }


def run_real_check(data_dir: str | Path | None = None, save_dir: str | Path | None = None,
                   log: Callable[[str], None] = lambda m: None) -> dict:
    root = os.environ.get("PERCEPTION_DATA") if data_dir is None else data_dir  # "" = no real data
    out: dict = {}
    notes = []
    kitti = Path(root) / "kitti_street_pair" if root else None
    if kitti is not None and (kitti / "left.png").is_file() and (kitti / "right.png").is_file():
        log(f"KITTI street pair from {kitti}")
        out["kitti"] = kitti_check(kitti, Path(save_dir) if save_dir else None)
    else:
        notes.append("kitti skipped: $PERCEPTION_DATA/kitti_street_pair not found")
    euroc = Path(root) / "euroc_stereo_bag" if root else None
    if euroc is not None and euroc.is_dir():
        log(f"EuRoC bag from {euroc}")
        out["euroc"] = euroc_check(euroc, Path(save_dir) if save_dir else None)
    else:
        notes.append("euroc skipped: $PERCEPTION_DATA/euroc_stereo_bag not found")
    if notes:
        out["notes"] = notes
    return out
