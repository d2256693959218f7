"""`perception bench engines`: a project model in ONNX Runtime, fp32 vs its Q/DQ INT8 version, timed and compared.

The INT8 model is made on the fly in a temporary folder with `perception.engines.quantize`, calibrated on the
model's calibration list (calibration/int8/<task>.txt) when $PERCEPTION_DATA is set and the images are there, else on
synthetic but natural-looking frames (1/f texture, sky and ground, obstacles) generated here; the JSON says which.
Every 5th usable image of the list is held out of calibration and used to measure the INT8 error (synthetic: a
separate seed). Both models are timed interleaved on the same input (warm-up first), median and p90 reported.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from perception.engines.model_file import load_model
from perception.engines.quantize import load_image, preprocess_image, qdq_summary, quantize_int8, read_image_list

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
CALIBRATION_DIR = REPO / "calibration" / "int8"
DEFAULT_MODEL_NAME = "terrain_features.onnx"
HOLD_OUT_EVERY = 5  # every 5th usable list image is held out of calibration
SYNTHETIC_HELD_OUT = 4


def synthetic_images(n: int, *, seed: int = 0, size: tuple[int, int] = (360, 480)) -> list[np.ndarray]:
    """`n` BGR uint8 frames that look roughly like outdoor driving: sky over ground with a 1/f (natural-image)
    amplitude spectrum texture, perspective-faded ground texture and a few textured obstacles. Deterministic in seed.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    inv_f = 1.0 / np.maximum(np.sqrt(fx * fx + fy * fy), 1.0 / max(h, w))

    def texture() -> np.ndarray:
        spectrum = (rng.standard_normal(inv_f.shape) + 1j * rng.standard_normal(inv_f.shape)) * inv_f
        t = np.fft.irfft2(spectrum, s=(h, w))
        return ((t - t.mean()) / (t.std() + 1e-9)).astype(np.float32)

    rows = np.arange(h, dtype=np.float32)[:, None]
    images = []
    for _ in range(n):
        horizon = rng.uniform(0.3, 0.5) * h
        sky = np.array([rng.uniform(190, 245), rng.uniform(150, 205), rng.uniform(100, 150)], np.float32)  # BGR
        ground = np.array([rng.uniform(40, 80), rng.uniform(75, 125), rng.uniform(80, 140)], np.float32)
        depth = np.clip((rows - horizon) / (h - horizon), 0.0, 1.0)  # 0 at the horizon, 1 at the bottom
        tex = texture()
        img = np.empty((h, w, 3), np.float32)
        is_sky = rows < horizon
        for c in range(3):
            sky_c = sky[c] - 40.0 * (1.0 - rows / horizon) + 6.0 * tex
            ground_c = ground[c] * (0.7 + 0.5 * depth) + (10.0 + 30.0 * depth) * tex
            img[..., c] = np.where(is_sky, sky_c, ground_c)
        for _ in range(int(rng.integers(1, 5))):  # obstacles standing on the ground
            foot = rng.uniform(horizon + 5, h)
            height = (foot - horizon) * rng.uniform(0.5, 2.5)
            width = height * rng.uniform(0.3, 1.5)
            x0 = rng.uniform(0, w - 1)
            y0, x1, y1 = max(0.0, foot - height), min(w, x0 + width), foot
            color = np.array([rng.uniform(20, 90), rng.uniform(40, 120), rng.uniform(20, 90)], np.float32)
            obstacle_tex = texture()
            sl = (slice(int(y0), int(y1)), slice(int(x0), int(x1)))
            img[sl] = color + 25.0 * obstacle_tex[sl][..., None]
        images.append(np.clip(img, 0, 255).astype(np.uint8))
    return images


def default_model() -> Path:
    """The shipped terrain feature net: from the engines catalog ($PERCEPTION_ENGINES, the source tree, or an
    installed share/ folder) when it knows one, else the source tree's engines/ folder."""
    try:
        from perception.engines.catalog import shipped_models_dir

        folder = shipped_models_dir()
    except ImportError:  # pragma: no cover - the catalog ships with the Engine interface
        folder = None
    return (folder or REPO / "engines") / DEFAULT_MODEL_NAME


