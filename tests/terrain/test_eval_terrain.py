"""`perception eval terrain` end to end on one short small drive: every key of the contract, numbers in range."""
import json
import subprocess
import sys

import numpy as np

from perception.terrain.evaluate import auroc
from tests.conftest import REPO

KEYS = ("stereo_range_m", "near_acc", "far_acc", "far_auroc", "err_vs_stereo_offline", "err_vs_stereo_online",
        "frames_to_adapt", "map_cell_acc_100m", "ms_per_frame")


def test_auroc_ranks():
    y = np.array([0, 0, 1, 1], bool)
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert auroc(np.array([0.9, 0.8, 0.2, 0.1]), y) == 0.0
    assert auroc(np.full(4, 0.5), y) == 0.5
    assert np.isnan(auroc(np.ones(3), np.ones(3, bool)))


def test_eval_terrain_prints_the_contract_json(tmp_path):
    cmd = [sys.executable, "-m", "perception", "eval", "terrain", "--seeds", "5", "--frames", "12",
           "--size", "320x240", "--json", "--save-images", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in KEYS:
        assert isinstance(out[key], (int, float)), key
        assert isinstance(out["baseline"][key] if key in out["baseline"] else 0, (int, float))
    for key in ("near_acc", "far_acc", "far_auroc", "map_cell_acc_100m"):
        assert 0.0 <= out[key] <= 1.0 and 0.0 <= out["baseline"][key] <= 1.0
    assert out["stereo_range_m"] == 12.0 and out["ms_per_frame"] > 0
    assert (tmp_path / "terrain_learning_curve.png").stat().st_size > 1000
    assert (tmp_path / "terrain_maps.png").stat().st_size > 1000


def test_eval_terrain_with_the_long_range_on_every_other_frame(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    terrain:\n      every_n_frames: 2\n")
    cmd = [sys.executable, "-m", "perception", "eval", "terrain", "--seeds", "5", "--frames", "12",
           "--size", "320x240", "--json", "--params", str(params)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["long_range_every_n_frames"] == 2
    assert 0.0 <= out["far_acc"] <= 1.0 and 0.0 <= out["map_cell_acc_100m"] <= 1.0 and out["ms_per_frame"] > 0
