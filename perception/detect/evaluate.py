"""`perception eval detect`: ours vs OpenCV's HOG people detector, on synthetic drives with truth and on CamVid test.

Synthetic: drives of `perception.sim` at 640x480 with seeds the shipped model never saw (101, 102, ...): truth
boxes are the tight visible boxes of pedestrians, cyclists, cars and trucks at least 20 px tall, at most 60 %
occluded or truncated (KITTI "moderate"-like); smaller / more hidden ones are ignore regions. Range: the stereo
pair goes through `compute_disparity` (SGBM, as in the pipeline), each detection is ranged from its box
(`perception.detect.ranging`), and the error is taken against the true range of the object's visible surface
(median over its visible pixels of the true distance) for true positives within `range_max` (30 m).
CamVid test: boxes from the label components (`perception.detect.data`; rough), detection keys only (no stereo).
Baseline: `cv2.HOGDescriptor` with `getDefaultPeopleDetector()` (Dalal & Triggs), `detectMultiScale` with OpenCV's
defaults, boxes shrunk as OpenCV's peopledetect sample does (the window has margins around the person), scored by
its SVM weight, evaluated for the pedestrian class on the same images, timed in the same process.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from perception.detect.data import CLASSES, camvid_samples, sim_objects
from perception.detect.metrics import APAccumulator

SIM_SEEDS = (101, 102)


class HogPeople:
    """OpenCV's HOG + linear SVM people detector (the classic CPU baseline)."""

    def __init__(self, upscale: float = 1.0, hit_threshold: float = 0.0) -> None:
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.upscale = upscale
        self.hit_threshold = hit_threshold

    def detect(self, bgr: np.ndarray):
        """(boxes Nx4, scores N, ms)."""
        t0 = time.perf_counter()
        img = bgr if self.upscale == 1.0 else cv2.resize(bgr, None, fx=self.upscale, fy=self.upscale)
        rects, weights = self.hog.detectMultiScale(img, hitThreshold=self.hit_threshold, winStride=(8, 8),
                                                   padding=(8, 8), scale=1.05)
        boxes = []
        for x, y, w, h in np.asarray(rects).reshape(-1, 4):
            pw, ph = int(0.15 * w), int(0.05 * h)  # as OpenCV's samples/python/peopledetect.py draws them
            boxes.append([x + pw, y + ph, x + w - pw, y + h - ph])
        boxes = np.array(boxes, np.float32).reshape(-1, 4) / self.upscale
        ms = (time.perf_counter() - t0) * 1000.0
        return boxes, np.asarray(weights, np.float32).reshape(-1), ms


def surface_range(truth: dict, obj: dict, K: np.ndarray) -> float | None:
    """Median true distance (m) of an object's visible pixels (instance mask x true depth)."""
    mask = truth["instance"] == obj["id"]
    if not mask.any():
        return None
    v, u = np.nonzero(mask)
    z = truth["depth"][v, u].astype(np.float64)
    ok = np.isfinite(z)
    if not ok.any():
        return None
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    r = z[ok] * np.sqrt(1 + ((u[ok] - cx) / fx) ** 2 + ((v[ok] - cy) / fy) ** 2)
    return float(np.median(r))


class _Variant:
    def __init__(self, name: str, classes) -> None:
        self.name = name
        self.acc = APAccumulator(classes)
        self.ms: list[float] = []
        self.range_err: list[float] = []
        self.range_err_all: list[float] = []

    def summary(self, with_range: bool) -> dict:
        out = self.acc.result()
        out["ms"] = round(float(np.median(self.ms)), 2) if self.ms else None
        if with_range:
            e = np.array(self.range_err)
            out["range_err_pct"] = round(float(np.median(e)), 2) if e.size else None
            out["range_err_pct_p90"] = round(float(np.percentile(e, 90)), 2) if e.size else None
            out["range_n"] = int(e.size)
            a = np.array(self.range_err_all)
            out["range_err_pct_all"] = round(float(np.median(a)), 2) if a.size else None
        return out


