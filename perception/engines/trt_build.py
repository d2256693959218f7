"""Building TensorRT plans from ONNX (TensorRT >= 10), with progress on stderr and a plan cache.

`ensure_plan` is what the engine and `perception engines build` call: it picks the precision, computes the
cache key, and loads or (re)builds the plan, saying why. TensorRT is imported lazily; this module imports
fine without it.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from perception.engines.cache import (BuildConfig, PlanDecision, PlanHeader, PlanKey, _atomic_write, decide_plan,
                                      default_cache_dir, write_plan)
from perception.engines.cuda import INSTALL_HINT, GpuInfo, gpu_info
from perception.engines.model_file import ModelFile
from perception.engines.precision import (PrecisionChoice, graph_op_types, model_precision, platform_fast_modes,
                                          select_precision)
from perception.errors import EngineError

log = logging.getLogger("perception.engines")
MIN_TRT_MAJOR = 10


def import_tensorrt():
    """The `tensorrt` module (>= 10); EngineError naming what is missing otherwise."""
    try:
        import tensorrt as trt
    except ImportError as err:
        raise EngineError("the Python module 'tensorrt' is not installed", subject="TensorRT",
                          hint=INSTALL_HINT) from err
    major = int(str(trt.__version__).split(".")[0])
    if major < MIN_TRT_MAJOR:
        raise EngineError(f"TensorRT {trt.__version__} is installed but >= {MIN_TRT_MAJOR} is needed",
                          subject="TensorRT", hint=INSTALL_HINT)
    return trt


class BuildProgress:
    """TensorRT's build phases as nested tqdm bars on stderr. Plain Python: TensorRT calls it through a
    thin `trt.IProgressMonitor` adapter. Ctrl-C during a build cancels it cleanly (step_complete -> False)."""

    def __init__(self, file: IO[str] | None = None, *, disable: bool = False) -> None:
        self.file = file if file is not None else sys.stderr
        self.disable = disable
        self.cancelled = False
        self._bars: dict[str, object] = {}
        self._depth: dict[str, int] = {}

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        from tqdm import tqdm

        try:
            depth = self._depth.get(parent_phase, -1) + 1 if parent_phase else 0
            self._depth[phase_name] = depth
            self._bars[phase_name] = tqdm(total=max(1, int(num_steps)), desc="  " * depth + phase_name,
                                          position=depth, leave=depth == 0, file=self.file, disable=self.disable,
                                          mininterval=0.5, dynamic_ncols=True)
        except KeyboardInterrupt:
            self.cancelled = True

    def step_complete(self, phase_name: str, step: int) -> bool:
        """`step` counts from 0; returning False asks TensorRT to cancel the build."""
        try:
            bar = self._bars.get(phase_name)
            if bar is not None:
                bar.n = int(step) + 1
                bar.refresh()
        except KeyboardInterrupt:
            self.cancelled = True
        return not self.cancelled

    def phase_finish(self, phase_name: str) -> None:
        try:
            bar = self._bars.pop(phase_name, None)
            self._depth.pop(phase_name, None)
            if bar is not None:
                bar.n = bar.total
                bar.close()
        except KeyboardInterrupt:
            self.cancelled = True


def _progress_monitor(trt, progress: BuildProgress):
    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            progress.phase_start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name, step):
            return progress.step_complete(phase_name, step)

        def phase_finish(self, phase_name):
            progress.phase_finish(phase_name)

    return Monitor()


def trt_logger(trt):
    """A TensorRT logger that writes into Python logging (warnings and errors only)."""

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            levels = trt.ILogger.Severity
            if severity in (levels.INTERNAL_ERROR, levels.ERROR):
                log.error("TensorRT: %s", msg)
            elif severity == levels.WARNING:
                log.warning("TensorRT: %s", msg)
            else:
                log.debug("TensorRT: %s", msg)

    return Logger()


def build_plan(onnx_path: str | Path, choice: PrecisionChoice, config: BuildConfig, *,
               timing_cache: Path | None = None, progress: BuildProgress | None = None) -> bytes:
    """ONNX -> serialized plan. Explicit quantization: a Q/DQ graph only needs the INT8 flag."""
    trt = import_tensorrt()
    subject = str(onnx_path)
    logger = trt_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineError(f"TensorRT cannot parse the model: {'; '.join(errors[:5]) or 'no detail'}", subject=subject,
                          hint="check its operators against TensorRT's ONNX support, or use --backend onnxruntime")
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if any(d < 0 for d in tensor.shape):
            raise EngineError(f"input '{tensor.name}' has dynamic shape {list(tensor.shape)}", subject=subject,
                              hint="the TensorRT backend needs static shapes: export with a fixed input size")
    settings = builder.create_builder_config()
    settings.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(config.workspace_mb) << 20)
    settings.builder_optimization_level = int(config.optimization_level)
    for flag in config.flags:
        settings.set_flag(getattr(trt.BuilderFlag, flag.upper()))
    monitor = None  # held here so the Python object outlives the build that calls it
    if progress is not None and hasattr(trt, "IProgressMonitor"):
        monitor = settings.progress_monitor = _progress_monitor(trt, progress)
    cache = _load_timing_cache(settings, timing_cache)
    started = time.monotonic()
    serialized = builder.build_serialized_network(network, settings)
    if serialized is None:
        raise EngineError("TensorRT failed to build a plan", subject=subject,
                          hint="see the TensorRT errors above; try another --precision or --backend onnxruntime")
    del monitor
    log.info("%s: built a %s plan in %.1f s", Path(onnx_path).name, choice.precision, time.monotonic() - started)
    if cache is not None and timing_cache is not None:
        try:
            _atomic_write(timing_cache, bytes(settings.get_timing_cache().serialize()))
        except OSError as err:  # a timing cache only speeds up the next build
            log.warning("cannot save the TensorRT timing cache %s: %s", timing_cache, err)
    return bytes(serialized)


def _load_timing_cache(settings, path: Path | None):
    if path is None:
        return None
    data = path.read_bytes() if path.is_file() else b""
    try:
        cache = settings.create_timing_cache(data)
        settings.set_timing_cache(cache, ignore_mismatch=False)
    except Exception as err:  # a corrupt or foreign cache: start afresh rather than fail the build
        log.warning("ignoring the TensorRT timing cache %s (%s)", path, err)
        cache = settings.create_timing_cache(b"")
        settings.set_timing_cache(cache, ignore_mismatch=False)
    return cache


@dataclass(frozen=True)
class PlanSlot:
    """Where the plan for (model, precision, this GPU, this TensorRT) lives, and how it got there."""

    path: Path
    key: PlanKey
    choice: PrecisionChoice
    decision: PlanDecision
    gpu: GpuInfo


def ensure_plan(model: ModelFile, *, precision: str = "fp32", cache_dir: str | Path | None = None,
                force: bool = False, workspace_mb: int = 1024, timing_cache: bool = True,
                progress: bool = True, device: int = 0) -> PlanSlot:
    """Find the current cached plan for `model`, or build it (with progress) and cache it."""
    trt = import_tensorrt()
    gpu = gpu_info(device)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    fast_fp16, fast_int8 = platform_fast_modes(gpu.major, gpu.minor)
    graph = model_precision(model.metadata, graph_op_types(model.path))
    choice = select_precision(precision, model=graph, fast_fp16=fast_fp16, fast_int8=fast_int8)
    (log.warning if choice.downgraded else log.info)("%s: precision %s: %s", model.path.name, choice.precision,
                                                     choice.reason)
    config = BuildConfig(flags=choice.flags, workspace_mb=workspace_mb)
    key = PlanKey(model.sha256, str(trt.__version__), gpu.compute_capability, choice.precision, config.config_hash())
    path = key.plan_path(cache_dir, model.metadata.name)
    decision = decide_plan(path, key, gpu_name=gpu.name, force=force)
    if decision.action == "build":
        (log.warning if decision.warn else log.info)(
            "%s: building a TensorRT %s plan for %s (%s) because %s; this can take minutes, once",
            model.path.name, choice.precision, gpu.name, gpu.compute_capability, decision.reason)
        started = time.monotonic()
        cache_file = cache_dir / f"timing-trt{key.trt_version}-{key.compute_capability}.cache" if timing_cache else None
        plan = build_plan(model.path, choice, config, timing_cache=cache_file,
                          progress=BuildProgress(disable=not progress))
        header = PlanHeader(key=key, model_name=model.metadata.name, model_path=str(model.path.resolve()),
                            gpu_name=gpu.name, built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                            build_seconds=round(time.monotonic() - started, 2))
        write_plan(path, plan, header)
    return PlanSlot(path, key, choice, decision, gpu)
