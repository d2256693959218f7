"""Opening broken or foreign model files: a ModelError naming the file and the fault, never a raw crash."""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest

from perception.engines import open_engine
from perception.engines.metadata import METADATA_KEY, TensorInfo
from perception.engines.model_file import sidecar_path
from perception.errors import ModelError


@pytest.mark.parametrize("backend", ["auto", "onnxruntime", "tensorrt"])
def test_missing_file(tmp_path, backend):
    path = tmp_path / "nope.onnx"
    with pytest.raises(ModelError, match="not found") as info:
        open_engine(path, backend=backend)  # no backend fallback hides a bad model
    assert str(path) in str(info.value)


def test_truncated_file(tiny_conv):
    data = tiny_conv.path.read_bytes()
    tiny_conv.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="corrupt or truncated") as info:
        open_engine(tiny_conv.path)
    assert tiny_conv.path.name in str(info.value)


def test_random_bytes_named_onnx(tmp_path):
    path = tmp_path / "random.onnx"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        open_engine(path)


def test_empty_file(tmp_path):
    """An empty file parses as an empty ONNX proto: it has no metadata, and says so."""
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelError, match="metadata"):
        open_engine(path)


def test_metadata_missing_names_the_sidecar_to_write(make_tiny_conv):
    model = make_tiny_conv("bare.onnx", metadata=False)
    with pytest.raises(ModelError) as info:
        open_engine(model.path)
    assert "bare.yaml" in str(info.value) and METADATA_KEY in str(info.value)


def test_a_foreign_model_runs_with_a_yaml_beside_it(make_tiny_conv):
    model = make_tiny_conv("foreign.onnx", metadata=False)
    model.meta.to_yaml(sidecar_path(model.path))
    x = np.full((1, 3, 8, 8), 0.5, np.float32)
    with open_engine(model.path, task="scene") as engine:
        np.testing.assert_allclose(engine.infer({"image": x})["logits"], model.reference(x), atol=1e-5)


def _embed(path, meta) -> None:
    """Write metadata into the file without save_model's consistency check (as a broken exporter would)."""
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    proto.metadata_props.add(key=METADATA_KEY, value=meta.to_json())
    onnx.save(proto, str(path))


@pytest.mark.parametrize("change, expected", [
    ({"inputs": [TensorInfo("image", [1, 3, 16, 16])]}, "shape [1, 3, 8, 8] in the graph but [1, 3, 16, 16]"),
    ({"inputs": [TensorInfo("rgb", [1, 3, 8, 8])]}, "do not match the graph's ['image']"),
    ({"outputs": [TensorInfo("logits", [1, 2, 8, 8], "float16")]}, "is float32 in the graph but float16"),
])
def test_metadata_inconsistent_with_the_graph(tiny_conv, change, expected):
    _embed(tiny_conv.path, dataclasses.replace(tiny_conv.meta, **change))
    with pytest.raises(ModelError) as info:
        open_engine(tiny_conv.path)
    assert expected in str(info.value) and tiny_conv.path.name in str(info.value)


def test_wrong_task_names_both_tasks(tiny_conv):
    with pytest.raises(ModelError) as info:
        open_engine(tiny_conv.path, task="detect")
    assert "'scene' model" in str(info.value) and "'detect' model" in str(info.value)
    with open_engine(tiny_conv.path, task="scene") as engine:  # the right task opens
        assert engine.metadata.task == "scene"
