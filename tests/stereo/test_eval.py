"""`perception eval stereo`: metric definitions, dataset scale handling, and the JSON contract."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from perception.cli import main
from perception.stereo.eval import (
    StereoPair, disparity_metrics, load_aloe, load_motorcycle,
)


def test_metrics_count_invalid_as_bad_and_average_only_valid():
    gt = np.array([[10.0, 10.0, 10.0, np.nan]], np.float32)
    est = np.array([[10.5, 13.0, np.nan, 99.0]], np.float32)
    m = disparity_metrics(est, gt)
    assert m["bad2_pct"] == pytest.approx(200.0 / 3)  # one error > 2 px, one invalid, of 3 known
    assert m["avg_err_px"] == pytest.approx((0.5 + 3.0) / 2)
    assert m["density_pct"] == pytest.approx(200.0 / 3)
    assert math.isnan(disparity_metrics(np.full_like(gt, np.nan), gt)["avg_err_px"])


def _photometric_error(pair: StereoPair, gt_scale: float) -> float:
    """Mean |left(x) - right(x - s*gt(x))| over known pixels: smallest at the scale the GT really has."""
    ys, xs = np.nonzero(np.isfinite(pair.gt))
    xr = np.rint(xs - gt_scale * pair.gt[ys, xs]).astype(int)
    ok = xr >= 0
    left = pair.left[ys[ok], xs[ok]].astype(np.float32)
    right = pair.right[ys[ok], xr[ok]].astype(np.float32)
    return float(np.abs(left - right).mean())


def test_motorcycle_ground_truth_is_at_image_scale_and_the_search_range_covers_it():
    pair = load_motorcycle()
    assert pair.left.shape == (500, 741, 3) and pair.gt.shape == (500, 741)
    assert np.isnan(pair.gt).any()  # unknown (inf in scikit-image) became NaN
    errors = {s: _photometric_error(pair, s) for s in (0.5, 1.0, 2.0)}
    assert errors[1.0] < 0.5 * min(errors[0.5], errors[2.0])
    assert pair.num_disparities == 80  # ndisp 270 at full size / 4, rounded up to a multiple of 16
    assert np.nanmax(pair.gt) < pair.num_disparities
    assert pair.doffs == pytest.approx(31.086) and pair.fx == pytest.approx(994.978)
    small = pair.scaled(0.5)
    assert small.gt.shape == (250, 370) and np.nanmax(small.gt) == pytest.approx(np.nanmax(pair.gt) / 2, rel=0.02)
    assert small.num_disparities == 48 and small.doffs == pytest.approx(pair.doffs * 370 / 741)


def test_aloe_ground_truth_is_at_full_image_scale(data_dir):
    folder = data_dir / "opencv_samples" / "aloe"
    if not (folder / "aloeGT.png").is_file():
        pytest.skip("aloe not in PERCEPTION_DATA")
    pair = load_aloe(folder)
    assert pair.gt.shape == pair.left.shape[:2] == (1110, 1282)
    errors = {s: _photometric_error(pair, s) for s in (0.5, 1.0, 2.0)}
    assert errors[1.0] < 0.5 * min(errors[0.5], errors[2.0])
    assert pair.num_disparities == 224 and np.nanmax(pair.gt) < 224


def test_eval_json_on_motorcycle_at_reduced_scale(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("PERCEPTION_DATA", raising=False)
    code = main(["eval", "stereo", "--json", "--scale", "0.4", "--repeats", "1", "--data", "",
                 "--save-images", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    keys = {"avg_err_px", "bad2_pct", "density_pct", "ms"}
    assert keys <= set(result["motorcycle"]) and keys <= set(result["baseline"]["motorcycle"])
    for metrics in (result["motorcycle"], result["baseline"]["motorcycle"],
                    *(v["motorcycle"] for v in result["variants"].values())):
        assert all(isinstance(metrics[k], float) and math.isfinite(metrics[k]) for k in keys)
    assert "aloe" not in result and any("aloe skipped" in n for n in result["notes"])
    ours, base = result["motorcycle"], result["baseline"]["motorcycle"]
    assert ours["bad2_pct"] < base["bad2_pct"]
    assert ours["density_pct"] == pytest.approx(100.0)
    assert result["variants"]["unfilled"]["motorcycle"]["density_pct"] < 100.0
    # confidence ranks errors: the most confident half of measured pixels is more accurate than all of them
    assert ours["top50conf_err2_pct"] < ours["measured_err2_pct"]
    assert result["vs_baseline"]["motorcycle"]["bad2_ratio"] == pytest.approx(ours["bad2_pct"] / base["bad2_pct"])
    assert "motorcycle" in captured.err  # progress went to stderr
    picture = cv2.imread(str(tmp_path / "stereo_motorcycle.png"))
    assert picture is not None and picture.shape[1] == 3 * 240
