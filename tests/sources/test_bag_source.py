"""BagSource on the real EuRoC bag, on bags written by BagWriter (both storages), and on deliberately broken bags:
bad frames are skipped and counted with their reason, the iteration always completes."""
from __future__ import annotations

import math
import shutil
import struct

import numpy as np
import pytest
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from perception.camera import CameraInfo, stereo_baseline
from perception.errors import SourceError
from perception.frame import Header, Pose
from perception.io import BagWriter
from perception.io import messages as M
from perception.sources.bag import BagSource, detect_topics, open_bag

T0 = 1_600_000_000_000_000_000
PERIOD = 50_000_000
W, H = 32, 24
LEFT = CameraInfo.from_intrinsics(W, H, 30.0, 30.0, 16.0, 12.0, frame_id="cam_left")
RIGHT = CameraInfo.from_intrinsics(W, H, 30.0, 30.0, 16.0, 12.0, baseline=0.12, frame_id="cam_right")


def left_image(i: int) -> np.ndarray:
    img = np.full((H, W), i, np.uint8)
    img[0, :] = np.arange(W)
    return img


def right_image(i: int) -> np.ndarray:
    return np.full((H, W), 100 + i, np.uint8)


def write_stereo(path, n=8, *, ns="/stereo", kind="image_rect", storage=None, right_info=True, pose=False,
                 defects=None, chunk_size=1 << 20, compression=None):
    """A stereo bag; `defects` maps frame index -> callable(bag, i, header) that writes that frame instead."""
    defects = defects or {}
    with BagWriter(path, storage, chunk_size=chunk_size, compression=compression) as bag:
        for i in range(n):
            h = Header(T0 + i * PERIOD, "cam_left")
            hr = Header(h.stamp_ns, "cam_right")
            bag.write_camera_info(f"{ns}/left/camera_info", h, LEFT)
            if right_info:
                bag.write_camera_info(f"{ns}/right/camera_info", hr, RIGHT)
            if i in defects:  # after the camera_info, so a defect can replace it
                defects[i](bag, i, h)
            else:
                bag.write_image(f"{ns}/left/{kind}", h, left_image(i))
                bag.write_image(f"{ns}/right/{kind}", hr, right_image(i))
            if pose:
                bag.write_odometry("/odom", Header(h.stamp_ns + 1_000_000, "odom"),
                                   Pose(np.array([float(i), 0, 0]), np.array([0, 0, 0, 1.0])))
    return path


# --------------------------------------------------------------------------------------------------------------
def test_euroc_bag(data_dir):
    with BagSource(data_dir / "euroc_stereo_bag") as source:
        assert (source.left_topic, source.right_topic) == ("/stereo/left/image_raw", "/stereo/right/image_raw")
        assert source.left_info_topic == "/stereo/left/camera_info" and source.rectified is False
        frames = list(source)
    assert len(frames) == 20
    assert source.stats.summary() == "20 frames in, 20 used, 0 skipped"
    first = frames[0]
    assert first.is_stereo and first.left.shape == first.right.shape == (480, 752) and first.left.dtype == np.uint8
    assert (first.left_info.width, first.left_info.height) == (752, 480)
    assert stereo_baseline(first.right_info) == pytest.approx(0.11, abs=0.005)
    assert first.rectified is False and first.header.frame_id and first.header.stamp_ns == 1403715273262142976
    stamps = [f.header.stamp_ns for f in frames]
    assert stamps == sorted(stamps) and len(set(stamps)) == 20
    assert np.abs(np.diff(stamps) - 50_000_000).max() < 1_000_000  # 20 Hz
    assert [f.index for f in frames] == list(range(20))
    assert not np.array_equal(frames[0].left, frames[0].right)  # two different cameras
    with BagSource(data_dir / "euroc_stereo_bag") as source:
        passes = [[f.header.stamp_ns for f in source] for _ in range(2)]  # a second pass reads the same frames
    assert passes == [stamps, stamps] and source.stats.used == 20  # ... and counts afresh


