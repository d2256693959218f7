"""The pipeline: stages in order, timing per stage, and bad frames counted without stopping the run."""
from __future__ import annotations

import numpy as np
import pytest

from perception.camera import CameraInfo
from perception.frame import Frame, Header
from perception.pipeline import Pipeline, PipelineConfig
from perception.pipeline.scene_stage import SceneStageConfig
from perception.stereo.disparity import DisparityConfig

W, H, SHIFT = 160, 120, 8


def small_pipeline() -> Pipeline:
    # the images are 160 px wide; scene off: a mono frame is then a bad frame (with it, mono gets scene only)
    return Pipeline(PipelineConfig(disparity=DisparityConfig(num_disparities=32),
                                   scene=SceneStageConfig(enabled=False)))


def textured_pair(seed: int = 0, shift: int = SHIFT) -> tuple[np.ndarray, np.ndarray]:
    """A fronto-parallel textured plane: the right image is the left one shifted by `shift` px."""
    rng = np.random.default_rng(seed)
    wide = (rng.random((H, W + shift)) * 255).astype(np.uint8)
    wide = np.repeat(np.repeat(wide[:, ::2], 2, axis=1), 1, axis=0)[:, : W + shift]
    return wide[:, :W].copy(), wide[:, shift:].copy()  # right[x - shift] == left[x]


def stereo_frame(index: int, left=None, right=None, *, infos=True) -> Frame:
    if left is None:
        left, right = textured_pair(index)
    li = CameraInfo.from_intrinsics(W, H, fx=100.0, fy=100.0, cx=W / 2, cy=H / 2) if infos else None
    ri = CameraInfo.from_intrinsics(W, H, fx=100.0, fy=100.0, cx=W / 2, cy=H / 2, baseline=0.12) if infos else None
    return Frame(Header(1_000 + index, "left_optical"), left, right, li, ri, rectified=True, index=index)


def test_stereo_frame_gets_disparity_of_the_true_shift_and_keeps_its_header():
    pipe = small_pipeline()
    result = pipe.process(stereo_frame(0))
    assert result.ok, result.error
    d = result.disparity
    inner = d.measured[:, 40:-10]
    assert inner.mean() > 0.8
    assert np.median(d.disparity[:, 40:-10][inner]) == pytest.approx(SHIFT, abs=0.5)
    assert result.header == Header(1_000, "left_optical")
    assert result.baseline_m == pytest.approx(0.12)
    assert {"rectify", "disparity"} <= set(result.timings_ms)
    assert pipe.times.summary()["disparity"]["n"] == 1


@pytest.mark.parametrize(
    "bad, reason",
    [
        (lambda: stereo_frame(1, *textured_pair(1)[:1], None), "InputError"),  # mono
        (lambda: stereo_frame(1, textured_pair(1)[0], textured_pair(1)[1][:, :100]), "InputError"),  # sizes differ
        (lambda: stereo_frame(1, infos=False), "CalibrationError"),  # no camera_info
        (lambda: stereo_frame(1, textured_pair(1)[0].astype(np.float64), textured_pair(1)[1]), "InputError"),  # dtype
    ],
)
def test_a_bad_frame_is_counted_and_the_next_good_one_is_processed(bad, reason):
    pipe = small_pipeline()
    first = pipe.process(bad())
    assert not first.ok and first.error
    after = pipe.process(stereo_frame(2))
    assert after.ok, after.error
    assert pipe.stats.frames_in == 2 and pipe.stats.used == 1
    assert pipe.stats.skipped[reason] == 1


def test_raw_frame_is_rectified_with_its_camera_info():
    left, right = textured_pair(3)
    K = np.array([[100.0, 0, W / 2], [0, 100.0, H / 2], [0, 0, 1]])
    D = np.array([-0.05, 0.01, 0.0, 0.0, 0.0])
    P_l = np.hstack([K, np.zeros((3, 1))])
    P_r = P_l.copy()
    P_r[0, 3] = -100.0 * 0.12
    li = CameraInfo(W, H, K=K, D=D, P=P_l)
    ri = CameraInfo(W, H, K=K, D=D, P=P_r)
    frame = Frame(Header(5, "cam"), left, right, li, ri, rectified=False)
    result = small_pipeline().process(frame)
    assert result.ok, result.error
    assert result.frame.rectified and result.frame.left_info.is_rectified
    assert not np.array_equal(result.frame.left, left)  # distortion was removed
