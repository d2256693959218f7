"""Ground + labels evaluation on the synthetic world: metric definitions, truth labels, the CLI JSON contract."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from perception.cli import main
from perception.stereo.labels import FOOTLINE, GROUND, OBSTACLE, SUPER_GROUND, SUPER_OBSTACLE, UNKNOWN, LabelConfig
from perception.stereo.synthetic_eval import label_metrics, save_confusion_png, sim_available

SIM_OK, SIM_WHY = sim_available()
needs_sim = pytest.mark.skipif(not SIM_OK, reason=f"synthetic world unavailable: {SIM_WHY}")


def test_label_metrics_definitions(tmp_path):
    c = np.zeros((6, 6), int)
    c[UNKNOWN, UNKNOWN] = 50  # neither labels: ignored
    c[SUPER_GROUND, SUPER_GROUND] = 80
    c[SUPER_GROUND, GROUND] = 10  # right in 3 classes, wrong in 5
    c[SUPER_GROUND, UNKNOWN] = 10  # truth labels it, the estimate does not: coverage
    c[OBSTACLE, SUPER_OBSTACLE] = 4
    c[SUPER_OBSTACLE, SUPER_OBSTACLE] = 6
    c[FOOTLINE, GROUND] = 2
    c[UNKNOWN, OBSTACLE] = 3  # estimate only
    m = label_metrics(c)
    assert m["windows_compared"] == 102 and m["truth_windows"] == 112
    assert m["accuracy"] == pytest.approx(86 / 102, abs=1e-4)
    assert m["accuracy_3class"] == pytest.approx(100 / 102, abs=1e-4)
    assert m["coverage"] == pytest.approx(102 / 112, abs=1e-4)
    assert m["estimate_only_windows"] == 3
    assert m["per_class"]["super_ground"]["recall"] == pytest.approx(80 / 90, abs=1e-4)
    assert m["per_class"]["super_obstacle"]["precision"] == pytest.approx(0.6)
    assert m["per_class"]["ground"]["recall"] is None  # no true ground window
    assert m["balanced_accuracy"] == pytest.approx(np.mean([80 / 90, 0.0, 0.0, 1.0]), abs=1e-4)
    path = save_confusion_png(c, tmp_path / "confusion.png")
    img = cv2.imread(str(path))
    assert img is not None and img.shape[0] > 400 and img.shape[1] > 400


@needs_sim
def test_truth_labels_of_a_sim_frame_mark_objects_as_obstacles():
    from perception.sim import SimConfig, SimWorld
    from perception.stereo.ground import GroundConfig
    from perception.stereo.synthetic_eval import true_labels, true_local_plane, true_points

    world = SimWorld(SimConfig(seed=3, width=320, height=240, frames=100))
    for i in range(0, 100, 4):  # the first frame with a sizeable object within 8 m (the world is procedural)
        frame = world.render(i)
        if ((frame.truth["instance"] >= 0) & (frame.truth["depth"] < 8.0)).sum() > 800:
            break
    else:
        pytest.skip("no object within 8 m in this world's drive")
    lab = true_labels(world, frame, LabelConfig())
    inst = frame.truth["instance"]
    c = lab.classes
    assert (c == SUPER_GROUND).sum() > 20 and np.isin(c, (OBSTACLE, SUPER_OBSTACLE)).sum() >= 1
    # true obstacle pixels are object pixels; terrain pixels are never obstacle; the sky rows are unknown
    assert lab.pixel_class[lab.pixel_class == OBSTACLE].size > 100
    assert np.all(inst[lab.pixel_class == OBSTACLE] >= 0)
    assert c[0].max() == UNKNOWN
    n, d = true_local_plane(frame, true_points(frame), GroundConfig())
    assert 0.7 < d < 1.3 and n[1] < -0.9  # camera ~1 m above gently rolling terrain, up is -y


@needs_sim
def test_synthetic_eval_json_on_a_tiny_run(capsys, tmp_path):
    code = main(["eval", "stereo", "--synthetic", "--json", "--frames", "1", "--seeds", "3", "--data", "",
                 "--save-images", str(tmp_path)])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["synthetic"] and out["frames"] == 1 and out["size"] == "640x480" and out["status"] == {"ok": 1}
    g = out["ground"]
    assert g["ok_frames"] == 1
    assert g["normal_err_deg"]["median"] < 0.5 and g["height_err_m"]["median"] < 0.03
    assert g["pitch_err_deg"]["median"] < 0.5 and g["roll_err_deg"]["median"] < 0.5
    assert g["horizon_err_px"]["median"] < 5.0
    assert g["vs_pose"]["height_err_m"]["median"] < 0.15
    lab = out["labels"]
    assert lab["accuracy"] > 0.85 and lab["accuracy_3class"] > 0.9 and lab["coverage"] > 0.9
    assert np.array(lab["confusion"]).shape == (6, 6) and np.array(lab["confusion"]).sum() == 30 * 20
    assert 0 < out["ms"]["ground_labels"] < 1000 and out["ms"]["ground"] > 0
    assert (tmp_path / "labels_confusion.png").is_file() and (tmp_path / "labels_synthetic.png").is_file()
    assert "kitti" not in out["real"] and any("kitti skipped" in n for n in out["real"]["notes"])  # --data ""


def test_eval_skips_clearly_without_the_sim(monkeypatch):
    from perception.stereo import synthetic_eval

    monkeypatch.setattr(synthetic_eval, "sim_available", lambda: (False, "perception.sim is not importable: test"))
    out = synthetic_eval.run_synthetic_eval([0], 1, log=lambda m: None)
    assert out == {"synthetic": True, "skipped": "perception.sim is not importable: test"}