def _display(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


def calibration_list_for(task: str) -> Path:
    return CALIBRATION_DIR / f"{task}.txt"


def _calibration_sources(task: str, max_images: int) -> tuple[list[Any], list[np.ndarray], str]:
    """(calibration sources, held-out images, what was used) -- the list when it is usable, else synthetic frames."""
    list_path = calibration_list_for(task)
    if os.environ.get("PERCEPTION_DATA") and list_path.is_file():
        usable = [p for p in read_image_list(list_path) if Path(p).is_file()]
        held = [p for i, p in enumerate(usable) if i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1]
        calib = [p for i, p in enumerate(usable) if i % HOLD_OUT_EVERY != HOLD_OUT_EVERY - 1]
        held_images = [img for img in (load_image(p) for p in held) if img is not None]
        if calib and held_images:
            return calib[:max_images], held_images, f"list:{_display(list_path)}"
        log.warning("%s: no usable images under PERCEPTION_DATA; calibrating on synthetic frames", list_path)
    return synthetic_images(max_images, seed=1), synthetic_images(SYNTHETIC_HELD_OUT, seed=2), "synthetic"


class _OrtRunner:
    """One model in ONNX Runtime on the CPU with a fixed thread count: through the project's `open_engine` (the
    Engine interface, as the pipeline runs it) when that is available, else a bare InferenceSession."""

    def __init__(self, path: Path, threads: int, precision: str):
        try:
            from perception.engines.factory import open_engine
        except ImportError:
            open_engine = None
        if open_engine is not None:
            self.engine = open_engine(path, backend="onnxruntime", precision=precision, threads=threads,
                                      providers=["CPUExecutionProvider"])
            self.api = "perception.engines.open_engine"
            self.input = self.engine.inputs[0].name
            names = [t.name for t in self.engine.outputs]
            self._run = lambda x: [self.engine.infer({self.input: x})[n] for n in names]
        else:  # pragma: no cover - only before the Engine interface exists
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.api = "onnxruntime.InferenceSession"
            self.input = session.get_inputs()[0].name
            self._run = lambda x: session.run(None, {self.input: x})

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return self._run(x)

    def close(self) -> None:
        if getattr(self, "engine", None) is not None:
            self.engine.close()


def _times(runners: dict[str, Any], x: np.ndarray, *, repeats: int, warmup: int) -> dict[str, list[float]]:
    for run in runners.values():
        for _ in range(warmup):
            run(x)
    times: dict[str, list[float]] = {k: [] for k in runners}
    names = list(runners)
    for i in range(repeats):
        for name in names if i % 2 == 0 else names[::-1]:  # interleaved, alternating order: fair on a noisy machine
            t0 = time.perf_counter()
            runners[name](x)
            times[name].append((time.perf_counter() - t0) * 1000.0)
    return times


def bench_engines(
    model: str | Path | None = None,
    *,
    repeats: int = 50,
    warmup: int = 5,
    threads: int | None = None,
    max_images: int = 32,
    method: str = "percentile",
    progress: bool = True,
) -> dict[str, Any]:
    """Time fp32 vs Q/DQ INT8 in ONNX Runtime and measure the INT8 error on held-out inputs; a JSON-ready dict."""
    import onnxruntime as ort

    path = Path(model) if model is not None else default_model()
    meta = load_model(path).metadata
    threads = threads or os.cpu_count() or 1
    calib, held_out, calibration = _calibration_sources(meta.task, max_images)
    print(f"bench engines: {path.name}, calibration: {calibration} ({len(calib)} images)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="perception-bench-") as tmp:
        int8_path = Path(tmp) / f"{path.stem}_int8.onnx"
        report = quantize_int8(path, int8_path, calib, method=method, progress=progress)
        qdq = qdq_summary(int8_path)
        fp32, int8 = _OrtRunner(path, threads, "fp32"), _OrtRunner(int8_path, threads, "int8")
        samples = [s for img in held_out for s in preprocess_image(meta, img)]
        max_abs, sq, count, lo, hi, cosines = 0.0, 0.0, 0, np.inf, -np.inf, []
        for x in samples:
            for a, b in zip(fp32(x), int8(x)):
                a, b = a.astype(np.float64), b.astype(np.float64)
                d = np.abs(a - b)
                max_abs = max(max_abs, float(d.max()))
                sq += float((d * d).sum())
                count += d.size
                lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
                if a.ndim == 4:  # per-position vectors along channels (features, logits)
                    va, vb = a.reshape(a.shape[0], a.shape[1], -1), b.reshape(b.shape[0], b.shape[1], -1)
                    num = (va * vb).sum(1)
                    den = np.linalg.norm(va, axis=1) * np.linalg.norm(vb, axis=1) + 1e-12
                    cosines.append(float(np.mean(num / den)))
                else:
                    cosines.append(float((a.ravel() @ b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)))
        print(f"timing: {repeats} repeats after {warmup} warm-up runs, {threads} thread(s)", file=sys.stderr)
        times = _times({"fp32": fp32, "int8": int8}, samples[0], repeats=repeats, warmup=warmup)
        fp32.close()
        int8.close()
    fp32_ms, int8_ms = float(np.median(times["fp32"])), float(np.median(times["int8"]))
    out_range = hi - lo
    return {
        "model": _display(path),
        "task": meta.task,
        "input_shape": meta.input().shape,
        "backend": "onnxruntime-cpu",
        "engine_api": fp32.api,
        "onnxruntime": ort.__version__,
        "threads": threads,
        "repeats": repeats,
        "fp32_ms": round(fp32_ms, 4),
        "fp32_p90_ms": round(float(np.percentile(times["fp32"], 90)), 4),
        "int8_ms": round(int8_ms, 4),
        "int8_p90_ms": round(float(np.percentile(times["int8"], 90)), 4),
        "int8_speedup": round(fp32_ms / int8_ms, 3) if int8_ms > 0 else None,
        "int8_max_abs_diff": round(max_abs, 6),
        "int8_rel_err": round(max_abs / out_range, 6) if out_range > 0 else None,
        "int8_rmse": round(float(np.sqrt(sq / max(count, 1))), 6),
        "int8_cosine": round(float(np.mean(cosines)), 6),
        "fp32_output_range": round(out_range, 6),
        "calibration": calibration,
        "calibration_method": method,
        "calibration_images": report.images_used,
        "calibration_skipped": report.images_skipped,
        "held_out_samples": len(samples),
        "quantize_s": round(report.seconds, 3),
        "qdq_nodes": qdq["quantize_linear"] + qdq["dequantize_linear"],
        "baseline": {"name": "onnxruntime-cpu fp32", "ms": round(fp32_ms, 4)},
    }
