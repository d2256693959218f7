"""`perception train features`: label-free layer-wise training learns, the export runs at run time, the CLI works."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from perception.engines.model_file import load_model
from perception.errors import InputError
from perception.terrain import feature_data, feature_net
from perception.terrain.preprocess import band_strips

torch = pytest.importorskip("torch", reason="training needs the `train` extra (torch)")

from perception.terrain import feature_training  # noqa: E402  (imports torch lazily, but tests need it)


@pytest.fixture(scope="module")
def strips() -> feature_data.StripSet:
    """A handful of tiny strips from two small synthetic frames (before and after the world's terrain change)."""
    return feature_data.collect_strips(seeds=[0], sim_frames_per_seed=2, sim_size=(200, 150), strips_per_frame=24,
                                       width=40, seed=1)


@pytest.fixture(scope="module")
def trained(strips):
    torch.set_num_threads(1)
    config = feature_training.TrainConfig(epochs=3, batch=8, lr=3e-3, val_fraction=0.25, seed=0)
    return feature_training.train(strips.strips, config, progress=False)


def test_strips_are_normalised_bands_at_many_scales():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    got = feature_data.random_strips(frame, 5, rng, width=48)
    assert len(got) == 5 and all(s.shape == (3, 36, 48) and s.dtype == np.float32 for s in got)
    assert feature_data.random_strips(frame[:20], 3, rng) == []  # smaller than one strip even at scale 1
    with pytest.raises(InputError):
        feature_data.collect_strips(width=20)


def test_reconstruction_error_drops_in_both_layers(strips, trained):
    assert len(strips) == 48 and strips.strips.shape[1:] == (3, 36, 40)
    for layer in ("layer1", "layer2"):
        m = trained.metrics[layer]
        assert m["recon_rel"] < 0.8 * m["recon_rel_initial"], (layer, m)
        assert 0 < m["sparsity"] < 1
    assert {k: v.shape for k, v in trained.weights.items()} == {
        "conv1.weight": feature_net.CONV1, "conv1.bias": (20,), "conv2.weight": feature_net.CONV2,
        "conv2.bias": (100,)}
    curve = [e["recon_rel"] for e in trained.history if e["layer"] == 1 and "recon_rel" in e]
    assert np.mean(curve[-3:]) < np.mean(curve[:3])


def test_exported_model_runs_in_onnx_runtime_with_its_metadata(trained, tmp_path):
    import onnxruntime as ort

    path = feature_net.write_feature_net(tmp_path / "f.onnx", trained.weights, trained_on="tiny test strips",
                                         training={"layer1": {"recon_rel": trained.metrics["layer1"]["recon_rel"]}})
    meta = load_model(path, task="terrain_features").metadata
    assert meta.trained_on == "tiny test strips" and "NOT TRAINED" not in meta.trained_on and meta.version == "1"
    assert meta.decoder["training"]["layer1"]["recon_rel"] == pytest.approx(trained.metrics["layer1"]["recon_rel"])
    assert meta.inputs[0].shape == [1, 3, 36, 484] and meta.outputs[0].shape == [1, 100, 25, 115]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    frame = np.random.default_rng(2).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    (features,) = session.run(None, {feature_net.INPUT: band_strips(frame, count=1)[0]})
    assert features.shape == (1, 100, 25, 115) and np.all(np.isfinite(features)) and features.std() > 0.01
    # the same weights in torch give the same features: the export is the trained encoder
    band = torch.from_numpy(band_strips(frame, count=1)[0])
    w = {k: torch.from_numpy(v) for k, v in trained.weights.items()}
    z = torch.tanh(torch.nn.functional.conv2d(band, w["conv1.weight"], w["conv1.bias"]))
    z = torch.tanh(torch.nn.functional.conv2d(torch.nn.functional.max_pool2d(z, (1, 4)), w["conv2.weight"],
                                              w["conv2.bias"]))
    np.testing.assert_allclose(features, z.numpy(), atol=1e-4)
    # the untrained path still says so; trained_on without weights is refused
    assert "NOT TRAINED" in load_model(feature_net.write_feature_net(tmp_path / "u.onnx")).metadata.trained_on
    with pytest.raises(ValueError):
        feature_net.build_feature_net(None, trained_on="nothing")


def test_checkpoint_from_another_run_is_refused(strips, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    small = feature_training.TrainConfig(epochs=1, steps=1, batch=4, seed=0)
    feature_training.train(strips.strips, small, checkpoint=ckpt, progress=False)
    assert ckpt.exists()
    other = feature_training.TrainConfig(epochs=1, steps=1, batch=4, seed=1)
    with pytest.raises(feature_training.TrainingError, match="another config"):
        feature_training.train(strips.strips, other, checkpoint=ckpt, resume=True, progress=False)


def test_cli_trains_probes_and_exports_end_to_end(tmp_path):
    out = tmp_path / "features.onnx"
    cmd = [sys.executable, "-m", "perception.cli", "train", "features", "--out", str(out), "--sim-frames", "2",
           "--seeds", "0", "--sim-size", "200x150", "--strips-per-frame", "8", "--strip-width", "40", "--epochs", "1",
           "--steps", "3", "--batch", "4", "--probe-frames", "1", "--probe-seeds", "100", "101",
           "--checkpoint", str(tmp_path / "run" / "checkpoint.pt"), "--threads", "1", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["strips"] == 16 and result["sim_frames"] == 2 and result["layer1_steps"] == 3
    for key in ("layer1_recon_rel", "layer2_recon_rel", "train_s", "model_bytes"):
        assert isinstance(result[key], (int, float)) and result[key] > 0
    for task in ("traversable", "terrain"):
        for net in ("trained", "untrained", "majority"):
            assert 0 <= result["probe"][task][net]["balanced_accuracy"] <= 1
    meta = load_model(out, task="terrain_features").metadata
    assert "synthetic world" in meta.trained_on and "16 strips" in meta.trained_on
    assert meta.decoder["training"]["sources"] and meta.decoder["training"]["probe"]["test_seeds"] == [101]
    assert (tmp_path / "features_learning_curve.png").stat().st_size > 1000
    assert (tmp_path / "run" / "checkpoint.pt").exists() and (tmp_path / "run" / "history.json").exists()


def test_cli_refuses_bad_input_with_a_clear_error(tmp_path):
    from perception.cli import main

    assert main(["train", "features", "--out", str(tmp_path / "f.onnx"), "--images", str(tmp_path / "nope"),
                 "--sim-frames", "0"]) == 2
    assert main(["train", "features", "--out", str(tmp_path / "f.onnx"), "--seeds", "100", "--sim-frames", "1"]) == 2
    assert main(["train", "features", "--out", str(tmp_path / "f.onnx"), "--probe-seeds", "7"]) == 2
    assert not (tmp_path / "f.onnx").exists()
