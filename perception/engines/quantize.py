"""INT8 by explicit quantization: a float ONNX model + calibration images -> a Q/DQ INT8 ONNX model.

TensorRT 10 deprecated its implicit INT8 calibrators (removed in TensorRT 11); explicit quantization, with
QuantizeLinear / DequantizeLinear pairs in the ONNX graph, is the path that keeps working (REFERENCE.md section 5).
The Q/DQ model is made here with ONNX Runtime's static quantization, with the settings TensorRT needs:

- QDQ format, activations INT8 symmetric (zero point 0), weights INT8 symmetric, per output channel by default;
- biases left in float (TensorRT dequantizes INT8 only, not the INT32 biases ONNX Runtime would otherwise emit);
- calibration MinMax (default), Entropy or Percentile, on images preprocessed exactly as the model's metadata says.

The result keeps the model's metadata (name suffixed `_int8`, `decoder["precision"] = "int8"`), runs in ONNX Runtime
everywhere, and passes `check_tensorrt_compatible` before it is written.

Calibration image lists are text files: one image path per line, `#` starts a comment line, relative paths are
relative to the list file, and environment variables (`${PERCEPTION_DATA}`) are expanded. An image that is missing or
unreadable is skipped and counted; if none is usable, calibration stops with an error that says why.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import onnx

from perception.engines.export import check_tensorrt_compatible, is_project_model
from perception.engines.graph import PRODUCER
from perception.engines.metadata import ModelMetadata, TensorInfo
from perception.engines.model_file import load_model, read_onnx, save_model
from perception.errors import InputError, ModelError

log = logging.getLogger(__name__)

METHODS = ("minmax", "entropy", "percentile")
STRIPS_PER_IMAGE = 2  # band strips cut from each calibration image for a terrain_features model



# --- calibration image lists ----------------------------------------------------------------------------
def read_image_list(path: str | Path) -> list[Path]:
    """The image paths a calibration list names, in order: comments and blank lines dropped, `${VAR}` and `~`
    expanded, relative paths taken relative to the list's folder (or, for a line starting with a variable whose
    value is relative, to the working directory). Existence is not checked here (see `load_image`).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the calibration image list: {err}", subject=str(path)) from err
    paths = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry = Path(os.path.expanduser(os.path.expandvars(line)))
        if not entry.is_absolute():
            # a literal relative path is relative to the list; one that a variable (or ~) gave is relative to the
            # working directory, like the variable itself (PERCEPTION_DATA=../shared/data)
            entry = (Path.cwd() if line.startswith(("$", "~")) else path.parent) / entry
        paths.append(entry)
    return paths


def load_image(source: str | Path | np.ndarray) -> np.ndarray | None:
    """A BGR uint8 image from a path (None when missing or unreadable) or an array (taken as BGR)."""
    if isinstance(source, np.ndarray):
        return source
    if not Path(source).is_file():
        return None
    image = cv2.imread(str(source), cv2.IMREAD_COLOR)
    return image if image is not None and image.size else None


# --- preprocessing as the metadata says ---------------------------------------------------------------
def _hw(t: TensorInfo) -> tuple[int, int, int, int]:
    if t.layout == "NCHW":
        n, c, h, w = t.shape
    elif t.layout == "NHWC":
        n, h, w, c = t.shape
    else:
        raise ModelError(f"input '{t.name}' has layout {t.layout}; calibration from images needs NCHW or NHWC")
    if min(n, c, h, w) < 1:
        raise ModelError(f"input '{t.name}' has a dynamic shape {t.shape}; calibration needs a static input shape")
    return n, c, h, w


def preprocess_image(meta: ModelMetadata, bgr: np.ndarray, *, strips: int = STRIPS_PER_IMAGE) -> list[np.ndarray]:
    """The network input(s) one BGR frame gives, exactly as `meta` says (shape, layout, colour, normalisation).

    A terrain_features model takes YUV bands with local contrast normalisation (perception.terrain.preprocess):
    `strips` bands are cut from each frame. Other models take the whole frame resized to the input shape.
    """
    if len(meta.inputs) != 1:
        raise ModelError(f"calibration from images needs a model with one input, this one has {len(meta.inputs)}")
    t = meta.input()
    n, c, h, w = _hw(t)
    if meta.task == "terrain_features" or t.color == "yuv":
        from perception.terrain.preprocess import band_strips

        if t.layout != "NCHW" or c != 3:
            raise ModelError(f"a YUV band input must be NCHW with 3 channels, not {t.layout} {t.shape}")
        return [np.repeat(s, n, axis=0) for s in band_strips(bgr, height=h, width=w, count=strips)]
    image = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA if w < bgr.shape[1] else cv2.INTER_LINEAR)
    if t.color == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif t.color == "gray":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[..., None]
    if image.shape[2] != c:
        raise ModelError(f"input '{t.name}' has {c} channels but colour '{t.color}' gives {image.shape[2]}")
    x = image.astype(np.float32)
    if t.normalization is not None:
        norm = t.normalization
        mean = np.asarray(norm.mean[:c], np.float32)
        std = np.asarray(norm.std[:c], np.float32)
        x = (x * np.float32(norm.scale) - mean) / std
    x = x.transpose(2, 0, 1) if t.layout == "NCHW" else x
    x = np.repeat(x[None], n, axis=0)  # a static batch > 1 is filled with copies of the frame
    return [np.ascontiguousarray(x, dtype=np.float32 if t.dtype == "float32" else t.dtype)]


