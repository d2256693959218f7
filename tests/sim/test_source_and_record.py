"""SyntheticSource (a FrameSource) and `perception sim record` (a ROS 2 bag with the truth that rosbags reads back)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from perception.frame import Frame
from perception.sim import SimConfig, SimWorld
from perception.sources.base import FrameSource
from perception.sources.synthetic import SyntheticSource


def test_synthetic_source_yields_n_stereo_frames():
    with SyntheticSource(seed=2, frames=3, size="96x72") as src:
        assert isinstance(src, FrameSource) and len(src) == 3
        frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2]
    assert all(isinstance(f, Frame) and f.is_stereo and f.left.shape == (72, 96, 3) for f in frames)
    assert frames[0].left_info.width == 96 and frames[0].right_info.P[0, 3] < 0
    assert src.stats.frames_in == src.stats.used == 3 and not src.stats.skipped
    assert frames[1].header.stamp_ns > frames[0].header.stamp_ns
    assert "depth" in frames[2].truth and frames[2].pose is not None


def test_synthetic_source_passes_options_and_can_start_later():
    src = SyntheticSource(seed=2, frames=2, size=(96, 72), start=4, baseline=0.2, change_frame=5)
    frames = list(src)
    assert [f.index for f in frames] == [4, 5]
    assert frames[0].right_info.P[0, 3] == pytest.approx(-frames[0].left_info.fx * 0.2)
    assert not frames[0].truth["change"]["active"] and frames[1].truth["change"]["active"]
    same = SimWorld(SimConfig(seed=2, width=96, height=72, frames=6, baseline=0.2, change_frame=5)).render(4)
    assert np.array_equal(same.left, frames[0].left)


def _bag_writer_available() -> bool:
    try:
        from perception.io.bag_writer import BagWriter  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _bag_writer_available(), reason="perception.io.bag_writer is not available")
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_sim_record_writes_a_bag_that_rosbags_reads_back(tmp_path, storage, capsys):
    from rosbags.highlevel import AnyReader

    from perception.cli import main

    out = tmp_path / "drive"
    assert main(["sim", "record", "--out", str(out), "--frames", "5", "--size", "96x72", "--seed", "4",
                 "--storage", storage]) == 0
    assert "wrote 5 stereo frames" in capsys.readouterr().err
    world = SimWorld(SimConfig(seed=4, width=96, height=72, frames=5))
    msgs: dict[str, list] = {}
    with AnyReader([Path(out)]) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for conn, stamp, raw in reader.messages():
            msgs.setdefault(conn.topic, []).append((stamp, reader.deserialize(raw, conn.msgtype)))
    counts = Counter({k: len(v) for k, v in msgs.items()})
    for topic in ("/stereo/left/image_rect", "/stereo/right/image_rect", "/stereo/left/camera_info",
                  "/stereo/right/camera_info", "/odom", "/ground_truth/depth", "/ground_truth/disparity",
                  "/ground_truth/terrain_class", "/ground_truth/semantic", "/ground_truth/traversability",
                  "/ground_truth/objects"):
        assert counts[topic] == 5, topic
    assert counts["/tf_static"] == 1 and counts["/ground_truth/map"] >= 1
    assert types["/odom"] == "nav_msgs/msg/Odometry" and types["/ground_truth/objects"] == "std_msgs/msg/String"
    frame = world.render(3)
    stamp, left = msgs["/stereo/left/image_rect"][3]
    assert stamp == frame.header.stamp_ns and left.header.frame_id == "left_camera_optical_frame"
    assert left.encoding == "bgr8" and np.array_equal(left.data.reshape(72, 96, 3), frame.left)
    _, right = msgs["/stereo/right/image_rect"][3]
    assert np.array_equal(right.data.reshape(72, 96, 3), frame.right)
    _, depth = msgs["/ground_truth/depth"][3]
    assert depth.encoding == "32FC1"
    assert np.array_equal(depth.data.view("<f4").reshape(72, 96), frame.truth["depth"])
    _, cls = msgs["/ground_truth/terrain_class"][3]
    assert np.array_equal(cls.data.reshape(72, 96), frame.truth["terrain_class"])
    _, info = msgs["/stereo/right/camera_info"][3]
    assert info.p[3] == pytest.approx(frame.right_info.P[0, 3]) and info.width == 96
    _, odom = msgs["/odom"][3]
    assert odom.header.frame_id == "odom" and odom.child_frame_id == "base_link"
    assert odom.pose.pose.position.x == pytest.approx(frame.pose.position[0])
    _, objects = msgs["/ground_truth/objects"][3]
    assert json.loads(objects.data)["objects"] == json.loads(json.dumps(frame.truth["objects"]))
    _, tf = msgs["/tf_static"][0]
    assert {t.child_frame_id for t in tf.transforms} == {"left_camera_optical_frame", "right_camera_optical_frame"}
    assert all(t.header.frame_id == "base_link" for t in tf.transforms)


def test_sim_record_refuses_bad_arguments(tmp_path, capsys):
    from perception.cli import main

    assert main(["sim", "record", "--out", str(tmp_path / "x"), "--frames", "0"]) == 2
    assert main(["sim", "record", "--out", str(tmp_path / "y"), "--frames", "2", "--size", "big"]) == 2
    assert "error" in capsys.readouterr().err
