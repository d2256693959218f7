"""open_engine: backend choice, honest fallback from TensorRT, and lazy heavy imports."""
from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from perception.engines import factory, open_engine
from perception.errors import EngineError

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
needs_no_tensorrt = pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed here: no fallback to observe")


@needs_no_tensorrt
def test_tensorrt_status_names_what_is_missing():
    status = factory.tensorrt_status()
    assert not status.available
    assert "tensorrt" in status.reason


@needs_no_tensorrt
def test_auto_chooses_onnxruntime_here_and_says_why(tiny_conv, caplog):
    with caplog.at_level(logging.DEBUG, logger="perception.engines"):
        engine = open_engine(tiny_conv.path)
    with engine:
        assert engine.backend == "onnxruntime"
        assert engine.fallback_reason is None  # auto asked for the best available; nothing was refused
        assert "auto" in engine.backend_reason and "tensorrt" in engine.backend_reason
        assert engine.infer({"image": np.zeros((1, 3, 8, 8), np.float32)})["logits"].shape == (1, 2, 8, 8)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@needs_no_tensorrt
def test_explicit_tensorrt_falls_back_with_a_warning(tiny_conv, caplog):
    with caplog.at_level(logging.WARNING, logger="perception.engines"):
        engine = open_engine(tiny_conv.path, backend="tensorrt", precision="fp16")
    with engine:
        assert engine.backend == "onnxruntime"
        assert engine.precision == "fp32"  # what actually runs, not what was asked
        assert "tensorrt" in engine.fallback_reason
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "tensorrt" in warnings[0] and "pip install perception[gpu]" in warnings[0]
    assert "falling back to ONNX Runtime" in warnings[0] and tiny_conv.path.name in warnings[0]


def test_explicit_onnxruntime_never_warns(tiny_conv, caplog):
    with caplog.at_level(logging.INFO, logger="perception.engines"), \
            open_engine(tiny_conv.path, backend="onnxruntime") as engine:
        assert engine.backend == "onnxruntime" and engine.fallback_reason is None
        assert engine.backend_reason == "asked for"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_tensorrt_failure_while_opening_falls_back(tiny_conv, caplog, monkeypatch):
    """TensorRT present but failing on this model (parse/build error): ONNX Runtime runs it, with a WARNING."""
    import perception.engines.tensorrt as trt_backend

    class FailingTensorRT:
        def __init__(self, model, **options):
            raise EngineError("TensorRT cannot parse the model: Unsupported operator", subject=str(model.path))

    monkeypatch.setattr(factory, "tensorrt_status", lambda: factory.BackendStatus(True, "TensorRT 10.3 on test GPU"))
    monkeypatch.setattr(trt_backend, "TensorRTEngine", FailingTensorRT)
    with caplog.at_level(logging.WARNING, logger="perception.engines"):
        engine = open_engine(tiny_conv.path)
    with engine:
        assert engine.backend == "onnxruntime"
        assert "Unsupported operator" in engine.fallback_reason
    assert any("falling back to ONNX Runtime" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("options, fragment", [
    ({"backend": "tensorflow"}, "unknown backend 'tensorflow'"),
    ({"precision": "int4"}, "unknown precision 'int4'"),
])
def test_unknown_options_are_refused(tiny_conv, options, fragment):
    with pytest.raises(EngineError, match=fragment) as info:
        open_engine(tiny_conv.path, **options)
    assert info.value.hint


@needs_no_tensorrt
def test_the_tensorrt_engine_refuses_cleanly_without_tensorrt(tiny_conv):
    from perception.engines.model_file import load_model
    from perception.engines.tensorrt import TensorRTEngine

    with pytest.raises(EngineError, match="'tensorrt' is not installed") as info:
        TensorRTEngine(load_model(tiny_conv.path))
    assert "pip install perception[gpu]" in str(info.value)


def test_light_imports_do_not_load_onnxruntime_or_tensorrt():
    code = ("import sys, perception.engines, perception.engines.metadata, perception.engines.tensorrt, "
            "perception.engines.cache, perception.cli; perception.cli.build_parser(); "
            "print(sorted(m for m in ('onnxruntime', 'tensorrt', 'cuda') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_int8_asked_of_a_float_model_on_onnxruntime_says_how_to_get_one(tiny_conv, caplog):
    with caplog.at_level(logging.INFO, logger="perception.engines"), \
            open_engine(tiny_conv.path, backend="onnxruntime", precision="int8") as engine:
        assert engine.precision == "fp32"
    assert "perception calibrate int8" in caplog.text


def test_onnxruntime_tensorrt_provider_gets_a_plan_cache_folder(tmp_path):
    from perception.engines.onnxrt import _provider_options

    options = _provider_options("TensorrtExecutionProvider", "fp16", tmp_path)
    assert options["trt_fp16_enable"] == "True" and options["trt_engine_cache_enable"] == "True"
    assert Path(options["trt_engine_cache_path"]).is_dir()
    assert _provider_options("CPUExecutionProvider", "fp16", tmp_path) == {}
