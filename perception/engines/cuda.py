"""Thin owning wrappers over the CUDA runtime (cuda-python) for the TensorRT backend.

cuda-python is imported lazily (`cuda.bindings.runtime`, or the older `cuda.cudart`): this module imports
fine without it. Every call's error code is checked; a failure is an `EngineError` naming the call.
"""
from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass

import numpy as np

from perception.errors import EngineError

log = logging.getLogger("perception.engines")

INSTALL_HINT = "pip install perception[gpu] on a machine with the NVIDIA driver"


def cudart():
    """The cuda-python runtime module; EngineError when cuda-python is not installed."""
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.6

        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart as runtime  # older cuda-python

        return runtime
    except ImportError as err:
        raise EngineError("cuda-python is not installed", subject="CUDA", hint=INSTALL_HINT) from err


def _error_code(err) -> int:
    """cuda-python returns enum members (with .value); accept plain ints too."""
    return int(getattr(err, "value", err))


def cuda_call(call: str, result):
    """Check a cuda-python result `(err, *values)`; return the values (one, a tuple, or None)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if _error_code(err) != 0:
        name = getattr(err, "name", None) or f"error {_error_code(err)}"
        raise EngineError(f"{call} failed: {name}", subject="CUDA",
                          hint="check `nvidia-smi`, the driver version and free GPU memory")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    major: int
    minor: int

    @property
    def compute_capability(self) -> str:
        """'sm87' for Orin, 'sm90' for H100: part of the plan cache key."""
        return f"sm{self.major}{self.minor}"


def gpu_count() -> int:
    """How many CUDA GPUs the runtime sees; EngineError when cuda-python or the driver is missing."""
    return int(cuda_call("cudaGetDeviceCount", cudart().cudaGetDeviceCount()))


def gpu_info(index: int = 0) -> GpuInfo:
    rt = cudart()
    props = cuda_call("cudaGetDeviceProperties", rt.cudaGetDeviceProperties(index))
    name = props.name.decode(errors="replace").rstrip("\0") if isinstance(props.name, bytes) else str(props.name)
    return GpuInfo(index, name.strip(), int(props.major), int(props.minor))


class DeviceBuffer:
    """`nbytes` of device memory, freed by `free()` (or when garbage collected)."""

    def __init__(self, nbytes: int) -> None:
        self._rt = cudart()
        self.nbytes = int(nbytes)
        self.ptr: int | None = int(cuda_call("cudaMalloc", self._rt.cudaMalloc(max(1, self.nbytes))))

    def free(self) -> None:
        if self.ptr is not None:
            ptr, self.ptr = self.ptr, None
            cuda_call("cudaFree", self._rt.cudaFree(ptr))

    def __del__(self) -> None:
        try:
            self.free()
        except Exception:  # interpreter shutdown or a dead context: nothing left to free
            pass


class PinnedBuffer:
    """Page-locked host memory viewed as a numpy array of `shape` and `dtype` (fast async copies)."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self._rt = cudart()
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(d) for d in shape)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.ptr: int | None = int(cuda_call("cudaMallocHost", self._rt.cudaMallocHost(max(1, self.nbytes))))
        raw = (ctypes.c_uint8 * max(1, self.nbytes)).from_address(self.ptr)
        self.array: np.ndarray = np.frombuffer(raw, dtype=np.uint8, count=self.nbytes).view(self.dtype).reshape(self.shape)

    def free(self) -> None:
        if self.ptr is not None:
            ptr, self.ptr = self.ptr, None
            self.array = np.empty(0, self.dtype)  # drop the view before the memory goes
            cuda_call("cudaFreeHost", self._rt.cudaFreeHost(ptr))

    def __del__(self) -> None:
        try:
            self.free()
        except Exception:
            pass


class CudaStream:
    """A CUDA stream; a context manager that destroys it on exit."""

    def __init__(self) -> None:
        self._rt = cudart()
        self.handle = cuda_call("cudaStreamCreate", self._rt.cudaStreamCreate())

    @property
    def ptr(self) -> int:
        """The raw handle as an int (what `execute_async_v3` takes)."""
        return int(self.handle)

    def copy_to_device(self, device: DeviceBuffer, host: PinnedBuffer) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        cuda_call("cudaMemcpyAsync(host->device)",
                  self._rt.cudaMemcpyAsync(device.ptr, host.ptr, host.nbytes, kind, self.handle))

    def copy_to_host(self, host: PinnedBuffer, device: DeviceBuffer) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        cuda_call("cudaMemcpyAsync(device->host)",
                  self._rt.cudaMemcpyAsync(host.ptr, device.ptr, host.nbytes, kind, self.handle))

    def synchronize(self) -> None:
        cuda_call("cudaStreamSynchronize", self._rt.cudaStreamSynchronize(self.handle))

    def close(self) -> None:
        if self.handle is not None:
            handle, self.handle = self.handle, None
            cuda_call("cudaStreamDestroy", self._rt.cudaStreamDestroy(handle))

    def __enter__(self) -> "CudaStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
