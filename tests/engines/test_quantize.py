"""INT8 by explicit quantization: Q/DQ output TensorRT takes, accuracy, metadata, calibration lists and the CLI."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from perception.cli import main
from perception.engines import open_engine
from perception.engines.bench import synthetic_images
from perception.engines.export import check_tensorrt_compatible
from perception.engines.graph import GraphBuilder
from perception.engines.metadata import ModelMetadata, Normalization, TensorInfo
from perception.engines.model_file import load_model, save_model
from perception.engines.quantize import preprocess_image, qdq_summary, quantize_int8, read_image_list
from perception.errors import InputError, ModelError
from tests.conftest import REPO


@pytest.fixture
def tiny_model(tmp_path):
    """conv 3->8 (3x3) relu, maxpool 2, conv 8->4 (3x3), nearest x2: a float32 project model on 1x3x24x32 RGB."""
    rng = np.random.default_rng(0)
    g = GraphBuilder("tiny")
    x = g.input("image", [1, 3, 24, 32])
    x = g.relu(g.conv(x, rng.standard_normal((8, 3, 3, 3)) * 0.3, rng.standard_normal(8) * 0.1, pads=(1, 1, 1, 1)))
    x = g.max_pool(x, (2, 2))
    x = g.conv(x, rng.standard_normal((4, 8, 3, 3)) * 0.2, np.zeros(4), pads=(1, 1, 1, 1))
    g.output(g.resize(x, scales=[2, 2]), "logits")
    meta = ModelMetadata(
        task="generic", name="tiny",
        inputs=[TensorInfo("image", [1, 3, 24, 32], color="rgb",
                           normalization=Normalization(1 / 255, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)))],
        outputs=[TensorInfo("logits", [1, 4, 24, 32], decoding="logits")],
        decoder={"precision": "fp32", "kept": 7},
    )
    return save_model(g.build(), meta, tmp_path / "tiny.onnx")


@pytest.fixture
def image_files(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    paths = []
    for i, img in enumerate(synthetic_images(6, seed=10, size=(60, 80))):
        paths.append(folder / f"f{i}.png")
        cv2.imwrite(str(paths[-1]), img)
    return paths


def _outputs(path, x):
    """Through the project's ONNX Runtime engine, whose session options are part of what is tested (int8 on
    AVX2 CPUs without VNNI needs the precise u8s8 mode)."""
    engine = open_engine(path, backend="onnxruntime")
    return engine.infer({engine.inputs[0].name: x})[engine.outputs[0].name]


def test_quantize_end_to_end(tiny_model, image_files, tmp_path):
    out = tmp_path / "tiny_int8.onnx"
    report = quantize_int8(tiny_model, out, image_files[:4], progress=False)
    assert report.images_used == 4 and report.images_skipped == 0 and report.samples == 4

    model = onnx.load(str(out))
    summary = qdq_summary(model)
    assert summary["quantize_linear"] >= 2 and summary["dequantize_linear"] >= 4
    inits = {t.name: t for t in model.graph.initializer}
    zero_points = [
        inits[n.input[2]] for n in model.graph.node
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2
    ]
    assert zero_points and all(z.data_type == onnx.TensorProto.INT8 for z in zero_points)
    assert all(not numpy_helper.to_array(z).any() for z in zero_points)
    weight_scales = [numpy_helper.to_array(inits[n.input[1]]) for n in model.graph.node
                     if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].data_type == onnx.TensorProto.INT8]
    assert sorted(s.size for s in weight_scales) == [4, 8]  # per output channel
    check_tensorrt_compatible(out, project=True)

    meta = load_model(out).metadata
    original = load_model(tiny_model).metadata
    assert meta.name == "tiny_int8" and meta.decoder["precision"] == "int8" and meta.decoder["kept"] == 7
    assert meta.inputs == original.inputs and meta.outputs == original.outputs and meta.task == original.task
    assert meta.decoder["quantization"]["images"] == 4

    held_out = cv2.imread(str(image_files[5]))
    (x,) = preprocess_image(original, held_out)
    fp32, int8 = _outputs(tiny_model, x), _outputs(out, x)
    assert not np.array_equal(fp32, int8)  # it really is quantized
    assert np.abs(fp32 - int8).max() < 0.05 * (fp32.max() - fp32.min())


def test_per_tensor_weights_and_percentile(tiny_model, image_files, tmp_path):
    out = tmp_path / "pt.onnx"
    quantize_int8(tiny_model, out, image_files[:3], per_channel=False, method="percentile", progress=False)
    model = onnx.load(str(out))
    inits = {t.name: t for t in model.graph.initializer}
    scales = [numpy_helper.to_array(inits[n.input[1]]) for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert all(s.size == 1 for s in scales)
    assert load_model(out).metadata.decoder["quantization"]["method"] == "percentile"


def test_entropy_calibration_differs_from_minmax(tiny_model, image_files, tmp_path):
    def scales(method):
        quantize_int8(tiny_model, tmp_path / f"{method}.onnx", image_files[:4], method=method, progress=False)
        model = onnx.load(str(tmp_path / f"{method}.onnx"))
        return {t.name: float(numpy_helper.to_array(t)) for t in model.graph.initializer
                if t.name.endswith("_scale") and not t.dims}

    minmax, entropy = scales("minmax"), scales("entropy")
    assert minmax.keys() == entropy.keys() and minmax != entropy


def test_already_quantized_is_refused(tiny_model, image_files, tmp_path):
    out = tmp_path / "q.onnx"
    quantize_int8(tiny_model, out, image_files[:2], progress=False)
    with pytest.raises(ModelError, match="already quantized"):
        quantize_int8(out, tmp_path / "qq.onnx", image_files[:2], progress=False)


def test_terrain_features_preprocessing_follows_metadata():
    meta = load_model(REPO / "engines" / "terrain_features.onnx").metadata
    frame = synthetic_images(1, seed=3)[0]
    samples = preprocess_image(meta, frame, strips=3)
    assert [s.shape for s in samples] == [(1, 3, 36, 484)] * 3
    y = samples[0][0, 0]
    assert abs(float(y.mean())) < 0.3 and 0.2 < float(y.std()) < 2.0  # LCN'd Y: about zero mean, unit contrast
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    assert preprocess_image(meta, gray)[0].shape == (1, 3, 36, 484)  # mono8 frames (EuRoC) work too


# --- calibration image lists ---------------------------------------------------------------------------------
def test_image_list_comments_relative_paths_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PERCEPTION_DATA", "/data/root")
    lists = tmp_path / "lists"
    lists.mkdir()
    listing = lists / "cal.txt"
    listing.write_text(
        "# a comment\n\n  sub/a.png  \n   # indented comment\n${PERCEPTION_DATA}/camvid/b.jpg\n/abs/c.png\n../up.png\n"
    )
    assert read_image_list(listing) == [
        lists / "sub" / "a.png", Path("/data/root/camvid/b.jpg"), Path("/abs/c.png"), lists / ".." / "up.png",
    ]
    monkeypatch.setenv("PERCEPTION_DATA", "../shared/data")  # a relative value is relative to where it was set
    monkeypatch.chdir(tmp_path)
    assert read_image_list(listing)[1] == tmp_path / "../shared/data/camvid/b.jpg"


def test_missing_and_unreadable_images_are_skipped_and_counted(tiny_model, image_files, tmp_path):
    (tmp_path / "broken.png").write_text("not a png")
    listing = tmp_path / "cal.txt"
    listing.write_text(f"imgs/{image_files[0].name}\nmissing.png\nbroken.png\nimgs/{image_files[1].name}\n")
    report = quantize_int8(tiny_model, tmp_path / "o.onnx", read_image_list(listing), progress=False)
    assert report.images_used == 2 and report.images_skipped == 2
    assert any(s.endswith("missing.png") for s in report.skipped) and any(s.endswith("broken.png") for s in report.skipped)


def test_no_usable_image_is_a_clear_error(tiny_model, tmp_path, monkeypatch):
    monkeypatch.delenv("PERCEPTION_DATA", raising=False)
    listing = tmp_path / "cal.txt"
    listing.write_text("${PERCEPTION_DATA}/camvid/a.jpg\n${PERCEPTION_DATA}/camvid/b.jpg\n")
    with pytest.raises(InputError) as err:
        quantize_int8(tiny_model, tmp_path / "o.onnx", read_image_list(listing), progress=False, list_name=str(listing))
    text = str(err.value)
    assert "no usable calibration image" in text and "2 of 2" in text and "PERCEPTION_DATA" in text
    assert not (tmp_path / "o.onnx").exists()


def test_cli_calibrate_int8(tiny_model, image_files, tmp_path, capsys):
    listing = tmp_path / "cal.txt"
    listing.write_text("\n".join(f"imgs/{p.name}" for p in image_files) + "\n")
    out = tmp_path / "cli_int8.onnx"
    code = main(["calibrate", "int8", str(tiny_model), "--images", str(listing), "--out", str(out), "--max-images", "2"])
    captured = capsys.readouterr()
    assert code == 0 and captured.out.strip().splitlines()[-1] == str(out)
    assert "calibrated on 2 image(s)" in captured.err
    assert load_model(out).metadata.decoder["quantization"]["images"] == 2
    assert main(["calibrate", "int8", str(tiny_model), "--images", str(tmp_path / "nope.txt"), "--out", str(out)]) == 2


@pytest.mark.data
def test_shipped_calibration_list_resolves(data_dir):
    paths = read_image_list(REPO / "calibration" / "int8" / "terrain_features.txt")
    assert len(paths) >= 32 and all(p.is_file() for p in paths)
    assert sum("camvid" in str(p) for p in paths) >= 32 and sum("euroc" in str(p) for p in paths) >= 4
    assert all(p.resolve().is_relative_to(data_dir.resolve()) for p in paths)
