"""Model metadata: round trips through ONNX and YAML, and refusal of models that are not what they claim."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from perception.engines.metadata import ClassInfo, ModelMetadata, Normalization, TensorInfo
from perception.engines.model_file import load_model, save_model, sidecar_path
from perception.errors import ModelError


def tiny_graph(in_name="image", out_name="logits", shape=(1, 3, 8, 8), classes=2) -> onnx.ModelProto:
    weight = helper.make_tensor("w", TensorProto.FLOAT, [classes, shape[1], 1, 1], np.ones(classes * shape[1]).tolist())
    node = helper.make_node("Conv", [in_name, "w"], [out_name])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [shape[0], classes, shape[2], shape[3]])],
        [weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def scene_meta(**overrides) -> ModelMetadata:
    fields = dict(
        task="scene",
        name="tiny",
        inputs=[TensorInfo("image", [1, 3, 8, 8], color="rgb", normalization=Normalization(mean=(0.5, 0.5, 0.5)))],
        outputs=[TensorInfo("logits", [1, 2, 8, 8], decoding="logits")],
        classes=[ClassInfo("road", (128, 64, 128)), ClassInfo("sky", (70, 130, 180))],
        decoder={"num_classes": 2},
    )
    fields.update(overrides)
    return ModelMetadata(**fields)


def test_metadata_round_trips_through_onnx(tmp_path):
    path = save_model(tiny_graph(), scene_meta(), tmp_path / "m.onnx")
    model = load_model(path, task="scene")
    assert model.metadata == scene_meta()
    assert model.opset == 17 and len(model.sha256) == 64
    assert model.metadata.input().normalization.mean == (0.5, 0.5, 0.5)


def test_foreign_model_takes_metadata_from_yaml_beside_it(tmp_path):
    path = tmp_path / "foreign.onnx"
    onnx.save(tiny_graph(), str(path))
    with pytest.raises(ModelError, match="no 'perception' metadata"):
        load_model(path)
    scene_meta().to_yaml(sidecar_path(path))
    assert load_model(path).metadata.class_names == ["road", "sky"]


@pytest.mark.parametrize(
    "meta, message",
    [
        (scene_meta(inputs=[TensorInfo("img", [1, 3, 8, 8])]), r"inputs \['img'\] do not match the graph's \['image'\]"),
        (scene_meta(inputs=[TensorInfo("image", [1, 3, 16, 16])]), r"shape \[1, 3, 8, 8\] in the graph but \[1, 3, 16, 16\]"),
        (scene_meta(outputs=[TensorInfo("logits", [1, 2, 8, 8], dtype="float16")]), "float32 in the graph but float16"),
    ],
)
def test_metadata_that_disagrees_with_the_graph_is_refused(tmp_path, meta, message):
    path = tmp_path / "m.onnx"
    onnx.save(tiny_graph(), str(path))
    meta.to_yaml(sidecar_path(path))
    with pytest.raises(ModelError, match=message):
        load_model(path)


def test_inconsistent_metadata_is_refused():
    with pytest.raises(ModelError, match="num_classes = 3 but 2 class names"):
        scene_meta(decoder={"num_classes": 3}).validate()
    with pytest.raises(ModelError, match="must name its classes"):
        scene_meta(classes=[], decoder={}).validate()
    with pytest.raises(ModelError, match="unknown task"):
        scene_meta(task="segmentation").validate()
    with pytest.raises(ModelError, match="does not match layout"):
        scene_meta(inputs=[TensorInfo("image", [1, 3, 8], layout="NCHW")]).validate()


def test_a_model_for_another_stage_is_refused(tmp_path):
    path = save_model(tiny_graph(), scene_meta(), tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="is a 'scene' model but this stage needs a 'detect' model"):
        load_model(path, task="detect")


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"not a model at all", None])
def test_missing_corrupt_or_foreign_files_are_refused_naming_the_file(tmp_path, content):
    path = tmp_path / "broken.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError) as err:
        load_model(path)
    assert str(path) in str(err.value)


def test_truncated_model_is_refused(tmp_path):
    good = save_model(tiny_graph(), scene_meta(), tmp_path / "m.onnx")
    data = good.read_bytes()
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="corrupt or truncated|no 'perception' metadata"):
        load_model(bad)


def test_newer_schema_asks_for_an_upgrade():
    data = scene_meta().to_dict()
    data["schema"] = 99
    with pytest.raises(ModelError, match="upgrade perception"):
        ModelMetadata.from_dict(data)


def test_layouts_are_one_distinct_letter_per_dimension():
    scene_meta(outputs=[TensorInfo("logits", [1, 84, 8400], layout="NCL")], task="generic", classes=[], decoder={}).validate()
    for layout in ("NCXW", "NCCW", ""):
        with pytest.raises(ModelError, match="one distinct letter"):
            scene_meta(inputs=[TensorInfo("image", [1, 3, 8, 8][: len(layout) or 1], layout=layout)]).validate()