def _record_range(variant: _Variant, matches: dict, dets_pos, truth_ranges, range_max: float) -> None:
    for c, (di, gt_idx) in matches.items():
        for k, g in zip(di, gt_idx):
            if g < 0 or dets_pos[k] is None or truth_ranges[g] is None:
                continue
            err = abs(dets_pos[k] - truth_ranges[g]) / truth_ranges[g] * 100.0
            variant.range_err_all.append(err)
            if truth_ranges[g] <= range_max:
                variant.range_err.append(err)


def eval_sim(detector, hog: HogPeople, *, seeds=SIM_SEEDS, frames: int = 20, stride: int = 10,
             size=(640, 480), range_max: float = 30.0, log: Callable[[str], None] = lambda m: None,
             keep_examples: int = 0):
    from perception.detect.ranging import range_box
    from perception.sim import SimConfig, SimWorld
    from perception.stereo.disparity import compute_disparity
    from perception.stereo.points import stereo_geometry

    ours, base = _Variant("ours", CLASSES), _Variant("hog", ("pedestrian",))
    examples, stereo_ms, range_ms = [], [], []
    for seed in seeds:
        world = SimWorld(SimConfig(seed=seed, width=size[0], height=size[1], frames=frames * stride + 1,
                                   actor_density=10.0))
        for k in range(frames):
            frame = world.render(k * stride + stride // 2)
            truth = frame.truth
            gt_boxes, gt_cls, ignore, kept = sim_objects(truth, size[1])
            gt_names = [CLASSES[c] for c in gt_cls]
            K = frame.left_info.K
            geo = stereo_geometry(frame.left_info, frame.right_info)
            truth_r = [surface_range(truth, o, K) for o in kept]
            t0 = time.perf_counter()
            disp = compute_disparity(frame.left, frame.right).disparity
            stereo_ms.append((time.perf_counter() - t0) * 1000)
            res = detector.detect(frame.left, frame.header)
            ours.ms.append(res.ms)
            boxes, scores, names = res.arrays()
            t0 = time.perf_counter()
            ranges = [range_box(disp, b, n, fx=geo.fx, baseline=geo.baseline, cx=geo.cx, cy=geo.cy, fy=geo.fy,
                                left=frame.left, right=frame.right) for b, n in zip(boxes, names)]
            range_ms.append((time.perf_counter() - t0) * 1000)
            for d, r in zip(res.detections, ranges):
                d.position = r.position if r is not None else None
            m = ours.acc.add(boxes, scores, names, gt_boxes, gt_names, ignore)
            _record_range(ours, m, [r.range_m if r else None for r in ranges], truth_r, range_max)
            hb, hs, hms = hog.detect(frame.left)
            base.ms.append(hms)
            hr = [range_box(disp, b, "pedestrian", fx=geo.fx, baseline=geo.baseline, cx=geo.cx, cy=geo.cy,
                            left=frame.left, right=frame.right) for b in hb]
            m = base.acc.add(hb, hs, ["pedestrian"] * len(hb), gt_boxes, gt_names, ignore)
            _record_range(base, m, [r.range_m if r else None for r in hr], truth_r, range_max)
            if len(examples) < keep_examples and gt_names.count("pedestrian") >= 1 and len(gt_boxes) >= 3:
                shown = [d for d in res.detections if d.score >= 0.3]
                examples.append((frame.left.copy(), type(res)(shown, res.ms, res.header), hb, gt_boxes, gt_names))
            log(f"sim seed {seed} frame {k + 1}/{frames}: {len(gt_boxes)} objects, {len(boxes)} detections "
                f"({res.ms:.0f} ms), HOG {len(hb)} ({hms:.0f} ms)")
    out = ours.summary(True)
    out["baseline"] = base.summary(True)
    out["frames"] = len(ours.ms)
    out["stereo_ms"] = round(float(np.median(stereo_ms)), 1)
    out["range_ms"] = round(float(np.median(range_ms)), 2)
    return out, examples


def eval_camvid(detector, hog: HogPeople, data, *, limit: int = 0, log: Callable[[str], None] = lambda m: None,
                keep_examples: int = 0):
    classes = ("pedestrian", "cyclist", "car")
    ours, base = _Variant("ours", classes), _Variant("hog", ("pedestrian",))
    examples = []
    for n, s in enumerate(camvid_samples(data, "test", limit=limit)):
        names_gt = [CLASSES[c] for c in s.classes]
        res = detector.detect(s.image)
        ours.ms.append(res.ms)
        boxes, scores, names = res.arrays()
        ours.acc.add(boxes, scores, names, s.boxes, names_gt, s.ignore)
        hb, hs, hms = hog.detect(s.image)
        base.ms.append(hms)
        base.acc.add(hb, hs, ["pedestrian"] * len(hb), s.boxes, names_gt, s.ignore)
        if len(examples) < keep_examples and names_gt.count("pedestrian") >= 2:
            shown = [d for d in res.detections if d.score >= 0.3]
            examples.append((s.image.copy(), type(res)(shown, res.ms, res.header), hb, s.boxes, names_gt))
        if (n + 1) % 25 == 0:
            log(f"CamVid test: {n + 1} images")
    out = ours.summary(False)
    out["baseline"] = base.summary(False)
    out["frames"] = len(ours.ms)
    return out, examples


def run_eval(data=None, *, model=None, sim_frames: int = 20, seeds=SIM_SEEDS, camvid_limit: int = 0,
             threads: int = 1, hog_upscale: float = 1.0, score_threshold: float = 0.05, save_images=None,
             log: Callable[[str], None] = lambda m: None) -> dict:
    """The `--json` object: synthetic keys at top level, "camvid", and "baseline" (HOG) with the same keys."""
    from perception.detect.detector import Detector

    detector = Detector(model, backend="onnxruntime", threads=threads, thresholds=score_threshold)
    hog = HogPeople(hog_upscale)
    keep = 2 if save_images else 0
    sim, sim_ex = eval_sim(detector, hog, seeds=seeds, frames=sim_frames, log=log, keep_examples=keep)
    result = {k: v for k, v in sim.items() if k != "baseline"}
    result["baseline"] = dict(sim["baseline"])
    result["model"] = str(detector.engine.path.name)
    result["trained_on"] = detector.engine.metadata.trained_on
    result["threads"] = threads
    cam_ex = []
    if data is not None:
        cam, cam_ex = eval_camvid(detector, hog, data, limit=camvid_limit, log=log, keep_examples=keep)
        result["camvid"] = {k: v for k, v in cam.items() if k != "baseline"}
        result["baseline"]["camvid"] = cam["baseline"]
    b = result["baseline"]
    if b.get("ms") and result.get("ms"):
        result["speedup_vs_hog"] = round(b["ms"] / result["ms"], 1)
    result["notes"] = [
        f"ours at score threshold {score_threshold} (AP integrates over all thresholds above it)",
        "ms: median Detector.detect per 640x480 synthetic frame (letterbox, network on ONNX Runtime with "
        f"{threads} thread(s), decoding, NMS); ranging adds range_ms, stereo matching stereo_ms",
        "range_err_pct: median |stereo range - true range of the visible surface| / true, true positives within 30 m",
        "baseline: OpenCV HOG people detector, pedestrian class only; its map50 is its pedestrian AP",
        "CamVid boxes are connected components of the label image, split by shape: rough truth",
    ]
    if save_images:
        from perception.detect.plots import save_examples

        paths = save_examples(Path(save_images), sim_ex, cam_ex)
        log("wrote " + ", ".join(str(p) for p in paths))
    return result
