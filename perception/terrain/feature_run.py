"""One `perception train features` run: strips -> layer-wise training -> linear probe -> ONNX + learning curve.

Kept apart from the CLI so tests and scripts can run it in-process; torch is only touched through
feature_training (imported when training starts).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from perception.errors import InputError
from perception.terrain import feature_data, feature_net


@dataclass
class RunOptions:
    out: Path = Path("engines/terrain_features.onnx")
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4, 5])
    sim_frames: int = 40  # per seed
    sim_size: tuple[int, int] = (640, 480)
    images: list[str] = field(default_factory=list)
    image_frames: int = 60  # per source
    strips_per_frame: int = 32
    strip_width: int = feature_data.STRIP_WIDTH
    scale_range: tuple[float, float] = feature_data.SCALE_RANGE
    probe_frames: int = 6  # per probe seed; 0 skips the probe
    probe_train_seeds: list[int] = field(default_factory=lambda: [100, 101])
    probe_test_seeds: list[int] = field(default_factory=lambda: [102, 103])
    checkpoint: Path | None = None
    resume: bool = False
    progress: bool = True


def run(options: RunOptions, config, log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Train, probe, export; returns the numbers (the CLI's --json object)."""
    from perception.terrain import feature_training

    overlap = set(options.seeds) & (set(options.probe_train_seeds) | set(options.probe_test_seeds))
    if options.probe_frames and overlap:
        raise InputError(f"probe seeds {sorted(overlap)} are also training seeds", subject="--probe-seeds",
                         hint="the probe must see worlds the features were not trained on")
    if Path(options.out).suffix != ".onnx":
        raise InputError("the model file must end in .onnx", subject=str(options.out))
    started = time.perf_counter()
    strips = feature_data.collect_strips(
        seeds=options.seeds, sim_frames_per_seed=options.sim_frames, images=options.images,
        image_frames=options.image_frames, strips_per_frame=options.strips_per_frame, width=options.strip_width,
        scale_range=tuple(options.scale_range), sim_size=tuple(options.sim_size), seed=config.seed, progress=log)
    data_s = time.perf_counter() - started
    log(f"{len(strips)} strips 3@36x{options.strip_width} in {data_s:.0f} s")
    result = feature_training.train(strips.strips, config, checkpoint=options.checkpoint, resume=options.resume,
                                    progress=options.progress, log=log)
    m = result.metrics
    probe = None
    if options.probe_frames:
        t0 = time.perf_counter()
        probe = _probe(result.weights, options, log)
        probe["seconds"] = time.perf_counter() - t0
    training = _training_numbers(strips, config, options, m, probe)
    path = feature_net.write_feature_net(options.out, result.weights, trained_on=_trained_on(strips, config, options, m),
                                         training=training)
    curve = learning_curve(result.history, Path(options.out).with_name(Path(options.out).stem + "_learning_curve.png"))
    if options.checkpoint:
        hist = Path(options.checkpoint).with_name("history.json")
        hist.write_text(json.dumps({"history": result.history, "training": training}, indent=1))
    log(f"wrote {path} ({path.stat().st_size} bytes) and {curve}")
    out: dict[str, Any] = {
        "strips": len(strips), "frames": sum(s["frames"] for s in strips.sources.values()),
        "sim_frames": sum(s["frames"] for n, s in strips.sources.items() if n.startswith("synthetic")),
        "image_frames": sum(s["frames"] for n, s in strips.sources.items() if not n.startswith("synthetic")),
        "epochs": config.epochs, "data_s": data_s, "train_s": m["seconds"], "total_s": time.perf_counter() - started,
        "model_bytes": path.stat().st_size,
    }
    for layer in ("layer1", "layer2"):
        out[f"{layer}_steps"] = m[layer]["steps"]
        out[f"{layer}_recon_rel_initial"] = m[layer]["recon_rel_initial"]
        out[f"{layer}_recon_rel"] = m[layer]["recon_rel"]
        out[f"{layer}_code_mean_abs"] = m[layer]["sparsity"]
    if probe is not None:
        out["probe"] = {task: probe[task] for task in ("traversable", "terrain")}
        out["probe_samples_test"] = probe["samples"]["terrain"]["test"]
        out["probe_s"] = probe["seconds"]
    return out


def _probe(weights, options: RunOptions, log) -> dict[str, Any]:
    from perception.terrain import feature_probe

    log(f"linear probe: seeds {options.probe_train_seeds} -> {options.probe_test_seeds}, "
        f"{options.probe_frames} frames each")
    res = feature_probe.linear_probe({"trained": weights, "untrained": None}, train_seeds=options.probe_train_seeds,
                                     test_seeds=options.probe_test_seeds, frames_per_seed=options.probe_frames,
                                     size=tuple(options.sim_size))
    for task in ("traversable", "terrain"):
        r = res[task]
        log(f"probe {task}: balanced accuracy trained {r['trained']['balanced_accuracy']:.3f}, untrained "
            f"{r['untrained']['balanced_accuracy']:.3f} (accuracy {r['trained']['accuracy']:.3f} vs "
            f"{r['untrained']['accuracy']:.3f}, majority {r['majority']['accuracy']:.3f})")
    return res


