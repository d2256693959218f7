"""The one inference interface: `Engine`, whatever runs underneath (ONNX Runtime or TensorRT).

An engine is opened from a model file whose metadata has been checked against its graph, so the names,
shapes and dtypes of its tensors are known without configuring anything. `infer` checks every feed at the
boundary (names, shapes, dtypes, finite values) and raises `InputError` naming the tensor, what it expected,
what it got and what to do; a failure inside the backend becomes an `EngineError` (chained), never a raw
backend exception, so a pipeline can log it and go on with the next frame.
"""
from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception.engines.metadata import ModelMetadata, TensorInfo
from perception.engines.model_file import ModelFile
from perception.errors import EngineError, InputError, PerceptionError

log = logging.getLogger("perception.engines")

BACKENDS = ("onnxruntime", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class TensorSpec:
    """A named engine input or output. A -1 dimension (foreign models only) accepts any size."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: float32, float16, int8, uint8, int32, int64, bool

    @classmethod
    def from_info(cls, info: TensorInfo) -> "TensorSpec":
        return cls(info.name, tuple(info.shape), info.dtype)

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    def concrete_shape(self, free_dim: int = 1) -> tuple[int, ...]:
        """The shape with every free (-1) dimension set to `free_dim`: for warm-up and self-tests."""
        return tuple(free_dim if d < 0 else d for d in self.shape)

    def accepts_shape(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == len(self.shape) and all(d < 0 or d == s for d, s in zip(self.shape, shape))


class Engine(ABC):
    """A loaded model ready to run. Use as a context manager, or call `close()`.

    Subclasses set `backend` and implement `_run` (validated, contiguous feeds -> outputs) and `_release`.
    """

    backend: str = ""

    def __init__(self, model: ModelFile, *, precision: str, backend_reason: str = "",
                 fallback_reason: str | None = None) -> None:
        self.model = model
        self.precision = precision
        #: why this backend runs the model (always set)
        self.backend_reason = backend_reason
        #: set when the backend asked for could not be used and this one runs instead
        self.fallback_reason = fallback_reason
        self.inputs: list[TensorSpec] = [TensorSpec.from_info(t) for t in model.metadata.inputs]
        self.outputs: list[TensorSpec] = [TensorSpec.from_info(t) for t in model.metadata.outputs]
        self._closed = False
        self._close_lock = threading.Lock()

    # --- what it is --------------------------------------------------------------------------------
    @property
    def metadata(self) -> ModelMetadata:
        return self.model.metadata

    @property
    def path(self) -> Path:
        return self.model.path

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.metadata.name!r} backend={self.backend} "
                f"precision={self.precision}{' closed' if self._closed else ''}>")

    # --- running -----------------------------------------------------------------------------------
    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once. `feeds` maps every input name to an array of its declared shape and dtype."""
        if self._closed:
            raise EngineError("is closed", subject=self._subject, hint="open the model again with open_engine()")
        arrays = check_feeds(self.inputs, feeds)
        try:
            return self._run(arrays)
        except PerceptionError:
            raise
        except Exception as err:  # any backend failure: keep the process alive, keep the cause
            raise EngineError(
                f"inference failed in {self.backend}: {type(err).__name__}: {err}",
                subject=self._subject,
                hint="the model or the backend is broken for this input; check the log, try --backend onnxruntime",
            ) from err

    def warmup(self, n: int = 3) -> None:
        """Run `n` times on zeros so that lazy allocation and kernel selection happen before real frames."""
        feeds = {t.name: np.zeros(t.concrete_shape(), dtype=t.np_dtype) for t in self.inputs}
        for _ in range(max(0, int(n))):
            self.infer(feeds)

    def close(self) -> None:
        """Release the session / device memory. Safe to call twice."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._release()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- for subclasses ----------------------------------------------------------------------------
    @property
    def _subject(self) -> str:
        return f"engine {self.metadata.name} ({self.path.name}, {self.backend})"

    @abstractmethod
    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the backend on checked feeds; return {output name: array}."""

    @abstractmethod
    def _release(self) -> None:
        """Free the backend's resources (called once by `close`)."""


def sample_feeds(specs: list[TensorSpec], seed: int = 0) -> dict[str, np.ndarray]:
    """Valid feeds for a self-test: uniform [0, 1) floats, zeros otherwise; free dimensions set to 1."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        shape = spec.concrete_shape()
        if spec.np_dtype.kind == "f":
            feeds[spec.name] = rng.uniform(0.0, 1.0, shape).astype(spec.np_dtype)
        else:
            feeds[spec.name] = np.zeros(shape, spec.np_dtype)
    return feeds


def check_feeds(specs: list[TensorSpec], feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The boundary check every engine applies; returns C-contiguous arrays in the declared order."""
    if not isinstance(feeds, Mapping):
        raise InputError(
            f"feeds must be a dict of input name -> numpy array, got {type(feeds).__name__}",
            subject="engine inputs",
            hint=f"call infer({{{', '.join(repr(s.name) for s in specs)}: array}})",
        )
    expected = [s.name for s in specs]
    missing = [n for n in expected if n not in feeds]
    extra = sorted(str(n) for n in feeds if n not in expected)
    if missing or extra:
        parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else [])
        raise InputError(
            f"{' and '.join(parts)}; the model's inputs are {expected}",
            subject="engine inputs",
            hint="feed exactly the input names the model metadata declares",
        )
    checked = {}
    for spec in specs:
        checked[spec.name] = _check_array(spec, feeds[spec.name])
    return checked


def _check_array(spec: TensorSpec, value) -> np.ndarray:
    subject = f"input '{spec.name}'"
    if not isinstance(value, np.ndarray):
        raise InputError(f"is a {type(value).__name__}, expected a numpy array {spec.dtype}{list(spec.shape)}",
                         subject=subject, hint="pass np.asarray(value, dtype=...)")
    if value.dtype != spec.np_dtype:
        raise InputError(f"has dtype {value.dtype}, expected {spec.dtype}", subject=subject,
                         hint=f"convert with .astype(np.{spec.dtype}) after the model's normalisation")
    if not spec.accepts_shape(value.shape):
        raise InputError(f"has shape {list(value.shape)}, expected {list(spec.shape)}", subject=subject,
                         hint="resize/transpose the frame to the model's declared input shape and layout")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        bad = int(value.size - np.count_nonzero(np.isfinite(value)))
        raise InputError(f"contains {bad} NaN/inf values, expected finite numbers", subject=subject,
                         hint="check the preprocessing (division by zero, invalid disparity) before inference")
    return np.ascontiguousarray(value)