# --- the calibration data reader ------------------------------------------------------------------------
try:
    from onnxruntime.quantization import CalibrationDataReader as _ReaderBase
except ImportError:  # pragma: no cover - onnxruntime is a hard dependency
    _ReaderBase = object


@dataclass
class CalibrationStats:
    images_used: int = 0
    samples: int = 0
    skipped: list[str] = field(default_factory=list)


class ImageCalibrationReader(_ReaderBase):
    """Feeds ONNX Runtime's calibrator one preprocessed sample at a time, reading images lazily.

    Missing or unreadable images are skipped and counted in `stats.skipped`; `max_images` caps the usable ones.
    """

    def __init__(
        self,
        meta: ModelMetadata,
        sources: Iterable[str | Path | np.ndarray],
        *,
        max_images: int | None = None,
        strips: int = STRIPS_PER_IMAGE,
        progress: bool = True,
    ):
        self.meta = meta
        self.name = meta.input().name
        self.sources = list(sources)
        self.max_images = max_images
        self.strips = strips
        self.stats = CalibrationStats()
        self._iter = iter(self.sources)
        self._pending: list[np.ndarray] = []
        total = len(self.sources) if max_images is None else min(len(self.sources), max_images)
        self._bar = None
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc="calibrating", unit="img", file=sys.stderr, leave=False)

    def _next_image(self) -> bool:
        """Load the next usable image into the pending samples; False when there is none (or the cap is reached)."""
        if self.max_images is not None and self.stats.images_used >= self.max_images:
            return False
        for source in self._iter:
            image = load_image(source)
            if image is None:
                self.stats.skipped.append(str(source))
                log.debug("calibration: skipped %s (missing or unreadable)", source)
                continue
            self._pending.extend(preprocess_image(self.meta, image, strips=self.strips))
            self.stats.images_used += 1
            if self._bar is not None:
                self._bar.update(1)
            return True
        return False

    def prime(self) -> bool:
        """Make sure at least one sample is ready (so an unusable list fails before quantization starts)."""
        return bool(self._pending) or self._next_image()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def get_next(self) -> dict[str, np.ndarray] | None:
        if not self._pending and not self._next_image():
            self.close()
            return None
        self.stats.samples += 1
        return {self.name: self._pending.pop(0)}


# --- quantization ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuantizeReport:
    path: Path
    images_used: int
    images_skipped: int
    samples: int
    method: str
    per_channel: bool
    seconds: float
    skipped: tuple[str, ...] = ()


def _no_usable_images(sources: Sequence, stats: CalibrationStats, subject: str | None) -> InputError:
    unset = sorted({m for s in stats.skipped for m in re.findall(r"\$\{?(\w+)", s)})
    hint = "check the paths in the list (relative paths are relative to the list file)"
    if unset:
        hint = f"the list uses ${{{unset[0]}}}, which is not set: set it (e.g. PERCEPTION_DATA=../shared/data)"
    return InputError(
        f"no usable calibration image: {len(stats.skipped)} of {len(sources)} missing or unreadable"
        + (f" (first: {stats.skipped[0]})" if stats.skipped else ""),
        subject=subject,
        hint=hint,
    )


