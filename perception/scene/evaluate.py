"""`perception eval scene`: the shipped scene parser and the Farabet et al. reference variants on CamVid test.

Every variant runs through `SceneParser` on ONNX Runtime (CPU) at the frame's own resolution (480x360), the whole
parse timed (resize in, network, resize out, arg-max; superpixels when on), variants interleaved frame by frame so
they share the machine's load. Metrics over all frames (void ignored): pixel accuracy, mean class accuracy, mean
IoU (11 CamVid classes), ms = median wall time per frame.

Variants: `ours` (engines/scene_camvid.onnx, the default), `baseline` (single-scale reference network,
scene_camvid_farabet_single.onnx), `multiscale` (the 3-scale reference, scene_camvid_farabet.onnx) and
`superpixels` (multiscale + Felzenszwalb-Huttenlocher majority vote); and `flip`: ours with left-right flip
test-time augmentation (SceneParser(flip=True)).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from perception.errors import InputError
from perception.scene import data as scene_data
from perception.scene.metrics import confusion, scores
from perception.scene.plots import confusion_image, overlay

VARIANT_MODELS = {
    "ours": "scene_camvid.onnx",
    "baseline": "scene_camvid_farabet_single.onnx",
    "multiscale": "scene_camvid_farabet.onnx",
    "superpixels": "scene_camvid_farabet.onnx",
    "flip": "scene_camvid.onnx",
}


def default_variant_paths() -> dict[str, Path]:
    from perception.engines.catalog import shipped_models_dir

    folder = shipped_models_dir() or Path("engines")
    return {k: folder / v for k, v in VARIANT_MODELS.items()}


def run_eval(data_dir: str | Path, *, models: dict[str, Path] | None = None, limit: int = 0, threads: int = 1,
             backend: str = "onnxruntime", save_images: str | Path | None = None, overlays: int = 3,
             log: Callable[[str], None] = print) -> dict:
    from perception.scene.parser import SceneParser

    root = Path(data_dir)
    camvid = root / "camvid" if (root / "camvid").is_dir() else root
    data = scene_data.discover(camvid, classes="camvid")
    pairs = data.test
    if not pairs:
        raise InputError("has no test split (test/ + testannot/)", subject=str(camvid))
    if limit:
        pairs = pairs[:limit]
    models = dict(models or default_variant_paths())
    k = data.spec.num_classes
    parsers, notes = {}, []
    for name, path in models.items():
        if not Path(path).is_file():
            notes.append(f"{name}: model {path} not found; skipped")
            continue
        try:
            parsers[name] = SceneParser(path, backend=backend, threads=threads, superpixels=(name == "superpixels"),
                                         flip=(name == "flip"))
        except Exception as err:  # a missing optional dependency (scikit-image) skips that variant only
            notes.append(f"{name}: {err}; skipped")
            continue
        if parsers[name].class_names != list(data.spec.names):
            raise InputError(f"model classes {parsers[name].class_names} are not CamVid's {list(data.spec.names)}",
                             subject=str(path))
        log(f"{name}: {path} ({parsers[name].engine.metadata.decoder.get('arch', '?')}, network input "
            f"{parsers[name].network_size[0]}x{parsers[name].network_size[1]}; trained on: "
            f"{parsers[name].engine.metadata.trained_on})")
    if "ours" not in parsers:
        raise InputError("the model to evaluate is missing", subject=str(models.get("ours")),
                         hint="pass --model, or install engines/scene_camvid.onnx")
    for parser in parsers.values():  # warm-up
        parser.parse(np.zeros((360, 480, 3), np.uint8))
    conf = {name: np.zeros((k, k), np.int64) for name in parsers}
    times: dict[str, list[float]] = {name: [] for name in parsers}
    examples = []
    from tqdm import tqdm

    for i, (img_path, lab_path) in enumerate(tqdm(pairs, desc="eval scene", unit="img", leave=False)):
        bgr = scene_data.read_image(img_path)
        truth = data.spec.decode(scene_data.read_label(lab_path), subject=str(lab_path))
        preds = {}
        for name, parser in parsers.items():
            t0 = time.perf_counter()
            result = parser.parse(bgr)
            times[name].append((time.perf_counter() - t0) * 1000.0)
            if result.class_mask.shape != truth.shape:
                raise InputError(f"mask {result.class_mask.shape} is not at the label's resolution {truth.shape}",
                                 subject=name)
            conf[name] += confusion(truth, result.class_mask, k)
            preds[name] = result
        if save_images and len(examples) < overlays and i % max(1, len(pairs) // overlays) == 0:
            examples.append((img_path.name, bgr, truth, preds))
    out: dict = {}
    for name in parsers:
        s = scores(conf[name])
        metrics = {"pixel_acc": round(s["pixel_acc"], 4), "class_acc": round(s["class_acc"], 4),
                   "miou": round(s["miou"], 4), "ms": round(float(np.median(times[name])), 2),
                   "iou_per_class": {n: (None if v is None else round(v, 4)) for n, v in zip(data.spec.names, s["iou"])}}
        if name == "ours":
            out.update(metrics)
        else:
            out[name] = metrics
    out["frames"] = len(pairs)
    out["threads"] = threads
    if notes:
        out["notes"] = notes
    if save_images:
        folder = Path(save_images)
        path = confusion_image(conf["ours"], list(data.spec.names), folder / "scene_confusion.png",
                               title=f"CamVid test ({len(pairs)} images): rows truth, columns ours (% of row)")
        log(f"wrote {path}")
        path = save_overlays(examples, data.spec, folder / "scene_overlays.png")
        log(f"wrote {path}")
    for parser in parsers.values():
        parser.close()
    return out


def save_overlays(examples, spec, path: Path, width: int = 224) -> Path:
    """One row per example: image, ground truth, then each variant's colour mask over the image."""
    rows = []
    for name, bgr, truth, preds in examples:
        h = int(round(bgr.shape[0] * width / bgr.shape[1]))
        cells = [("image " + name, bgr), ("ground truth", overlay(bgr, spec.colorize(truth), 0.6))]
        cells += [(v, overlay(bgr, r.color_mask, 0.6)) for v, r in preds.items() if v != "flip"]
        row = []
        for title, img in cells:
            img = cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA)
            cv2.rectangle(img, (0, 0), (width, 18), (255, 255, 255), -1)
            cv2.putText(img, title, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
            row.append(img)
        rows.append(np.hstack(row))
    legend = np.full((24, rows[0].shape[1], 3), 255, np.uint8)
    x = 4
    for n, c in zip(spec.names, spec.colors):
        cv2.rectangle(legend, (x, 5), (x + 14, 19), tuple(int(v) for v in c[::-1]), -1)
        cv2.putText(legend, n, (x + 18, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        x += 26 + 8 * len(n)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack([legend, *rows]))
    return path