def _training_numbers(strips, config, options: RunOptions, m, probe) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": "layer-wise convolutional encoder/decoder, L1 code penalty (perception.terrain.feature_training)",
        "sources": strips.sources, "strips": len(strips), "strip_shape": [3, feature_net.HEIGHT, options.strip_width],
        "scale_range": list(options.scale_range), "config": asdict(config),
        "layer1": {k: m["layer1"][k] for k in ("steps", "recon_rel_initial", "recon_rel", "sparsity")},
        "layer2": {k: m["layer2"][k] for k in ("steps", "recon_rel_initial", "recon_rel", "sparsity")},
        "train_seconds": round(m["seconds"], 1),
    }
    if probe is not None:
        out["probe"] = {"train_seeds": probe["train_seeds"], "test_seeds": probe["test_seeds"],
                        **{task: probe[task] for task in ("traversable", "terrain")}}
    return json.loads(json.dumps(out))  # plain JSON types only (numpy scalars out)


def _trained_on(strips, config, options: RunOptions, m) -> str:
    lo, hi = options.scale_range
    return (
        f"unsupervised layer-wise conv encoder/decoder training (L1 code penalty {config.l1}): {len(strips)} strips "
        f"3@36x{options.strip_width}, frames resampled at random scales {lo:g}..{hi:g} then YUV + LCN, from "
        f"{strips.describe()}; layer 1: {m['layer1']['epochs']} epochs, {m['layer1']['steps']} steps, relative "
        f"reconstruction error {m['layer1']['recon_rel_initial']:.3f} -> {m['layer1']['recon_rel']:.3f}; layer 2: "
        f"{m['layer2']['epochs']} epochs, {m['layer2']['steps']} steps, {m['layer2']['recon_rel_initial']:.3f} -> "
        f"{m['layer2']['recon_rel']:.3f} (held-out strips; 1.0 = reconstructing nothing)"
    )


def learning_curve(history: list[dict], path: str | Path) -> Path:
    """Relative reconstruction error (blue: training batches, smoothed; red dots: held-out strips) and mean |code|
    (green) per step, one panel per layer; OpenCV drawing only."""
    path = Path(path)
    panel_w, h, pad, top, bottom = 420, 340, 50, 30, 60
    img = np.full((h, 2 * panel_w, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for k, layer in enumerate((1, 2)):
        rows = [e for e in history if e["layer"] == layer]
        train = [(e["step"], e["recon_rel"], e["sparsity"]) for e in rows if "recon_rel" in e]
        val = [(e["step"], e["val_recon_rel"]) for e in rows if "val_recon_rel" in e]
        x0, x1, y0, y1 = k * panel_w + pad, (k + 1) * panel_w - 25, h - bottom, top
        cv2.rectangle(img, (x0, y1), (x1, y0), (0, 0, 0), 1)
        smax = max([s for s, *_ in train] + [s for s, _ in val] + [1])
        vmax = max([max(r, c) for _, r, c in train] + [v for _, v in val] + [0.1]) * 1.05

        def px(s, v):
            return int(x0 + (x1 - x0) * s / smax), int(y0 - (y0 - y1) * min(v, vmax) / vmax)

        for i in range(5):
            v = vmax * i / 4
            cv2.line(img, (x0, px(0, v)[1]), (x1, px(0, v)[1]), (225, 225, 225), 1)
            cv2.putText(img, f"{v:.2f}", (x0 - 45, px(0, v)[1] + 4), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
            cv2.putText(img, str(int(smax * i / 4)), (px(smax * i / 4, 0)[0] - 10, y0 + 15), font, 0.38,
                        (0, 0, 0), 1, cv2.LINE_AA)
        for col, color in ((1, (180, 80, 0)), (2, (0, 150, 0))):
            if len(train) > 1:
                vals = np.array([t[col] for t in train])
                n = max(1, len(vals) // 60)
                sm = np.convolve(vals, np.ones(n) / n, mode="valid")
                pts = np.array([px(s, v) for s, v in zip([t[0] for t in train][n - 1:], sm)], np.int32)
                cv2.polylines(img, [pts], False, color, 2, cv2.LINE_AA)
        for s, v in val:
            cv2.circle(img, px(s, v), 4, (0, 0, 200), -1, cv2.LINE_AA)
        title = ("layer 1: conv 20@7x6 encoder / decoder" if layer == 1 else
                 "layer 2: conv 100@6x5 on pooled layer 1")
        cv2.putText(img, title, (x0, 18), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, "step", (x1 - 30, y0 + 32), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    legend = ("blue: relative reconstruction error (training batches, smoothed)   red: held-out strips   "
              "green: mean |code|")
    cv2.putText(img, legend, (pad, h - 8), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise InputError("cannot write the learning-curve image", subject=str(path))
    return path


def filters_png(nets: dict[str, dict[str, np.ndarray] | None], path: str | Path, zoom: int = 8) -> Path:
    """Layer-1 filters of each net (name -> weights; None = untrained), one row of 20 per net and channel (Y, U, V),
    each filter scaled to its own range (grey = 0): what the docs show."""
    rows = []
    for name, weights in nets.items():
        w = (feature_net.default_weights() if weights is None else weights)["conv1.weight"]  # 20 x 3 x 7 x 6
        for ch, label in enumerate("YUV"):
            tiles = []
            for f in w:
                k = f[ch] / (np.abs(f).max() + 1e-8)
                tile = cv2.resize(((k + 1) * 127.5).astype(np.uint8), None, fx=zoom, fy=zoom,
                                  interpolation=cv2.INTER_NEAREST)
                tiles.append(cv2.copyMakeBorder(tile, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=255))
            row = cv2.cvtColor(np.hstack(tiles), cv2.COLOR_GRAY2BGR)
            head = np.full((row.shape[0], 130, 3), 255, np.uint8)
            cv2.putText(head, f"{name} {label}", (4, row.shape[0] // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                        (0, 0, 0), 1, cv2.LINE_AA)
            rows.append(np.hstack([head, row]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack(rows))
    return path
