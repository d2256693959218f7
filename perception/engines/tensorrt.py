"""The native TensorRT backend (TensorRT >= 10 named-tensor API, cuda-python for memory and streams).

Static shapes only: every I/O tensor gets one pinned host buffer and one device buffer at open time, bound
once with `set_tensor_address`. A frame is: copy feeds into pinned memory, async H2D copies, one
`execute_async_v3`, async D2H copies, one stream synchronisation. TensorRT and cuda-python are imported
only when an engine is opened; this module imports fine without them.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from perception.engines.base import Engine, TensorSpec
from perception.engines.cuda import CudaStream, DeviceBuffer, PinnedBuffer, cuda_call, cudart
from perception.engines.model_file import ModelFile
from perception.engines.trt_build import PlanSlot, ensure_plan, import_tensorrt, trt_logger
from perception.errors import EngineError, PerceptionError

log = logging.getLogger("perception.engines")


class TensorRTEngine(Engine):
    """An `Engine` on a cached (or freshly built) TensorRT plan."""

    backend = "tensorrt"

    def __init__(self, model: ModelFile, *, precision: str = "fp32", cache_dir: str | Path | None = None,
                 force_build: bool = False, progress: bool = True, device: int = 0,
                 backend_reason: str = "", fallback_reason: str | None = None) -> None:
        super().__init__(model, precision=precision, backend_reason=backend_reason, fallback_reason=fallback_reason)
        self._context = self._engine = self._runtime = self._stream = self._trt_logger = None
        self._host: dict[str, PinnedBuffer] = {}
        self._device: dict[str, DeviceBuffer] = {}
        self._lock = threading.Lock()  # one execution context: one frame at a time
        dynamic = [t.name for t in [*self.inputs, *self.outputs] if any(d < 0 for d in t.shape)]
        if dynamic:
            raise EngineError(f"tensors {dynamic} have dynamic dimensions", subject=str(model.path),
                              hint="the TensorRT backend needs static shapes: use --backend onnxruntime")
        try:
            self._open(precision, cache_dir, force_build, progress, device)
        except BaseException as err:
            self._release()
            if isinstance(err, (PerceptionError, KeyboardInterrupt)):
                raise
            raise EngineError(f"TensorRT failed to open the model: {type(err).__name__}: {err}",
                              subject=str(model.path), hint="try --backend onnxruntime") from err

    def _open(self, precision: str, cache_dir, force_build: bool, progress: bool, device: int) -> None:
        trt = import_tensorrt()
        cuda_call("cudaSetDevice", cudart().cudaSetDevice(device))
        options = dict(precision=precision, cache_dir=cache_dir, progress=progress, device=device)
        slot = ensure_plan(self.model, force=force_build, **options)
        self._trt_logger = trt_logger(trt)  # TensorRT keeps a raw pointer to it: keep it alive as long
        self._runtime = trt.Runtime(self._trt_logger)
        engine, problem = self._load(trt, slot)
        if problem and not (force_build or slot.decision.action == "build"):
            # A plan whose header looked current but does not load (corrupt, or a TensorRT minor-version
            # change the header did not capture): rebuild once rather than fail.
            log.warning("%s: the cached plan %s is unusable (%s); rebuilding it", self.path.name, slot.path.name, problem)
            slot = ensure_plan(self.model, force=True, **options)
            engine, problem = self._load(trt, slot)
        if problem:
            raise EngineError(f"the TensorRT plan is unusable: {problem}", subject=str(slot.path),
                              hint="try --backend onnxruntime, and report the model")
        self._engine = engine
        self.precision = slot.choice.precision
        self.plan_path = slot.path
        self.gpu = slot.gpu
        self._context = engine.create_execution_context()
        if self._context is None:
            raise EngineError("cannot create a TensorRT execution context", subject=str(slot.path),
                              hint="the GPU may be out of memory: close other engines")
        self._stream = CudaStream()
        for spec in [*self.inputs, *self.outputs]:
            host = self._host[spec.name] = PinnedBuffer(spec.shape, spec.np_dtype)
            device_buffer = self._device[spec.name] = DeviceBuffer(host.nbytes)
            if not self._context.set_tensor_address(spec.name, device_buffer.ptr):
                raise EngineError(f"set_tensor_address('{spec.name}') failed", subject=str(slot.path))

    def _load(self, trt, slot: PlanSlot):
        """(engine, None) or (None, what is wrong): deserialisation failure or I/O that disagrees with metadata."""
        try:
            engine = self._runtime.deserialize_cuda_engine(slot.path.read_bytes())
        except Exception as err:  # TensorRT raises or returns None depending on the failure
            return None, f"deserialisation failed ({err})"
        if engine is None:
            return None, "deserialisation failed (see the TensorRT error above)"
        problem = io_mismatch(plan_io(trt, engine), self.inputs, self.outputs)
        return (None, problem) if problem else (engine, None)

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            for spec in self.inputs:
                np.copyto(self._host[spec.name].array, feeds[spec.name])
                self._stream.copy_to_device(self._device[spec.name], self._host[spec.name])
            if not self._context.execute_async_v3(self._stream.ptr):
                raise EngineError("execute_async_v3 returned false", subject=self._subject,
                                  hint="see the TensorRT error in the log")
            for spec in self.outputs:
                self._stream.copy_to_host(self._host[spec.name], self._device[spec.name])
            self._stream.synchronize()  # once, after all copies: the only wait per frame
            return {spec.name: self._host[spec.name].array.copy() for spec in self.outputs}

    def _release(self) -> None:
        # The context goes before the engine, the engine before the runtime; memory after the context.
        self._context = None
        self._engine = None
        self._runtime = None
        for buffer in [*self._host.values(), *self._device.values()]:
            try:
                buffer.free()
            except EngineError as err:
                log.warning("%s: %s", self.path.name, err)
        self._host.clear()
        self._device.clear()
        if self._stream is not None:
            try:
                self._stream.close()
            except EngineError as err:
                log.warning("%s: %s", self.path.name, err)
            self._stream = None


def plan_io(trt, engine) -> dict[str, tuple[str, tuple[int, ...], str]]:
    """{name: ("input"|"output", shape, numpy dtype name)} of a deserialised engine."""
    io = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        mode = "input" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "output"
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name
        io[name] = (mode, tuple(int(d) for d in engine.get_tensor_shape(name)), dtype)
    return io


def io_mismatch(io: dict[str, tuple[str, tuple[int, ...], str]], inputs: list[TensorSpec],
                outputs: list[TensorSpec]) -> str | None:
    """How a plan's I/O disagrees with the model metadata, in words; None when they agree."""
    declared = {t.name: ("input", t.shape, t.dtype) for t in inputs}
    declared.update({t.name: ("output", t.shape, t.dtype) for t in outputs})
    if set(io) != set(declared):
        return f"plan tensors {sorted(io)} are not the model's {sorted(declared)}"
    for name, (mode, shape, dtype) in declared.items():
        if io[name] != (mode, shape, dtype):
            return f"tensor '{name}' is {io[name][0]} {io[name][2]}{list(io[name][1])} in the plan, " \
                   f"{mode} {dtype}{list(shape)} in the metadata"
    return None