def test_euroc_bag_by_its_storage_file(data_dir):
    with BagSource(data_dir / "euroc_stereo_bag" / "euroc_stereo_bag.mcap") as source:
        assert sum(1 for _ in source) == 20 and source.is_stereo


@pytest.mark.parametrize("suffix", [".mcap", ".db3"])
def test_written_stereo_bag_round_trips(tmp_path, suffix):
    path = write_stereo(tmp_path / f"drive{suffix}", pose=True)
    with BagSource(path, left_topic="/stereo/left/image_rect", pose_topic="/odom") as source:
        assert source.rectified is True and source.is_stereo and source.right_topic == "/stereo/right/image_rect"
        frames = list(source)
    assert source.stats.summary() == "8 frames in, 8 used, 0 skipped"
    for i, f in enumerate(frames):
        assert np.array_equal(f.left, left_image(i)) and np.array_equal(f.right, right_image(i))
        assert f.header == Header(T0 + i * PERIOD, "cam_left")
        assert np.array_equal(f.right_info.P, RIGHT.P) and f.left_info.frame_id == "cam_left"
        assert f.pose is not None and f.pose.position[0] == float(i)


def test_mono_bag_and_colour_encodings(tmp_path):
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 255  # red in RGB order
    with BagWriter(tmp_path / "mono.mcap") as bag:
        for i in range(3):
            bag.write_image("/camera/image_raw", Header(T0 + i * PERIOD, "cam"), rgb, "rgb8")
    with BagSource(tmp_path / "mono.mcap") as source:
        frames = list(source)
    assert not source.is_stereo and len(frames) == 3 and source.stats.used == 3
    assert frames[0].left.shape == (H, W, 3) and frames[0].left[0, 0].tolist() == [0, 0, 255]  # BGR
    assert frames[0].right is None and frames[0].left_info is None  # no camera_info: fine for mono


def test_compressed_stereo_topics(tmp_path):
    with BagWriter(tmp_path / "c.mcap") as bag:
        for i in range(3):
            h = Header(T0 + i * PERIOD, "cam")
            bag.write_compressed_image("/cam/left/image_raw/compressed", h, left_image(i), "png")
            bag.write_compressed_image("/cam/right/image_raw/compressed", h, right_image(i), "png")
            bag.write_camera_info("/cam/left/camera_info", h, LEFT)
            bag.write_camera_info("/cam/right/camera_info", h, RIGHT)
    with BagSource(tmp_path / "c.mcap") as source:
        frames = list(source)
        assert source.left_info_topic == "/cam/left/camera_info" and source.rectified is False
    assert len(frames) == 3 and np.array_equal(frames[2].left, left_image(2))
    assert np.array_equal(frames[1].right, right_image(1))


def test_topic_detection_prefers_rectified_pairs():
    from perception.sources.bag import TopicInfo

    def topics(*names):
        return {n: TopicInfo(n, "sensor_msgs/msg/Image", 1) for n in names}

    assert detect_topics(topics("/s/left/image_raw", "/s/left/image_rect", "/s/right/image_raw", "/s/right/image_rect")) \
        == ("/s/left/image_rect", "/s/right/image_rect")
    assert detect_topics(topics("/cam0/image_raw", "/cam1/image_raw")) == ("/cam0/image_raw", "/cam1/image_raw")
    assert detect_topics(topics("/front/image")) == ("/front/image", None)
    assert detect_topics({"/x": TopicInfo("/x", "std_msgs/msg/String", 1)}) == (None, None)


# --- broken input ---------------------------------------------------------------------------------------------
BLOB = "std_msgs/Header header\nuint8[] payload\n"


def _blob_store():
    store = get_typestore(Stores.ROS2_HUMBLE)
    store.register(get_types_from_msg(BLOB, "acme_msgs/msg/Blob"))
    return store


