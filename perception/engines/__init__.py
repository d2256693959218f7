"""One inference interface (Engine) over ONNX Runtime and TensorRT; model metadata; plan cache; quantization.

    from perception.engines import open_engine
    with open_engine("engines/scene.onnx", task="scene") as engine:
        outputs = engine.infer({engine.inputs[0].name: image})

Names are imported lazily (PEP 562) so that `import perception.engines.metadata` stays cheap and
`perception --help` never pays for onnxruntime.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Engine": "perception.engines.base",
    "TensorSpec": "perception.engines.base",
    "BACKENDS": "perception.engines.base",
    "PRECISIONS": "perception.engines.base",
    "open_engine": "perception.engines.factory",
    "tensorrt_status": "perception.engines.factory",
    "OnnxRuntimeEngine": "perception.engines.onnxrt",
    "TensorRTEngine": "perception.engines.tensorrt",
    "default_cache_dir": "perception.engines.cache",
    "shipped_models_dir": "perception.engines.catalog",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'perception.engines' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
