"""Fixtures of the viewer tests: real pipeline output on a few frames of the synthetic drive."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def drive_results():
    """FrameResults of the full pipeline (stereo labels, long-range classes, maps) on 5 synthetic 640x480 frames."""
    from perception.pipeline.core import Pipeline
    from perception.sources.synthetic import SyntheticSource

    pipeline = Pipeline()
    try:
        with SyntheticSource(seed=0, frames=5, size="640x480") as source:
            results = [pipeline.process(frame) for frame in source]
    finally:
        pipeline.close()
    assert all(r.ok for r in results), [r.error for r in results]
    return results
