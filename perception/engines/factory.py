"""`open_engine`: the one way to get an `Engine`, choosing the backend and saying why.

- "auto": TensorRT when `tensorrt` (>= 10) and cuda-python import and a CUDA GPU is present, else ONNX Runtime.
- "tensorrt" asked for explicitly but unavailable: a WARNING naming what is missing and how to get it, then
  ONNX Runtime — never silently. `engine.backend` says what runs, `engine.backend_reason` why, and
  `engine.fallback_reason` is set whenever the backend asked for (or TensorRT under "auto") could not be used.
- A TensorRT failure while opening (parse, build, plan) also falls back to ONNX Runtime with a WARNING.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from perception.engines.base import BACKENDS, Engine
from perception.engines.model_file import load_model
from perception.engines.precision import check_precision
from perception.errors import EngineError

log = logging.getLogger("perception.engines")


@dataclass(frozen=True)
class BackendStatus:
    available: bool
    reason: str  # what is missing (or what was found), in words a user can act on


def tensorrt_status() -> BackendStatus:
    """Whether the native TensorRT backend can run here: module tensorrt >= 10, cuda-python, a CUDA GPU."""
    from perception.engines.cuda import gpu_count, gpu_info
    from perception.engines.trt_build import import_tensorrt

    try:
        trt = import_tensorrt()
        count = gpu_count()
    except EngineError as err:
        return BackendStatus(False, err.message)
    if count < 1:
        return BackendStatus(False, "no CUDA GPU is visible (cudaGetDeviceCount = 0)")
    try:
        gpu = gpu_info(0)
    except EngineError as err:
        return BackendStatus(False, err.message)
    return BackendStatus(True, f"TensorRT {trt.__version__} on {gpu.name} ({gpu.compute_capability})")


def open_engine(model_path: str | Path, *, backend: str = "auto", precision: str = "fp32", task: str | None = None,
                threads: int | None = None, cache_dir: str | Path | None = None,
                providers: Sequence[str] | None = None, force_build: bool = False, progress: bool = True) -> Engine:
    """Open `model_path` (metadata checked against the graph; `task` refuses a model for another stage).

    `threads`: ONNX Runtime intra-op threads (None: ONNX Runtime decides). `providers`: restrict ONNX Runtime's
    execution providers. `cache_dir`: the TensorRT plan cache (default `$PERCEPTION_ENGINE_CACHE` or
    `~/.cache/perception/engines`). `force_build`/`progress`: TensorRT plan (re)building.
    """
    if backend not in ("auto", *BACKENDS):
        raise EngineError(f"unknown backend '{backend}'", subject="backend",
                          hint=f"use one of auto, {', '.join(BACKENDS)}")
    check_precision(precision)
    model = load_model(model_path, task=task)  # ModelError here is the user's to fix: no fallback hides it
    fallback_reason = None
    if backend in ("auto", "tensorrt"):
        status = tensorrt_status()
        if status.available:
            from perception.engines.tensorrt import TensorRTEngine

            try:
                return TensorRTEngine(model, precision=precision, cache_dir=cache_dir, force_build=force_build,
                                      progress=progress, backend_reason=f"{backend}: {status.reason}")
            except EngineError as err:
                fallback_reason = f"TensorRT could not open the model: {err}"
                log.warning("%s: %s; falling back to ONNX Runtime", model.path.name, fallback_reason)
        elif backend == "tensorrt":
            fallback_reason = f"TensorRT backend unavailable: {status.reason}"
            log.warning("%s: the TensorRT backend was asked for, but %s (install it with "
                        "`pip install perception[gpu]` on a machine with the NVIDIA driver); "
                        "falling back to ONNX Runtime", model.path.name, status.reason)
        else:
            log.debug("%s: auto backend: ONNX Runtime, because %s", model.path.name, status.reason)
        reason = fallback_reason or f"auto: TensorRT unavailable ({status.reason})"
    else:
        reason = "asked for"
    from perception.engines.onnxrt import OnnxRuntimeEngine

    return OnnxRuntimeEngine(model, precision=precision, threads=threads, providers=providers, cache_dir=cache_dir,
                             backend_reason=reason, fallback_reason=fallback_reason)
