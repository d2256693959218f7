"""The TensorRT backend's pure parts, tested without TensorRT or a GPU: precision choice, build progress,
CUDA error checking, plan I/O checks."""
from __future__ import annotations

import importlib.util
import io
import logging

import pytest

from perception.engines.base import TensorSpec
from perception.engines.cuda import cuda_call
from perception.engines.precision import graph_op_types, model_precision, platform_fast_modes, select_precision
from perception.engines.tensorrt import io_mismatch
from perception.engines.trt_build import BuildProgress
from perception.errors import EngineError


@pytest.mark.parametrize("requested, model, fp16, int8, expected, flags, downgraded", [
    ("fp32", "fp32", True, True, "fp32", (), False),
    ("fp16", "fp32", True, True, "fp16", ("fp16",), False),
    ("fp16", "fp32", False, True, "fp32", (), True),          # no fast FP16 (e.g. sm61)
    ("int8", "fp32", True, True, "fp16", ("fp16",), True),     # float model: no implicit calibration
    ("int8", "fp32", False, False, "fp32", (), True),
    ("int8", "int8", True, True, "int8", ("int8", "fp16"), False),  # Q/DQ: INT8 flag, FP16 for the rest
    ("int8", "int8", False, True, "int8", ("int8",), False),
    ("fp32", "int8", True, True, "int8", ("int8", "fp16"), True),   # a Q/DQ graph runs INT8 whatever is asked
    ("int8", "int8", True, False, "int8", ("int8", "fp16"), True),  # builds, but says it will be slow
    ("fp32", "fp16", True, True, "fp16", ("fp16",), False),
])
def test_select_precision(requested, model, fp16, int8, expected, flags, downgraded):
    choice = select_precision(requested, model=model, fast_fp16=fp16, fast_int8=int8)
    assert (choice.precision, choice.flags, choice.downgraded) == (expected, flags, downgraded)
    assert choice.reason


def test_int8_for_a_float_model_says_how_to_get_one():
    choice = select_precision("int8", model="fp32", fast_fp16=True, fast_int8=True)
    assert "Q/DQ" in choice.reason and "perception calibrate int8" in choice.reason


def test_unknown_precision_is_refused():
    with pytest.raises(EngineError, match="unknown precision 'fp8'"):
        select_precision("fp8", model="fp32", fast_fp16=True, fast_int8=True)


@pytest.mark.parametrize("major, minor, expected", [
    (5, 0, (False, False)), (5, 3, (True, False)), (6, 1, (False, True)), (6, 2, (True, True)),
    (7, 5, (True, True)), (8, 7, (True, True)), (9, 0, (True, True)),
])
def test_platform_fast_modes(major, minor, expected):
    assert platform_fast_modes(major, minor) == expected


def test_model_precision_from_graph_and_metadata(make_tiny_conv, caplog):
    float_model = make_tiny_conv("f.onnx")
    qdq_model = make_tiny_conv("q.onnx", qdq=True)
    assert model_precision(float_model.meta, graph_op_types(float_model.path)) == "fp32"
    qdq_ops = graph_op_types(qdq_model.path)
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= qdq_ops
    assert model_precision(qdq_model.meta, qdq_ops) == "int8"
    declared = make_tiny_conv("d.onnx", precision="int8")
    assert model_precision(declared.meta, graph_op_types(declared.path)) == "int8"
    lying = make_tiny_conv("l.onnx", qdq=True, precision="fp32")
    with caplog.at_level(logging.WARNING, logger="perception.engines"):
        assert model_precision(lying.meta, graph_op_types(lying.path)) == "int8"
    assert "Q/DQ" in caplog.text


def test_build_progress_draws_nested_phases_and_can_cancel():
    out = io.StringIO()
    progress = BuildProgress(out)
    progress.phase_start("Building engine", None, 2)
    progress.phase_start("Tactic selection", "Building engine", 4)
    assert progress._depth == {"Building engine": 0, "Tactic selection": 1}
    for step in range(4):
        assert progress.step_complete("Tactic selection", step) is True
    assert progress._bars["Tactic selection"].n == 4
    progress.phase_finish("Tactic selection")
    assert progress.step_complete("Building engine", 0) is True
    progress.cancelled = True  # what Ctrl-C inside a callback sets
    assert progress.step_complete("Building engine", 1) is False
    progress.phase_finish("Building engine")
    assert not progress._bars
    text = out.getvalue()
    assert "Building engine" in text and "Tactic selection" in text


class _Err:
    """Stands in for a cuda-python error enum member (value + name)."""

    def __init__(self, value: int, name: str):
        self.value, self.name = value, name


def test_cuda_call_returns_values_and_names_a_failed_call():
    ok = _Err(0, "cudaSuccess")
    assert cuda_call("cudaMalloc", (ok, 1234)) == 1234
    assert cuda_call("cudaMemcpyAsync", (ok,)) is None
    assert cuda_call("cudaMemGetInfo", (ok, 1, 2)) == (1, 2)
    assert cuda_call("cudaFree", 0) is None
    with pytest.raises(EngineError) as info:
        cuda_call("cudaMalloc", (_Err(2, "cudaErrorMemoryAllocation"), None))
    assert "cudaMalloc failed: cudaErrorMemoryAllocation" in str(info.value) and info.value.hint
    with pytest.raises(EngineError, match="cudaStreamCreate failed: error 999"):
        cuda_call("cudaStreamCreate", (999, None))


@pytest.mark.skipif(importlib.util.find_spec("cuda") is not None, reason="cuda-python is installed here")
def test_missing_cuda_python_is_named():
    from perception.engines.cuda import cudart

    with pytest.raises(EngineError, match="cuda-python is not installed") as info:
        cudart()
    assert "pip install perception[gpu]" in str(info.value)


def test_plan_io_must_match_the_metadata():
    inputs = [TensorSpec("image", (1, 3, 8, 8), "float32")]
    outputs = [TensorSpec("logits", (1, 2, 8, 8), "float32")]
    io_ok = {"image": ("input", (1, 3, 8, 8), "float32"), "logits": ("output", (1, 2, 8, 8), "float32")}
    assert io_mismatch(io_ok, inputs, outputs) is None
    assert "not the model's" in io_mismatch({**io_ok, "extra": ("output", (1,), "float32")}, inputs, outputs)
    wrong = {**io_ok, "logits": ("output", (1, 2, 8, 8), "float16")}
    assert "tensor 'logits' is output float16[1, 2, 8, 8] in the plan, output float32" in io_mismatch(wrong, inputs, outputs)
