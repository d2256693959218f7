"""The shipped detector on a synthetic stereo frame (boxes at input resolution, header kept, stereo range), the
whole stage, and `perception eval detect --json` on 2 synthetic frames + 2 CamVid test images."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from perception.detect.data import CLASSES, sim_objects
from perception.errors import InputError

KEYS = {"ap50", "map50", "ms"}


@pytest.fixture(scope="module")
def sim_frame():
    from perception.sim import SimConfig, SimWorld

    world = SimWorld(SimConfig(seed=7, width=640, height=480, frames=40, actor_density=10.0))
    return world.render(20)


@pytest.fixture(scope="module")
def detector():
    from perception.detect.detector import Detector

    return Detector(backend="onnxruntime", threads=1)


def test_shipped_model_finds_the_synthetic_actors_at_input_resolution(detector, sim_frame):
    meta = detector.engine.metadata
    assert meta.class_names == list(CLASSES) and "synthetic" in meta.trained_on and "CamVid" in meta.trained_on
    res = detector.detect(sim_frame.left, sim_frame.header)
    assert res.header == sim_frame.header and res.stamp_ns == sim_frame.header.stamp_ns
    gt, cls, _, _ = sim_objects(sim_frame.truth, 480)
    boxes, scores, names = res.arrays()
    assert len(gt) and len(boxes)
    from perception.detect.decode import iou_matrix

    iou = iou_matrix(gt, boxes)
    found = [(iou[i] >= 0.5).any() and names[int(iou[i].argmax())] == CLASSES[c] for i, c in enumerate(cls)]
    assert np.mean(found) >= 0.5, (gt, boxes, names)
    # the same frame at another size and aspect ratio: the same objects, scaled
    small = np.ascontiguousarray(sim_frame.left[:, 80:560])  # 480 x 480 crop
    res2 = detector.detect(small)
    b2, _, _ = res2.arrays()
    assert len(b2) and b2[:, 2].max() <= 480 and b2[:, 3].max() <= 480
    with pytest.raises(InputError):
        detector.detect(sim_frame.left.astype(np.float32))


def test_stage_ranges_tracks_and_maps(sim_frame):
    from perception.detect.evaluate import surface_range
    from perception.detect.stage import DetectStage
    from perception.stereo.disparity import compute_disparity

    stage = DetectStage()
    disp = compute_disparity(sim_frame.left, sim_frame.right).disparity
    T = sim_frame.truth["T_base_camera"]
    out = stage.process(sim_frame, disp, T)
    assert out.header == sim_frame.header and len(out.detections) == len(out.ranges)
    gt, cls, _, kept = sim_objects(sim_frame.truth, 480)
    from perception.detect.decode import iou_matrix

    boxes = np.array([d.corners for d in out.detections], np.float32).reshape(-1, 4)
    iou = iou_matrix(gt, boxes)
    errors = []
    for i, obj in enumerate(kept):
        j = int(iou[i].argmax()) if iou.shape[1] else -1
        r = out.ranges[j] if j >= 0 and iou[i, j] >= 0.5 else None
        truth = surface_range(sim_frame.truth, obj, sim_frame.left_info.K)
        if r is not None and truth is not None and truth < 30:
            errors.append(abs(r.range_m - truth) / truth)
    assert errors and np.median(errors) < 0.1, errors
    ranged = [d for d in out.detections if d.position is not None]
    assert len(out.obstacles) == len(ranged) and all(o.radius > 0 for o in out.obstacles)
    assert all(o.x > 0 for o in out.obstacles)  # in front of the vehicle, base_link
    out2 = stage.process(sim_frame, disp, T)  # the same frame again: tracks confirmed, ids given
    assert out2.tracks and all(d.track_id for d in out2.detections if d.position is not None)


@pytest.mark.data
def test_eval_detect_json_on_a_few_images(data_dir, tmp_path):
    if not (data_dir / "camvid" / "test").is_dir():
        pytest.skip(f"no camvid/ in {data_dir}")
    from perception.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["eval", "detect", "--json", "--data", str(data_dir), "--frames", "2", "--seeds", "102",
                     "--limit", "2", "--save-images", str(tmp_path)])
    assert code == 0
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    for group in (result, result["camvid"], result["baseline"], result["baseline"]["camvid"]):
        assert KEYS <= set(group), group
        assert isinstance(group["map50"], float) and group["ms"] > 0
        assert all(v is None or 0.0 <= v <= 1.0 for v in group["ap50"].values())
    assert result["gt_counts"]["pedestrian"] > 0 and isinstance(result["ap50"]["pedestrian"], float)
    assert isinstance(result["baseline"]["ap50"]["pedestrian"], float)
    assert "range_err_pct" in result and "range_err_pct" in result["baseline"]
    assert result["frames"] == 2 and result["camvid"]["frames"] == 2
    assert (tmp_path / "detect_examples.jpg").is_file()
