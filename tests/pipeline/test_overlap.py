"""The two-stage pipeline across frames: same results as frame by frame, in order, errors and early stops."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from perception.pipeline import Pipeline
from perception.pipeline.overlap import overlapped
from perception.sources.synthetic import SyntheticSource


@pytest.fixture(scope="module")
def frames():
    with SyntheticSource(seed=5, frames=4, size="320x240") as source:
        return list(source)


def run(frames, depth):
    pipeline = Pipeline()
    try:
        return [r for r in overlapped(pipeline, frames, depth=depth)], pipeline
    finally:
        pipeline.close()


def test_overlapped_results_equal_frame_by_frame_ones_in_input_order(frames):
    sequential, _ = run(frames, 0)
    ahead, pipeline = run(frames, 2)
    assert [r.header for r in ahead] == [f.header for f in frames]
    assert pipeline.stats.frames_in == pipeline.stats.used == len(frames)
    for a, b in zip(sequential, ahead):
        assert a.ok and b.ok, (a.error, b.error)
        assert np.array_equal(a.disparity.disparity, b.disparity.disparity, equal_nan=True)
        assert np.array_equal(a.scene.class_mask, b.scene.class_mask)
        assert [d.corners for d in a.detections.detections] == [d.corners for d in b.detections.detections]
        assert [d.track_id for d in a.detections.detections] == [d.track_id for d in b.detections.detections]
        assert np.array_equal(a.terrain.classes, b.terrain.classes)  # the learning saw the frames in order
        assert np.array_equal(a.fused_map.data, b.fused_map.data)
        assert {"rectify", "disparity", "scene", "detect", "features", "map"} <= set(b.timings_ms)


def test_a_failing_source_raises_in_the_caller_after_the_good_frames(frames):
    def source():
        yield frames[0]
        raise OSError("camera unplugged")

    pipeline = Pipeline()
    got = []
    with pytest.raises(OSError, match="camera unplugged"):
        for result in overlapped(pipeline, source(), depth=1):
            got.append(result)
    pipeline.close()
    assert [r.header for r in got] == [frames[0].header]


def test_closing_early_stops_the_worker(frames):
    pipeline = Pipeline()
    pulled = []

    def endless():
        for i in range(10_000):  # bounded: the worker must stop long before
            pulled.append(i)
            yield frames[i % len(frames)]

    results = overlapped(pipeline, endless(), depth=1)
    first = next(results)
    results.close()  # joins the worker
    pipeline.close()
    assert first.ok
    assert len(pulled) <= 4  # the one finished, one queued, one started when the queue was full, and no more
    assert not any(t.name == "perception-start" for t in threading.enumerate())


def test_depth_must_not_be_negative(frames):
    with pytest.raises(ValueError, match="depth"):
        next(overlapped(Pipeline(), frames, depth=-1))


def test_the_long_range_can_run_on_every_other_frame_while_stereo_and_maps_run_on_all(frames):
    from perception.pipeline import PipelineConfig
    from perception.terrain.long_range import LongRangeConfig

    pipeline = Pipeline(PipelineConfig(terrain=LongRangeConfig(every_n_frames=2)))
    try:
        results = list(overlapped(pipeline, frames, depth=1))
    finally:
        pipeline.close()
    assert [r.terrain is not None for r in results] == [True, False, True, False]
    assert all(r.near is not None and r.fused_map is not None and r.detections is not None for r in results)
    assert ["features" in r.timings_ms for r in results] == [True, False, True, False]
