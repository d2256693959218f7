"""The Engine contract on the real ONNX Runtime backend: specs from metadata, numerics, lifecycle, failures."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from perception.engines import open_engine
from perception.engines.base import TensorSpec, sample_feeds
from perception.engines.metadata import ModelMetadata, TensorInfo
from perception.engines.model_file import save_model
from perception.engines.onnxrt import CPU, OnnxRuntimeEngine, select_providers
from perception.errors import EngineError, InputError

OPSET, IR_VERSION = 17, 8


def _image(seed: int = 1, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (1, 3, size, size)).astype(np.float32)


def test_specs_come_from_the_metadata(tiny_conv):
    with open_engine(tiny_conv.path, backend="onnxruntime") as engine:
        assert engine.inputs == [TensorSpec("image", (1, 3, 8, 8), "float32")]
        assert engine.outputs == [TensorSpec("logits", (1, 2, 8, 8), "float32")]
        assert engine.metadata.class_names == ["road", "sky"]
        assert engine.backend == "onnxruntime" and engine.precision == "fp32"
        assert engine.providers == [CPU]


def test_infer_equals_numpy_convolution(tiny_conv):
    x = _image()
    with open_engine(tiny_conv.path, backend="onnxruntime") as engine:
        out = engine.infer({"image": x})
    assert set(out) == {"logits"}
    assert out["logits"].shape == (1, 2, 8, 8) and out["logits"].dtype == np.float32
    np.testing.assert_allclose(out["logits"], tiny_conv.reference(x), rtol=1e-5, atol=1e-5)


def test_qdq_int8_model_runs_and_reports_int8(make_tiny_conv):
    model = make_tiny_conv("tiny_int8.onnx", qdq=True)
    x = _image(seed=2)
    with open_engine(model.path, backend="onnxruntime", precision="int8") as engine:
        assert engine.precision == "int8"
        out = engine.infer({"image": x})["logits"]
    np.testing.assert_allclose(out, model.reference(x), rtol=1e-4, atol=1e-4)
    # and the quantization is real: the float layer's answer is measurably different
    assert np.abs(out - model.float_reference(x)).max() > 1e-3


def test_precision_from_metadata_wins_when_the_graph_is_float(make_tiny_conv):
    model = make_tiny_conv("declared.onnx", precision="fp16")
    with OnnxRuntimeEngine(_load(model.path)) as engine:
        assert engine.precision == "fp16"


def test_warmup_runs_n_times_on_declared_shapes(tiny_conv):
    with open_engine(tiny_conv.path, backend="onnxruntime") as engine:
        seen = []
        run = engine._run
        engine._run = lambda feeds: seen.append({k: v.shape for k, v in feeds.items()}) or run(feeds)
        engine.warmup(3)
        assert seen == [{"image": (1, 3, 8, 8)}] * 3
        engine.warmup(0)
        assert len(seen) == 3


def test_close_is_idempotent_and_infer_after_close_is_an_engine_error(tiny_conv):
    engine = open_engine(tiny_conv.path, backend="onnxruntime")
    with engine:
        assert not engine.closed
    assert engine.closed
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.infer({"image": _image()})


def test_threads_are_configurable_and_checked(tiny_conv):
    with open_engine(tiny_conv.path, backend="onnxruntime", threads=1) as engine:
        assert engine.threads == 1
        assert engine.infer({"image": _image()})["logits"].shape == (1, 2, 8, 8)
    with pytest.raises(EngineError, match="threads"):
        open_engine(tiny_conv.path, backend="onnxruntime", threads=-2)


def test_provider_selection():
    assert select_providers([CPU]) == [CPU]
    assert select_providers(["CUDAExecutionProvider", CPU, "TensorrtExecutionProvider"]) == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", CPU]
    assert select_providers(["CUDAExecutionProvider", CPU], ["CUDAExecutionProvider"]) == ["CUDAExecutionProvider", CPU]
    with pytest.raises(EngineError, match="CUDAExecutionProvider"):
        select_providers([CPU], ["CUDAExecutionProvider"])


def test_restricting_to_a_missing_provider_is_refused(tiny_conv):
    with pytest.raises(EngineError, match="not in this onnxruntime build"):
        open_engine(tiny_conv.path, backend="onnxruntime", providers=["NoSuchExecutionProvider"])


def _gather_out_of_range(path):
    """A valid graph that fails only when run: Gather index 7 on a 3-channel axis."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("channel", TensorProto.FLOAT, [1, 1, 8, 8])
    graph = helper.make_graph([helper.make_node("Gather", ["image", "index"], ["channel"], axis=1)], "bad", [x], [y],
                              initializer=[numpy_helper.from_array(np.array([7], np.int64), "index")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    meta = ModelMetadata(task="generic", name="bad_gather", inputs=[TensorInfo("image", [1, 3, 8, 8])],
                         outputs=[TensorInfo("channel", [1, 1, 8, 8])])
    return save_model(model, meta, path)


def test_a_backend_failure_is_an_engine_error_and_the_engine_survives(tmp_path, tiny_conv):
    path = _gather_out_of_range(tmp_path / "bad_gather.onnx")
    with open_engine(path, backend="onnxruntime") as engine:
        for _ in range(2):  # the same engine fails cleanly twice: nothing crashed or got stuck
            with pytest.raises(EngineError, match="inference failed in onnxruntime") as info:
                engine.infer({"image": _image()})
            assert info.value.__cause__ is not None  # chained: the backend's own error is kept
            assert "bad_gather" in str(info.value)
    with open_engine(tiny_conv.path) as other:  # the process goes on
        assert other.infer({"image": _image()})["logits"].shape == (1, 2, 8, 8)


def test_sample_feeds_follow_specs():
    feeds = sample_feeds([TensorSpec("a", (1, -1, 4), "float32"), TensorSpec("b", (2,), "int64")], seed=3)
    assert feeds["a"].shape == (1, 1, 4) and feeds["a"].dtype == np.float32
    assert ((feeds["a"] >= 0) & (feeds["a"] < 1)).all() and feeds["a"].std() > 0
    assert feeds["b"].dtype == np.int64 and not feeds["b"].any()


def test_bad_input_does_not_break_the_engine(tiny_conv):
    with open_engine(tiny_conv.path) as engine:
        with pytest.raises(InputError):
            engine.infer({"image": np.zeros((1, 3, 4, 4), np.float32)})
        x = _image()
        np.testing.assert_allclose(engine.infer({"image": x})["logits"], tiny_conv.reference(x), atol=1e-5)


def _load(path):
    from perception.engines.model_file import load_model

    return load_model(path)
