"""Training: targets, the loss drops on a few steps, and `train` renders, trains, exports a loadable model."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from perception.detect.data import Sample, label_boxes  # noqa: E402
from perception.detect.targets import make_targets  # noqa: E402


def test_targets_peak_at_centres_and_regress_the_box():
    boxes = np.array([[8, 8, 24, 40], [40, 16, 56, 24]], np.float32)
    heat, mask, reg, regw = make_targets(boxes, np.array([0, 2]), np.array([[0, 44, 8, 48]], np.float32), 4, 64, 48)
    assert heat.shape == (4, 12, 16) and heat[0].max() == 1 and heat[2].max() == 1 and heat[1].max() == 0
    i, j = np.unravel_index(heat[0].argmax(), heat[0].shape)
    l, t, r, b = np.exp(reg[:, i, j]) * 4
    cx, cy = (j + 0.5) * 4, (i + 0.5) * 4
    np.testing.assert_allclose([cx - l, cy - t, cx + r, cy + b], boxes[0], atol=1e-4)
    assert mask[11, 0] == 0 and mask[5, 5] == 1  # the ignore box is masked, the rest is not


def test_label_components_are_split_by_shape():
    label = np.full((60, 100), 3, np.uint8)
    label[10:50, 10:24] = 9  # one pedestrian, 14 x 40 px
    label[10:50, 36:52] = 9  # two pedestrians touching at the hip: one component 34 px wide, 40 tall
    label[12:50, 54:70] = 9
    label[30:50, 52:54] = 9
    label[30:50, 70:95] = 8  # a car
    boxes, classes, _ = label_boxes(label, {9: 0, 8: 2})
    peds = boxes[classes == 0]
    assert len(peds) == 3 and len(boxes[classes == 2]) == 1
    widths = sorted(peds[:, 2] - peds[:, 0])
    assert all(13 <= w <= 19 for w in widths), widths


def _toy_samples(n=6, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = rng.integers(60, 90, (96, 128, 3)).astype(np.uint8)
        x, y = int(rng.integers(0, 96)), int(rng.integers(0, 50))
        img[y:y + 40, x:x + 16] = (40, 40, 220)
        out.append(Sample(img, np.array([[x, y, x + 16, y + 40]], np.float32), np.array([0]),
                          np.zeros((0, 4), np.float32)))
    return out


def test_loss_drops_on_a_few_steps():
    from perception.detect.models import CenterDetector
    from perception.detect.train import DetectTrainConfig, box_loss, focal_loss, make_batch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = DetectTrainConfig(width=128, height=96, crop_width=128, crop_height=96, batch=4, sim_seeds=())
    rng = np.random.default_rng(0)
    pool = [(_toy_samples(), 1.0, 1.0)]
    batch = make_batch(pool, cfg, rng, torch)
    model = CenterDetector(4, head=16)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        logits, log_ltrb = model.raw(batch[0])
        loss = focal_loss(logits, batch[1], batch[2], torch) + box_loss(log_ltrb, batch[3], batch[4], torch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses


def test_train_renders_trains_and_exports_a_loadable_model(tmp_path):
    from perception.detect.detector import Detector
    from perception.detect.train import DetectTrainConfig, train

    cfg = DetectTrainConfig(width=128, height=96, crop_width=96, crop_height=64, batch=2, steps=4, sim_seeds=(3,),
                            sim_frames=2, head=16, warmup=1)
    result = train(cfg, tmp_path / "run", log=lambda m: None)
    assert result["steps"] == 4 and (tmp_path / "run" / "checkpoint.pt").is_file()
    det = Detector(result["onnx"], backend="onnxruntime")
    meta = det.engine.metadata
    assert meta.task == "detect" and meta.class_names == ["pedestrian", "cyclist", "car", "truck"]
    assert "synthetic drives" in meta.trained_on and "CamVid" not in meta.trained_on
    res = det.detect(np.zeros((50, 70, 3), np.uint8))
    assert res.ms > 0 and all(0 <= d.cx <= 70 and 0 <= d.cy <= 50 for d in res.detections)
