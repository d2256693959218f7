"""NMS, per-class thresholds, AP, and stereo ranging from a synthetic disparity map."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from perception.detect.decode import class_thresholds, decode_centernet, iou_matrix, nms
from perception.detect.metrics import APAccumulator, average_precision, match_image
from perception.detect.ranging import box_disparity, range_box
from perception.errors import InputError, ModelError


def test_nms_keeps_the_best_of_overlapping_boxes_per_class():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.6, 0.9, 0.5, 0.8], np.float32)
    assert list(nms(boxes, scores, 0.5)) == [1, 2]  # class-agnostic: 0 and 3 suppressed by 1
    assert list(nms(boxes, scores, 0.5, classes=np.array([0, 0, 0, 1]))) == [1, 3, 2]  # 3 is another class
    assert list(nms(boxes, scores, 0.95)) == [1, 3, 2]  # 0 and 3 are identical: one goes at any threshold < 1
    assert len(nms(np.zeros((0, 4)), np.zeros(0))) == 0
    assert np.isclose(iou_matrix([[0, 0, 10, 10]], [[5, 0, 15, 10]])[0, 0], 50 / 150)


def test_per_class_thresholds_and_centernet_peaks():
    names = ["pedestrian", "cyclist", "car", "truck"]
    t = class_thresholds({"pedestrian": 0.2, "truck": 0.6}, names, 0.4)
    assert list(t) == pytest.approx([0.2, 0.4, 0.4, 0.6])
    with pytest.raises(ModelError):
        class_thresholds({"dog": 0.3}, names, 0.4)
    heat = np.zeros((1, 4, 12, 16), np.float32)
    heat[0, 0, 5, 5] = 0.3  # pedestrian above its 0.2 threshold
    heat[0, 0, 5, 6] = 0.25  # not a local maximum
    heat[0, 3, 2, 10] = 0.5  # truck below its 0.6 threshold
    ltrb = np.full((1, 4, 12, 16), 8.0, np.float32)
    boxes, scores, cls = decode_centernet(heat, ltrb, t, stride=4)
    assert list(cls) == [0] and scores[0] == pytest.approx(0.3)
    np.testing.assert_allclose(boxes[0], [22 - 8, 22 - 8, 22 + 8, 22 + 8])  # cell centre (5.5 * 4) +- 8


def test_ap_all_point_interpolation_and_ignore_regions():
    assert average_precision([0.9, 0.8, 0.7], [True, False, True], 2) == pytest.approx(1.0 * 0.5 + 2 / 3 * 0.5)
    assert average_precision([0.9], [True], 4) == pytest.approx(0.25)
    gt = [[0, 0, 10, 20]]
    ignore = [[50, 50, 60, 60]]
    m = match_image([[0, 0, 10, 20], [1, 0, 11, 20], [51, 51, 59, 59], [30, 30, 40, 40]], [0.9, 0.8, 0.7, 0.6], gt,
                    ignore)
    assert list(m) == [0, -1, -2, -1]  # match, duplicate = FP, on an ignore region = dropped, FP
    acc = APAccumulator(["pedestrian", "car"])
    acc.add([[0, 0, 10, 20], [30, 30, 40, 40]], [0.9, 0.5], ["pedestrian", "car"], gt, ["pedestrian"], ignore)
    r = acc.result()
    assert r["ap50"] == {"pedestrian": 1.0, "car": None} and r["map50"] == 1.0  # car has no truth: not in the mean


def scene_disparity(rng, h=240, w=320, d_obj=10.0):
    """Background far (1.5 px), ground rising towards the bottom, an object of disparity d_obj with noise,
    holes (NaN) including its centre pixel, and background showing between its 'legs'."""
    disp = np.full((h, w), 1.5, np.float32)
    rows = np.arange(h)[:, None]
    disp[140:] = (2 + (rows[140:] - 140) * 0.25).astype(np.float32) * np.ones((1, w), np.float32)
    disp[60:180, 140:180] = d_obj + rng.normal(0, 0.15, (120, 40)).astype(np.float32)
    disp[140:180, 155:165] = 1.5  # gap between the legs: background
    disp[rng.random((h, w)) < 0.15] = np.nan  # SGBM holes
    disp[100:140, 150:170] = np.nan  # no texture at the centre
    return disp


def test_box_range_is_robust_to_background_ground_and_holes():
    rng = np.random.default_rng(0)
    fx, B, cx, cy = 400.0, 0.12, 159.5, 119.5
    disp = scene_disparity(rng)
    box = (135, 55, 185, 185)  # a loose box: background at the sides, ground at the bottom
    assert np.isnan(disp[120, 160])  # the centre pixel has no disparity at all
    r = range_box(disp, box, "pedestrian", fx=fx, baseline=B, cx=cx, cy=cy)
    true_z = fx * B / 10.0
    assert r is not None and abs(r.position[2] - true_z) / true_z < 0.01
    assert r.range_m == pytest.approx(np.linalg.norm(r.position))
    # a plain average over the box is pulled far off by background and ground
    vals = disp[55:185, 135:185]
    plain = fx * B / np.nanmean(vals)
    assert abs(plain - true_z) / true_z > 0.05
    # metric size of the box (50 x 130 px at 4.8 m: 0.6 x 1.56 m) fits a pedestrian, not a truck
    assert r.size_ok is True
    assert range_box(disp, box, "truck", fx=fx, baseline=B, cx=cx, cy=cy).size_ok is False


def test_ranging_without_enough_disparities_and_bad_input():
    disp = np.full((50, 50), np.nan, np.float32)
    assert box_disparity(disp, (10, 10, 20, 20)) is None
    assert range_box(disp, (10, 10, 20, 20), "car", fx=100, baseline=0.1, cx=25, cy=25) is None
    with pytest.raises(InputError):
        range_box(np.zeros((3, 4, 5)), (0, 0, 1, 1), "car", fx=100, baseline=0.1, cx=0, cy=0)
    with pytest.raises(InputError):
        range_box(disp, (0, 0, 1, 1), "car", fx=100, baseline=0.0, cx=0, cy=0)


def test_object_block_refinement_recovers_sub_pixel_disparity_from_a_biased_map():
    from perception.detect.ranging import refine_disparity

    rng = np.random.default_rng(3)
    h, w, d_true, d_bg = 120, 200, 2.37, 0.8
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (h, w + 20)).astype(np.float32), (0, 0), 1.2)
    xs = np.arange(w, dtype=np.float32)
    # right(y, x) = left(y, x + d) (x_right = x_left - d): the object (rows 30-90, cols 80-120) at d_true, the rest at d_bg
    left = tex[:, :w].copy()
    obj = np.zeros((h, w), bool)
    obj[30:90, 80:120] = True
    d = np.where(obj, d_true, d_bg).astype(np.float32)
    right = np.stack([np.interp(xs + d[y], np.arange(w + 20), tex[y]) for y in range(h)]).astype(np.float32)
    # the map a matcher with pixel-locking gives: whole pixels, biased low on the object
    disp = np.where(obj, np.where(rng.random((h, w)) < 0.7, 2.0, 3.0), 1.0).astype(np.float32)
    box = (75, 25, 125, 95)
    d_ref = refine_disparity(left, right, disp, box, float(np.median(disp[obj])))
    assert d_ref is not None and abs(d_ref - d_true) < 0.05
    r = range_box(disp, box, "pedestrian", fx=400, baseline=0.12, cx=100, cy=60, left=left, right=right)
    assert abs(r.disparity - d_true) < 0.05
    flat = np.full_like(left, 128.0)  # no texture: no refinement, the map's value stands
    assert refine_disparity(flat, flat, disp, box, 2.0) is None
