"""The ONNX Runtime backend: the default everywhere (CPU here; CUDA / TensorRT providers when present).

ONNX Runtime runs a graph at the precision it is written in: a Q/DQ INT8 model runs INT8 (the CPU provider
fuses Q/DQ pairs into integer kernels), a float model runs FP32. Reduced precision for a float model is the
TensorRT backend's job.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from perception.engines.base import Engine
from perception.engines.model_file import ModelFile
from perception.engines.precision import CALIBRATE_HINT, check_precision, graph_op_types, model_precision
from perception.errors import EngineError, ModelError

log = logging.getLogger("perception.engines")

CPU = "CPUExecutionProvider"
# Best first. The TensorRT and CUDA providers are used only when this onnxruntime build lists them.
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", CPU)


def select_providers(available: Sequence[str], restrict: Sequence[str] | None = None) -> list[str]:
    """The providers to ask for, best first: `restrict` if the user gave it (each must be available),
    else every preferred one this build has. The CPU provider always ends the list as the last resort."""
    if restrict:
        missing = [p for p in restrict if p not in available]
        if missing:
            raise EngineError(f"execution providers {missing} are not in this onnxruntime build",
                              subject="onnxruntime", hint=f"available: {list(available)}")
        chosen = list(dict.fromkeys(restrict))
    else:
        chosen = [p for p in PREFERRED_PROVIDERS if p in available]
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


class OnnxRuntimeEngine(Engine):
    """An `Engine` on an `onnxruntime.InferenceSession`."""

    backend = "onnxruntime"

    def __init__(self, model: ModelFile, *, precision: str | None = None, threads: int | None = None,
                 providers: Sequence[str] | None = None, cache_dir: str | Path | None = None,
                 backend_reason: str = "", fallback_reason: str | None = None) -> None:
        import onnxruntime as ort  # heavy: only when an engine is opened

        actual = model_precision(model.metadata, graph_op_types(model.path))
        super().__init__(model, precision=actual, backend_reason=backend_reason, fallback_reason=fallback_reason)
        if precision is not None and check_precision(precision) != actual:
            advice = {"fp16": "; fp16 needs the TensorRT backend", "int8": f"; {CALIBRATE_HINT}"}.get(precision, "")
            # worth an INFO only when a reduced precision was asked for and cannot be given here
            (log.info if precision in ("fp16", "int8") else log.debug)(
                "%s: ONNX Runtime runs the model at its own precision (%s), not %s%s", model.path.name, actual,
                precision, advice)
        self.threads = threads
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: ORT's warnings are about its internals, not the user's model
        # INT8 (Q/DQ) on x86 CPUs without VNNI: ORT's fused u8s8 AVX2 kernels saturate 16-bit sums and can be off
        # by 10 % of the output range (measured on the project's test model); the precise mode avoids it
        options.add_session_config_entry("session.x64quantprecision", "1")
        if threads is not None:
            if int(threads) < 0:
                raise EngineError(f"threads must be >= 0, got {threads}", subject="onnxruntime",
                                  hint="0 or None lets ONNX Runtime decide")
            options.intra_op_num_threads = int(threads)
        wanted = select_providers(ort.get_available_providers(), providers)
        self._session = self._open(ort, options, wanted, precision, cache_dir)
        self.providers: list[str] = list(self._session.get_providers())
        self._output_names = [t.name for t in self.outputs]
        log.debug("%s: onnxruntime session on %s", model.path.name, self.providers)

    def _open(self, ort, options, providers: list[str], precision: str | None, cache_dir: str | Path | None):
        """Create the session; if a GPU provider fails to start, say so and retry on the CPU."""
        path = str(self.model.path)
        config = [_provider_options(p, precision, cache_dir) for p in providers]
        try:
            return ort.InferenceSession(path, options, providers=providers, provider_options=config)
        except Exception as err:
            if providers == [CPU]:  # the model itself is at fault: a graph this onnxruntime cannot run
                raise ModelError(f"onnxruntime cannot load the model: {type(err).__name__}: {str(err)[:300]}",
                                 subject=path, hint="the file may be corrupt (re-export or re-download it), or "
                                 "its opset/operators are beyond this onnxruntime (`perception engines verify "
                                 "MODEL`)") from err
            log.warning("%s: onnxruntime providers %s failed to start (%s); retrying on the CPU",
                        self.model.path.name, providers, err)
        return self._open(ort, options, [CPU], precision, cache_dir)

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self._session.run(self._output_names, feeds)
        return dict(zip(self._output_names, results))

    def _release(self) -> None:
        self._session = None


def _provider_options(provider: str, precision: str | None, cache_dir: str | Path | None) -> dict[str, str]:
    """TensorRT provider: FP16 when asked, and its own engine cache so a restart does not rebuild."""
    if provider != "TensorrtExecutionProvider":
        return {}
    from perception.engines.cache import default_cache_dir

    folder = Path(cache_dir or default_cache_dir()) / "onnxruntime-trt"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # no cache: the provider still works, it just rebuilds on every start
        log.warning("cannot create %s (%s): ONNX Runtime's TensorRT engines will not be cached", folder, err)
        return {"trt_fp16_enable": str(precision == "fp16")}
    return {"trt_fp16_enable": str(precision == "fp16"), "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": str(folder)}
