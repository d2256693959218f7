"""`perception train scene` on tiny folders: colour-coded and index labels, splits, resume, ONNX export."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.scene.conftest import CLASSES, make_scene, train_cli, write_folder

pytest.importorskip("torch")


def test_training_on_colour_coded_labels_learns_and_exports(colour_run):
    data, run, summary = colour_run
    history = json.loads((run / "history.json").read_text())
    losses = [e["loss"] for e in history]
    assert summary["finished"] and summary["steps"] == 40 == len(history)
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses  # it learns
    assert summary["val_miou"] > 0.4  # 1 of 12 pairs held out (colormap.txt found in the folder, void ignored)
    for name in ("checkpoint.pt", "learning_curve.png", "model.onnx"):
        assert (run / name).is_file()


def test_exported_model_carries_classes_and_runs_in_onnx_runtime(colour_run):
    from perception.engines.export import check_tensorrt_compatible
    from perception.engines.model_file import load_model
    from perception.scene.parser import SceneParser

    _, run, _ = colour_run
    model = load_model(run / "model.onnx", task="scene")
    meta = model.metadata
    assert [(c.name, c.color) for c in meta.classes] == CLASSES  # void is not a model class
    assert meta.inputs[0].shape == [1, 3, 48, 64] and meta.outputs[0].shape == [1, 3, 12, 16]
    assert "3 image/label pairs" not in meta.trained_on and "11 image/label pairs (train of data)" in meta.trained_on
    check_tensorrt_compatible(run / "model.onnx", project=True)
    img, lab = make_scene(np.random.default_rng(99))
    with SceneParser(run / "model.onnx", backend="onnxruntime", threads=1) as parser:
        result = parser.parse(img)
    valid = lab != 255
    assert (result.class_mask[valid] == lab[valid]).mean() > 0.8  # the ONNX model segments an unseen scene


def test_index_labels_with_void_in_the_middle_of_the_class_file(tmp_path):
    from perception.scene.data import discover

    data = write_folder(tmp_path / "data", n=6, colour=False)
    (data / "train.txt").write_text("f000\nf001\nf002\nf003\n")
    (data / "val.txt").write_text("f004\nf005\n")
    found = discover(data)
    assert found.spec.names == ("sky", "ground", "box") and len(found.train) == 4 and len(found.val) == 2
    raw = np.array([[0, 1, 2, 3]], np.uint8)
    assert found.spec.decode(raw).tolist() == [[0, 1, 255, 2]]
    summary = train_cli(data, tmp_path / "run", steps=6)
    assert summary["finished"] and summary["onnx"]


def test_unknown_colours_are_refused_naming_the_colour(tmp_path):
    import cv2

    from perception.errors import InputError
    from perception.scene.data import discover

    data = write_folder(tmp_path / "data", n=3, colour=True)
    spec = discover(data).spec
    label = cv2.imread(str(data / "labels" / "f000.png"))
    label[0, 0] = (1, 2, 3)  # BGR -> RGB (3 2 1)
    with pytest.raises(InputError, match=r"not in the colour map.*\(3 2 1\)"):
        spec.decode(label)
    (data / "colormap.txt").unlink()
    with pytest.raises(InputError, match="no colour-map file"):
        discover(data)


def test_resume_carries_on_to_the_planned_steps(tmp_path):
    data = write_folder(tmp_path / "data", n=4, colour=True)
    first = train_cli(data, tmp_path / "run", steps=6)
    assert first["steps"] == 6
    again = train_cli(data, tmp_path / "run", "--resume", steps=10)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert again["steps"] == 10 and [e["step"] for e in history] == list(range(1, 11))


def test_farabet_reference_trains_and_exports(tmp_path):
    data = write_folder(tmp_path / "data", n=4, colour=True)
    for scales in ("3", "1"):
        summary = train_cli(data, tmp_path / f"run{scales}", "--arch", "farabet", "--scales", scales,
                            "--widths", "8,8,16", steps=3)
        assert summary["finished"]
        from perception.engines.model_file import load_model

        meta = load_model(summary["onnx"], task="scene").metadata
        assert meta.decoder["arch"] == f"farabet-{scales}scale"


def test_bad_folder_says_what_layout_is_expected(tmp_path):
    from perception.cli import main

    (tmp_path / "empty").mkdir()
    assert main(["train", "scene", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run")]) == 2


def test_data_loading_workers_and_time_fitted_schedule(tmp_path):
    data = write_folder(tmp_path / "data", n=4, colour=True)
    summary = train_cli(data, tmp_path / "run", "--workers", "1", "--schedule-minutes", "0.05", steps=100000)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert summary["finished"] and summary["onnx"] and 0 < summary["steps"] < 100000
    assert history[-1]["lr"] < 0.2 * max(e["lr"] for e in history)  # the cosine decay followed the clock