def wrong_step(bag, i, h):
    msg = M.image_to_msg(h, left_image(i))
    msg.step = W - 3  # step < width
    bag.write_raw("/stereo/left/image_rect", "sensor_msgs/msg/Image", h.stamp_ns, M.serialize(msg))
    bag.write_image("/stereo/right/image_rect", h, right_image(i))


def unknown_type(bag, i, h):
    store = _blob_store()
    cls = store.types["acme_msgs/msg/Blob"]
    raw = store.serialize_cdr(cls(header=M.header_msg(h), payload=np.zeros(4, np.uint8)), "acme_msgs/msg/Blob")
    bag.write_image("/stereo/left/image_rect", h, left_image(i))
    bag.write_raw("/stereo/right/image_rect", "acme_msgs/msg/Blob", h.stamp_ns, bytes(raw), msgdef=BLOB)


def right_smaller(bag, i, h):
    bag.write_image("/stereo/left/image_rect", h, left_image(i))
    bag.write_image("/stereo/right/image_rect", h, np.zeros((H // 2, W // 2), np.uint8))


def far_apart(bag, i, h):
    bag.write_image("/stereo/left/image_rect", h, left_image(i))
    bag.write_image("/stereo/right/image_rect", Header(h.stamp_ns + 20_000_000, "cam_right"), right_image(i))


def garbage(bag, i, h):
    raw = M.serialize(M.image_to_msg(h, left_image(i)))
    bag.write_raw("/stereo/left/image_rect", "sensor_msgs/msg/Image", h.stamp_ns, raw[:40])  # header, then cut
    bag.write_image("/stereo/right/image_rect", h, right_image(i))


def nan_info(bag, i, h):
    bag.write_image("/stereo/left/image_rect", h, left_image(i))
    bag.write_image("/stereo/right/image_rect", h, right_image(i))
    msg = M.camera_info_to_msg(h, RIGHT)
    msg.k = msg.k.copy()
    msg.k[4] = math.nan
    bag.write_raw("/stereo/right/camera_info", "sensor_msgs/msg/CameraInfo", h.stamp_ns, M.serialize(msg))


DEFECTS = {
    1: (wrong_step, "invalid image on /stereo/left/image_rect", "step 29 is smaller than width 32"),
    3: (unknown_type, "unsupported message type on /stereo/right/image_rect", "acme_msgs/msg/Blob"),
    5: (right_smaller, "stereo image sizes differ", "(12, 16)"),
    7: (far_apart, "stereo stamps more than 5 ms apart", "+20.0 ms"),
    9: (garbage, "undecodable message on /stereo/left/image_rect", str(T0 + 9 * PERIOD)),
    11: (nan_info, "invalid camera_info on /stereo/right/camera_info", "NaN"),
}


@pytest.mark.parametrize("suffix", [".mcap", ".db3"])
def test_broken_frames_are_skipped_counted_and_explained(tmp_path, suffix, caplog):
    path = write_stereo(tmp_path / f"broken{suffix}", n=14, defects={i: fn for i, (fn, _, _) in DEFECTS.items()})
    with BagSource(path) as source:
        frames = list(source)
    # every defect costs exactly its own frame, and says why; the iteration went on to the end
    assert [(f.header.stamp_ns - T0) // PERIOD for f in frames] == [0, 2, 4, 6, 8, 10, 12, 13]
    assert dict(source.stats.skipped) == {reason: 1 for _, reason, _ in DEFECTS.values()}
    assert (source.stats.frames_in, source.stats.used) == (14, 8)
    summary = source.stats.summary()
    assert summary.startswith("14 frames in, 8 used, 6 skipped (")
    for _, reason, _ in DEFECTS.values():
        assert f"1 {reason}" in summary
    for _, reason, detail in DEFECTS.values():  # the log line names the topic / stamp and what is wrong
        line = next(r.getMessage() for r in caplog.records if reason in r.getMessage())
        assert detail in line, (reason, line)
    assert all(np.array_equal(f.left, left_image((f.header.stamp_ns - T0) // PERIOD)) for f in frames)


def test_missing_camera_info_with_and_without_a_calibration_yaml(tmp_path):
    path = write_stereo(tmp_path / "noinfo.mcap", n=5, right_info=False)
    with BagSource(path) as source:
        assert list(source) == []
    assert source.stats.summary() == "5 frames in, 0 used, 5 skipped (5 missing camera_info for right camera)"
    yaml_path = tmp_path / "right.yaml"
    RIGHT.to_yaml(yaml_path)
    with BagSource(path, right_calibration=yaml_path) as source:
        frames = list(source)
    assert len(frames) == 5 and source.stats.used == 5
    assert stereo_baseline(frames[0].right_info) == pytest.approx(0.12)
    with BagSource(path, require_info=False) as source:
        assert [f.right_info for f in source] == [None] * 5


@pytest.mark.parametrize(("suffix", "compression"), [(".mcap", None), (".mcap", "zstd"), (".db3", None)])
def test_truncated_bag_reads_what_is_left(tmp_path, suffix, compression):
    path = write_stereo(tmp_path / f"cut{suffix}", n=30, chunk_size=16_000, compression=compression)
    storage = next(p for p in path.iterdir() if p.suffix == suffix)
    size = storage.stat().st_size
    if suffix == ".mcap":  # cut into the messages, not into the summary (most of a well compressed file)
        size = struct.unpack("<Q", storage.read_bytes()[-28:-20])[0]  # the footer's summary start
    with open(storage, "r+b") as f:
        f.truncate(int(size * 0.6))
    with BagSource(path) as source:
        frames = list(source)
    assert 5 < len(frames) < 30
    assert [f.index for f in frames] == list(range(len(frames)))
    assert np.array_equal(frames[-1].left, left_image(len(frames) - 1))
    assert source.stats.frames_in == 30  # metadata.yaml says how many there were
    assert "lost in the truncated end of the bag" in source.stats.summary()
    assert source.stats.used + sum(source.stats.skipped.values()) == 30
    # the storage file alone (no metadata.yaml to say what was lost) still reads
    alone = tmp_path / f"alone{suffix}"
    shutil.copy(storage, alone)
    with BagSource(alone) as source:
        assert sum(1 for _ in source) == len(frames)
    assert "truncated" in source.stats.summary()


def test_bags_that_cannot_be_opened(tmp_path):
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(SourceError) as err:
        BagSource(junk)
    assert str(junk) in str(err.value) and "ros2 bag info" in str(err.value)
    with pytest.raises(SourceError, match="does not exist"):
        BagSource(tmp_path / "missing.mcap")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="without metadata.yaml"):
        BagSource(tmp_path / "empty")
    path = write_stereo(tmp_path / "ok.mcap", n=2)
    with pytest.raises(SourceError, match="has no left image topic '/nope'") as err:
        BagSource(path, left_topic="/nope")
    assert "/stereo/left/image_rect" in str(err.value)  # says what the bag has
    with BagWriter(tmp_path / "strings.mcap") as bag:
        bag.write_string("/chatter", Header(T0, ""), "hi")
    with pytest.raises(SourceError, match="no image topics"):
        BagSource(tmp_path / "strings.mcap")


def test_open_bag_lists_topics_for_copying(tmp_path):
    path = write_stereo(tmp_path / "t.mcap", n=2)
    reader = open_bag(path)
    try:
        info = reader.topics["/stereo/left/image_rect"]
        assert (info.msgtype, info.count) == ("sensor_msgs/msg/Image", 2)
        assert info.msgdef.startswith("std_msgs/Header header") and info.rihs01.startswith("RIHS01_")
    finally:
        reader.close()
