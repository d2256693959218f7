"""The pipeline: stages in order, timing per stage, and bad frames counted without stopping the run."""
from __future__ import annotations

import numpy as np
import pytest

from perception.camera import CameraInfo
from perception.detect.stage import DetectConfig
from perception.frame import Frame, Header
from perception.pipeline import Pipeline, PipelineConfig
from perception.pipeline.scene_stage import SceneStageConfig
from perception.stereo.disparity import DisparityConfig

W, H, SHIFT = 160, 120, 8


def small_pipeline() -> Pipeline:
    # the images are 160 px wide; scene and detect off: a mono frame is then a bad frame (with either on, mono
    # gets those)
    return Pipeline(PipelineConfig(disparity=DisparityConfig(num_disparities=32),
                                   scene=SceneStageConfig(enabled=False), detect=DetectConfig(enabled=False)))


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


def test_paced_replay_restarts_its_clock_at_a_jump_in_the_stamps():
    """--rate 1: frames wait for their recorded time, but a jump in the recording (an hour forward, then back)
    is not waited out: the pacing restarts at the jumped frame."""
    import time

    from perception.pipeline.offline import run_offline
    from perception.sources.base import FrameSource

    stamps_s = [0.0, 0.3, 3600.0, 3600.3, 5.0]

    class Frames(FrameSource):
        def __iter__(self):
            for i, s in enumerate(stamps_s):
                f = stereo_frame(i)
                yield Frame(Header(int(s * 1e9), f.header.frame_id), f.left, f.right, f.left_info, f.right_info,
                            rectified=True, index=i)

    pipe = Pipeline(PipelineConfig(disparity=DisparityConfig(num_disparities=32),
                                   scene=SceneStageConfig(enabled=False), detect=DetectConfig(enabled=False)),
                    terrain=False)
    t0 = time.monotonic()
    summary = run_offline(Frames(), None, pipeline=pipe, rate=1.0, progress=False)
    wall = time.monotonic() - t0
    assert summary.used == len(stamps_s)
    assert 0.6 <= wall < 60.0  # the two 0.3 s steps are paced; the hour is not
