"""The soak through the node (issue 9), reduced form: 240 synthetic 160x120 stereo frames over DDS into
perception_node (every output subscribed), paced by its `map/costmap` outputs; the peer (tests/ros/soak.py, in a
private network namespace) samples the node's RSS every 20 frames and times every frame from publish to the arrival
of its map. About 90-120 s on the shared 2-core machine. The full form (20,000 frames at 320x240, docs/performance.md):

    python -m tests.ros.soak --frames 20000 --size 320x240 --out soak.json --plot docs/images/soak_node.png

Bounds, and why:
- RSS slope after the warm-up < 15 MB per 1000 frames (15 kB a frame), and growth from the first sample after the
  warm-up to the last < 6 MB. A leak of anything image-sized a frame makes would exceed the slope: the smallest
  per-frame output at 160x120 is a mono8 image (19.2 kB, 19 MB per 1000 frames), the disparity is 77 kB
  (77 MB / 1000), one input pair 115 kB (115 MB / 1000). What stays below is not a per-frame leak: allocator and
  arena noise of about +-1 MB between samples (measured here: 245.0 -> 245.9 MB, every sample within 1.1 MB, from
  frame 20 to 240, slope 2.2 MB / 1000; docs/performance.md), which over the ~200 frames after the warm-up moves
  the fitted slope by at most ~10 MB / 1000.
- latency p50 of the last tenth <= 1.5 x the first tenth (+ 50 ms): a latency that grows with the frame count
  (a history scanned every frame, a queue that fills) doubles or worse over a run; the margin absorbs the load of the
  other jobs on this machine changing between the first and the last 24 frames.
- every frame sent is answered (its map/costmap arrived) or counted by the node as dropped under a reason; none is
  lost silently, at most a few (the first frame may find its camera_info not there yet: `InputError: no camera_info
  received yet`, docs/faults.md) are dropped, and threads and open files do not grow.
"""
from __future__ import annotations

import json

import pytest

from tests.ros.conftest import run_peer

pytestmark = [pytest.mark.ros]

FRAMES, EVERY, SIZE = 240, 20, "160x120"
TIMEOUT_S = 240


@pytest.fixture(scope="module")
def soak(namespace_runner, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("soak")
    result = run_peer(namespace_runner, "tests.ros.soak", tmp, None, "--frames", str(FRAMES), "--every", str(EVERY),
                      "--size", SIZE, "--distinct", "4", "--plot", str(tmp / "soak.png"),
                      "--budget-s", str(TIMEOUT_S - 30), timeout=TIMEOUT_S)
    result["_plot"] = tmp / "soak.png"
    return result


def _brief(r: dict) -> str:
    keys = ("frames_sent", "frames_answered", "dropped_by_reason", "frames_unanswered", "rss_slope_mb_per_1000",
            "curve", "latency_p50_first_ms", "latency_p50_last_ms", "stopped", "timings_s", "_wall_s")
    return json.dumps({k: r.get(k) for k in keys})


def test_every_frame_was_sent_and_answered_or_counted_with_a_reason(soak):
    assert soak["ready"] and soak["stopped"] is None, _brief(soak)
    assert soak["frames_sent"] == FRAMES
    assert soak["frames_unanswered"] == 0, _brief(soak)  # none lost silently
    assert soak["frames_answered"] + soak["frames_dropped"] == FRAMES, _brief(soak)
    assert all(reason and n > 0 for reason, n in soak["dropped_by_reason"].items())
    assert soak["frames_dropped"] <= 3, _brief(soak)  # paced by the outputs: the node keeps up
    assert int(soak["node"]["frames_in"]) == FRAMES  # every pair was paired
    for topic, n in soak["outputs_received"].items():  # every output of every processed frame came
        assert n >= soak["frames_answered"], (topic, n)
    assert soak["node_exit_code"] == 0, soak["_node_log"][-2000:]


def test_node_memory_is_flat_after_the_warm_up(soak):
    curve = soak["curve"]
    assert len(curve["rss_mb"]) == FRAMES // EVERY
    assert soak["rss_slope_mb_per_1000"] < 15.0, _brief(soak)
    assert soak["rss_last_mb"] - soak["rss_after_warmup_mb"] < 6.0, _brief(soak)
    assert soak["threads_first_last"][1] <= soak["threads_first_last"][0] + 2, soak["curve"]["threads"]
    assert soak["fds_first_last"][1] <= soak["fds_first_last"][0] + 2, soak["curve"]["fds"]


def test_latency_does_not_grow(soak):
    first, last = soak["latency_p50_first_ms"], soak["latency_p50_last_ms"]
    assert 0 < first and 0 < last, _brief(soak)
    assert last <= 1.5 * first + 50.0, _brief(soak)


def test_the_plot_is_written(soak):
    png = soak["_plot"]
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