def quantize_int8(
    model_path: str | Path,
    out_path: str | Path,
    images: Iterable[str | Path | np.ndarray],
    *,
    per_channel: bool = True,
    method: str = "percentile",
    max_images: int | None = None,
    percentile: float = 99.999,
    strips: int = STRIPS_PER_IMAGE,
    progress: bool = True,
    list_name: str | None = None,
) -> QuantizeReport:
    """Quantize `model_path` to a Q/DQ INT8 model at `out_path`, calibrated on `images` (paths or BGR arrays).

    Raises ModelError for a model that cannot be quantized or whose result TensorRT would refuse, InputError when no
    calibration image is usable.
    """
    from onnxruntime import __version__ as ort_version
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if method not in METHODS:
        raise InputError(f"unknown calibration method '{method}'", hint=f"use one of {', '.join(METHODS)}")
    started = time.perf_counter()
    model_file = load_model(model_path)
    meta = model_file.metadata
    source_model = read_onnx(model_path)
    if meta.decoder.get("precision") == "int8" or any(n.op_type == "QuantizeLinear" for n in source_model.graph.node):
        raise ModelError("is already quantized", subject=str(model_path), hint="quantize the float model")
    project = is_project_model(source_model)
    sources = list(images)
    reader = ImageCalibrationReader(meta, sources, max_images=max_images, strips=strips, progress=progress)
    if not reader.prime():
        reader.close()
        raise _no_usable_images(sources, reader.stats, list_name)

    calibrate_method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[method]
    extra = {
        "ActivationSymmetric": True,  # zero point 0: TensorRT takes symmetric INT8 only
        "WeightSymmetric": True,
        "QuantizeBias": False,  # TensorRT dequantizes INT8 only; biases stay float and are fused by the builder
        "CalibTensorRangeSymmetric": True,
    }
    if method == "percentile":
        extra["CalibPercentile"] = float(percentile)
    out_path = Path(out_path)
    # onnxruntime's calibrators print progress on stdout: keep stdout for results (the --json contract)
    with tempfile.TemporaryDirectory(prefix="perception-int8-") as tmp, contextlib.redirect_stdout(sys.stderr):
        tmp_out = Path(tmp) / "int8.onnx"
        ort_logger = logging.getLogger()
        level = ort_logger.level
        ort_logger.setLevel(max(level, logging.ERROR))  # the quantizer's generic advice is noise here
        kwargs: dict = {"calibration_data_reader": reader}
        if method == "entropy":
            # quantize_static builds its entropy calibrator with 128 bins for 128 quantized bins: one candidate
            # threshold, i.e. MinMax. Compute the ranges with TensorRT's classic settings (2048 bins -> 128) and hand
            # them over as a calibration cache (where quantize_static takes one; else its default stays).
            kwargs = _entropy_ranges(model_path, reader, Path(tmp), quantize_static)
        try:
            quantize_static(
                model_input=str(model_path),
                model_output=str(tmp_out),
                **kwargs,
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                reduce_range=False,
                calibrate_method=calibrate_method,
                extra_options=extra,
            )
        except ValueError as err:
            if reader.stats.samples == 0:
                raise _no_usable_images(sources, reader.stats, list_name) from err
            raise ModelError(f"quantization failed: {err}", subject=str(model_path)) from err
        finally:
            ort_logger.setLevel(level)
        model = onnx.load(str(tmp_out))
    stats = reader.stats
    if project:
        model.producer_name = f"{PRODUCER} (int8 qdq, onnxruntime {ort_version})"
    model.doc_string = source_model.doc_string
    model.graph.doc_string = source_model.graph.doc_string
    q_meta = dataclasses.replace(
        meta,
        name=f"{meta.name}_int8",
        decoder={
            **meta.decoder,
            "precision": "int8",
            "quantization": {
                "format": "QDQ",
                "activations": "int8 symmetric per-tensor",
                "weights": "int8 symmetric " + ("per-channel" if per_channel else "per-tensor"),
                "bias": "float",
                "method": method,
                **({"percentile": float(percentile)} if method == "percentile" else {}),
                "images": stats.images_used,
                "samples": stats.samples,
                "tool": f"onnxruntime {ort_version}",
            },
        },
    )
    try:
        check_tensorrt_compatible(model, project=project)
    except ModelError as err:
        raise ModelError(f"the quantized model would not load in TensorRT: {err.message}", subject=str(out_path)) from err
    save_model(model, q_meta, out_path)
    if stats.skipped:
        log.warning(
            "calibration: skipped %d missing or unreadable image(s), e.g. %s", len(stats.skipped), stats.skipped[0]
        )
    return QuantizeReport(
        path=out_path,
        images_used=stats.images_used,
        images_skipped=len(stats.skipped),
        samples=stats.samples,
        method=method,
        per_channel=per_channel,
        seconds=time.perf_counter() - started,
        skipped=tuple(stats.skipped),
    )


def _entropy_ranges(model_path: str | Path, reader: ImageCalibrationReader, tmp: Path, quantize_static) -> dict:
    """Entropy (KL) activation ranges as a calibration cache for quantize_static, where it takes one."""
    import inspect

    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        log.warning("this onnxruntime cannot take precomputed ranges: entropy calibration uses its defaults")
        return {"calibration_data_reader": reader}
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    calibrator = create_calibrator(
        Path(model_path),
        None,
        augmented_model_path=str(tmp / "augmented.onnx"),
        calibrate_method=CalibrationMethod.Entropy,
        extra_options={"symmetric": True, "num_bins": 2048, "num_quantized_bins": 128},
    )
    calibrator.collect_data(reader)
    cache = tmp / "entropy_ranges.json"
    save_tensors_data(calibrator.compute_data(), cache)
    return {"calibration_data_reader": None, "calibration_cache_path": str(cache)}


def qdq_summary(path_or_model: str | Path | onnx.ModelProto) -> dict[str, int]:
    """Counts of QuantizeLinear / DequantizeLinear nodes and of non-zero zero points (TensorRT needs 0)."""
    model = path_or_model if isinstance(path_or_model, onnx.ModelProto) else read_onnx(path_or_model)
    inits = {t.name: t for t in model.graph.initializer}
    nonzero = 0
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2 and node.input[2] in inits:
            nonzero += int(np.any(onnx.numpy_helper.to_array(inits[node.input[2]]) != 0))
    ops = [n.op_type for n in model.graph.node]
    return {
        "quantize_linear": ops.count("QuantizeLinear"),
        "dequantize_linear": ops.count("DequantizeLinear"),
        "nonzero_zero_points": nonzero,
    }

