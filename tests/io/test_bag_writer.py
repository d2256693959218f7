"""BagWriter: rosbag2 bags in both storages that rosbags (and mcap_ros2) read back exactly, QoS metadata,
the --out path convention, and bags that stay readable when writing fails midway."""
from __future__ import annotations

import errno
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.highlevel import AnyReader
from rosbags.interfaces import QosDurability, QosReliability
from rosbags.rosbag2 import Reader

from perception.camera import CameraInfo
from perception.frame import Header, Pose
from perception.io import BagWriteError, BagWriter, Detection2D, DiagnosticStatus, resolve_bag_path
from perception.io import bag_storage
from perception.io import bag_writer as BW
from perception.io import messages as M

RNG = np.random.default_rng(3)
T0 = 1_700_000_000_000_000_000


def header(i: int, frame: str = "cam_left") -> Header:
    return Header(T0 + i * 50_000_000, frame)


IMAGES = {  # topic: (array, encoding)
    "/enc/mono8": (RNG.integers(0, 256, (12, 16), dtype=np.uint8), "mono8"),
    "/enc/bgr8": (RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8), "bgr8"),
    "/enc/rgb8": (RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8), "rgb8"),
    "/enc/bgra8": (RNG.integers(0, 256, (12, 16, 4), dtype=np.uint8), "bgra8"),
    "/enc/mono16": (RNG.integers(0, 65536, (12, 16), dtype=np.uint16), "mono16"),
    "/enc/float": (RNG.normal(size=(12, 16)).astype(np.float32), "32FC1"),
    "/enc/yuv422": (RNG.integers(0, 256, (12, 16, 2), dtype=np.uint8), "yuv422"),
}
INFO = CameraInfo.from_intrinsics(16, 12, 20.0, 20.0, 8.0, 6.0, baseline=0.1)
POSE = Pose(np.array([1.0, 2.0, 0.0]), M.yaw_quaternion(0.3))
GRID = RNG.integers(-1, 101, (6, 5)).astype(np.int8)
DETS = [Detection2D(5.0, 6.0, 3.0, 4.0, "car", 0.75, track_id="2", position=(0.5, 0.0, 9.0))]


def write_everything(bag: BagWriter, i: int) -> None:
    h = header(i)
    for topic, (image, enc) in IMAGES.items():
        bag.write_image(topic, h, image, enc if enc in ("rgb8", "yuv422") else None)  # the rest inferred
    bag.write_compressed_image("/enc/png/compressed", h, IMAGES["/enc/bgr8"][0], "png")
    bag.write_compressed_image("/enc/jpeg/compressed", h, IMAGES["/enc/bgr8"][0], "jpeg")
    bag.write_camera_info("/cam/camera_info", h, INFO)
    bag.write_pose("/pose", Header(h.stamp_ns, "odom"), POSE)
    bag.write_odometry("/odom", Header(h.stamp_ns, "odom"), POSE)
    bag.write_transforms("/tf", h, [POSE])
    bag.write_string("/status", h, f"frame {i}")
    bag.write_occupancy_grid("/map/costmap", Header(h.stamp_ns, "base_link"), GRID, 0.25, (-1.0, -0.5, 0.0))
    bag.write_disparity("/disparity", h, np.full((12, 16), 3.5, np.float32), 20.0, 0.1, 0.0, 16.0)
    bag.write_detections("/detections", h, DETS)
    bag.write_diagnostics("/diagnostics", h, [DiagnosticStatus("perception", "OK", "fine", values={"fps": 10})])
    if i == 0:
        bag.write_transforms("/tf_static", h, [Pose(np.zeros(3), np.array([0, 0, 0, 1.0]), "base_link", "cam")], static=True)


def test_out_path_convention():
    assert resolve_bag_path("/tmp/drive.mcap") == (Path("/tmp/drive.mcap"), "mcap", Path("/tmp/drive.mcap/drive_0.mcap"))
    assert resolve_bag_path("/tmp/drive.db3") == (Path("/tmp/drive.db3"), "sqlite3", Path("/tmp/drive.db3/drive_0.db3"))
    assert resolve_bag_path("/tmp/drive") == (Path("/tmp/drive"), "mcap", Path("/tmp/drive/drive_0.mcap"))
    assert resolve_bag_path("/tmp/drive", "sqlite3")[2] == Path("/tmp/drive/drive_0.db3")
    with pytest.raises(BagWriteError, match="suffix .mcap says mcap"):
        resolve_bag_path("/tmp/drive.mcap", "sqlite3")


@pytest.mark.parametrize("suffix", [".mcap", ".db3"])
def test_every_output_round_trips_through_rosbags(tmp_path, suffix):
    out = tmp_path / f"drive{suffix}"
    with BagWriter(out) as bag:
        for i in range(3):
            write_everything(bag, i)
    assert sorted(p.name for p in out.iterdir()) == [f"drive_0{suffix}", "metadata.yaml"]
    meta = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == ("mcap" if suffix == ".mcap" else "sqlite3")
    assert meta["message_count"] == 3 * 18 + 1

    seen: dict[str, list] = {}
    with AnyReader([out]) as reader:  # the same path the writer was given
        qos = {c.topic: c.ext.offered_qos_profiles[0] for c in reader.connections}
        for conn, ts, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            seen.setdefault(conn.topic, []).append((ts, msg))
    assert len(seen) == len(IMAGES) + 12
    for topic, (image, enc) in IMAGES.items():
        for i, (ts, msg) in enumerate(seen[topic]):
            assert ts == header(i).stamp_ns and msg.encoding == enc
            assert np.array_equal(M.image_from_msg(msg, topic=topic), image), topic
    assert np.array_equal(M.compressed_from_msg(seen["/enc/png/compressed"][0][1]), IMAGES["/enc/bgr8"][0])
    jpeg = M.compressed_from_msg(seen["/enc/jpeg/compressed"][0][1])
    assert jpeg.shape == (12, 16, 3)
    info = M.camera_info_from_msg(seen["/cam/camera_info"][0][1])
    assert np.array_equal(info.P, INFO.P) and np.array_equal(info.K, INFO.K)
    assert np.allclose(M.pose_from_msg(seen["/pose"][1][1]).position, POSE.position)
    assert M.pose_from_msg(seen["/odom"][2][1]).child_frame == "base_link"
    assert [t.child_frame for t in M.transforms_from_msg(seen["/tf_static"][0][1])] == ["cam"]
    assert [m.data for _, m in seen["/status"]] == ["frame 0", "frame 1", "frame 2"]
    grid = M.occupancy_grid_from_msg(seen["/map/costmap"][0][1])
    assert np.array_equal(grid.data, GRID) and grid.resolution == 0.25 and grid.origin_xy_yaw[:2] == (-1.0, -0.5)
    disp = M.disparity_from_msg(seen["/disparity"][0][1])
    assert np.all(disp.disparity == 3.5) and disp.f == 20.0
    assert M.detections_from_msg(seen["/detections"][0][1]) == DETS
    assert M.diagnostics_from_msg(seen["/diagnostics"][0][1])[0].values == {"fps": "10"}
    # header stamps and frame ids travel unchanged
    assert M.header_from_msg(seen["/detections"][1][1].header) == header(1)

    # QoS: sensor data best effort; maps and /tf_static latched; the rest reliable + volatile
    assert (qos["/enc/mono8"].reliability, qos["/enc/mono8"].durability) == (QosReliability.BEST_EFFORT, QosDurability.VOLATILE)
    assert qos["/disparity"].reliability == QosReliability.BEST_EFFORT
    for topic in ("/map/costmap", "/tf_static"):
        assert (qos[topic].reliability, qos[topic].durability) == (QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL)
    for topic in ("/detections", "/diagnostics", "/tf", "/status"):
        assert (qos[topic].reliability, qos[topic].durability) == (QosReliability.RELIABLE, QosDurability.VOLATILE)

    storage_file = out / f"drive_0{suffix}"
    with Reader(storage_file) as bare:  # the storage file alone is readable too
        assert bare.message_count == 3 * 18 + 1


def test_mcap_is_valid_for_the_mcap_libraries(tmp_path):
    mcap_ros2 = pytest.importorskip("mcap_ros2.reader", reason="mcap-ros2-support is not installed")
    out = tmp_path / "drive.mcap"
    with BagWriter(out, compression="zstd", chunk_size=2000) as bag:
        for i in range(3):
            write_everything(bag, i)
    counts: dict[str, int] = {}
    for m in mcap_ros2.read_ros2_messages(str(out / "drive_0.mcap")):
        counts[m.channel.topic] = counts.get(m.channel.topic, 0) + 1
        if m.channel.topic == "/detections":
            assert m.ros_msg.detections[0].results[0].hypothesis.class_id == "car"
            assert m.ros_msg.detections[0].bbox.center.position.x == 5.0
        if m.channel.topic == "/enc/mono8":
            assert bytes(m.ros_msg.data) == IMAGES["/enc/mono8"][0].tobytes()
    assert counts["/enc/mono8"] == 3 and counts["/tf_static"] == 1 and len(counts) == len(IMAGES) + 12

    from mcap.reader import make_reader
    from mcap.stream_reader import StreamReader

    with open(out / "drive_0.mcap", "rb") as f:  # the linear structure, chunk CRCs included
        kinds = [type(r).__name__ for r in StreamReader(f, validate_crcs=True).records]
    assert kinds.count("Message") == 3 * 18 + 1 and kinds[-1] == "Footer" and "DataEnd" in kinds

    with open(out / "drive_0.mcap", "rb") as f:
        summary = make_reader(f, validate_crcs=True).get_summary()
    assert summary.statistics.message_count == 3 * 18 + 1
    assert len(summary.chunk_indexes) > 1
    assert {c.metadata["offered_qos_profiles"] for c in summary.channels.values()} >= {BW.dump_qos([BW.SENSOR_QOS])}


def test_qos_rules():
    assert BW.qos_for("/terrain/costmap", "nav_msgs/msg/OccupancyGrid") == BW.LATCHED_QOS
    assert BW.qos_for("/scene/depth_map", "sensor_msgs/msg/Image") == BW.SENSOR_QOS
    assert BW.qos_for("/map", "std_msgs/msg/String") == BW.LATCHED_QOS
    assert BW.qos_for("/tf", "tf2_msgs/msg/TFMessage") == BW.TF_QOS
    assert BW.qos_for("/extrinsics", "tf2_msgs/msg/TFMessage", static=True) == BW.LATCHED_QOS
    assert BW.qos_for("/warnings", "std_msgs/msg/String") == BW.RELIABLE_QOS
    text = BW.dump_qos([BW.SENSOR_QOS])
    assert yaml.safe_load(text)[0]["reliability"] == 2 and yaml.safe_load(text)[0]["durability"] == 2


def test_qos_override_per_topic(tmp_path):
    out = tmp_path / "q.mcap"
    with BagWriter(out, qos_overrides={"/overlay": "reliable"}) as bag:
        bag.write_image("/overlay", header(0), np.zeros((2, 2, 3), np.uint8))
    with Reader(out) as r:
        assert r.connections[0].ext.offered_qos_profiles[0].reliability == QosReliability.RELIABLE


def test_existing_paths_are_not_overwritten(tmp_path):
    out = tmp_path / "a.mcap"
    with BagWriter(out) as bag:
        bag.write_string("/s", header(0), "first")
    with pytest.raises(BagWriteError, match="already exists"):
        BagWriter(out)
    with BagWriter(out, overwrite=True) as bag:
        bag.write_string("/s", header(0), "second")
    with AnyReader([out]) as r:
        assert [r.deserialize(raw, c.msgtype).data for c, _, raw in r.messages()] == ["second"]
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(BagWriteError, match="not a bag directory"):
        BagWriter(precious, overwrite=True)
    assert (precious / "thesis.tex").exists()


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_is_closed_and_readable_when_the_caller_fails(tmp_path, storage):
    out = tmp_path / "crash"
    with pytest.raises(RuntimeError, match="pipeline blew up"):
        with BagWriter(out, storage) as bag:
            for i in range(3):
                bag.write_image("/cam/image", header(i), np.full((4, 4), i, np.uint8))
            raise RuntimeError("pipeline blew up")
    with AnyReader([out]) as r:
        values = [int(M.image_from_msg(r.deserialize(raw, c.msgtype))[0, 0]) for c, _, raw in r.messages()]
    assert values == [0, 1, 2]
    with pytest.raises(BagWriteError, match="closed"):
        bag.write_string("/s", header(0), "late")


def test_bad_messages_are_refused_without_breaking_the_bag(tmp_path):
    out = tmp_path / "bad.mcap"
    with BagWriter(out) as bag:
        bag.write_image("/ok", header(0), np.zeros((2, 2), np.uint8))
        with pytest.raises(Exception, match="cannot infer"):
            bag.write_image("/bad", header(1), np.zeros((2, 2, 7), np.uint8))
        with pytest.raises(BagWriteError, match="unknown here"):
            bag.write_raw("/foreign", "my_msgs/msg/Thing", 5, b"\x00\x01\x00\x00")
        # a foreign type with its definition is copied through
        bag.write_raw("/foreign", "my_msgs/msg/Thing", 5, b"\x00\x01\x00\x00\x07\x00\x00\x00", msgdef="int32 value\n")
    with Reader(out) as r:
        assert {c.topic: c.msgcount for c in r.connections} == {"/ok": 1, "/foreign": 1}


class _FullDisk:
    """The raw MCAP file (which rosbags created with its header) that holds `budget` bytes in total, then fails
    like a full disk (a partial write, then ENOSPC)."""

    def __init__(self, path, budget: int, recover_after_truncate: bool):
        self.f = open(path, "r+b", buffering=0)  # noqa: SIM115
        self.budget = budget
        self.recover = recover_after_truncate
        self.failed = False

    def write(self, data) -> int:
        room = self.budget - self.f.tell()
        if room <= 0 or (self.failed and not self.recover):
            raise OSError(errno.ENOSPC, "No space left on device")
        if len(data) > room:
            self.failed = True
            return self.f.write(bytes(data[:room]))  # a partial write; the next one raises
        return self.f.write(data)

    def truncate(self, size):
        return self.f.truncate(size)

    def seek(self, pos, whence=0):
        return self.f.seek(pos, whence)

    def close(self):
        self.f.close()


@pytest.mark.parametrize("summary_fits", [True, False])
def test_mcap_stays_readable_when_the_disk_fills_up(tmp_path, monkeypatch, summary_fits):
    from perception.sources.bag import BagSource

    budget = 60_000
    monkeypatch.setattr(bag_storage, "_open_storage_file", lambda p: _FullDisk(p, budget, summary_fits))
    out = tmp_path / "full.mcap"
    written = 0
    with pytest.raises(BagWriteError, match="No space left"):
        with BagWriter(out, chunk_size=6_000) as bag:
            for i in range(100):  # 100 x 2.4 kB cannot fit in 60 kB
                bag.write_image("/stereo/left/image_rect", header(i), np.full((40, 60), i, np.uint8))
                written += 1
    durable = bag.message_counts["/stereo/left/image_rect"]
    assert 0 < durable <= written < 100
    assert (out / "full_0.mcap").stat().st_size <= budget
    meta = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["message_count"] == durable  # metadata.yaml is written for what is in the file
    if summary_fits:  # the summary went in after the partial chunk was cut off: an ordinary, indexed bag
        with Reader(out) as r:
            stamps = [ts for _, ts, _ in r.messages()]
        assert stamps == [header(i).stamp_ns for i in range(durable)]
    else:  # not even the summary fitted: the file ends at its last whole chunk and the bag source reads that
        with pytest.raises(Exception):  # noqa: B017 - rosbags needs the summary
            Reader(out / "full_0.mcap").open()
    with BagSource(out, mono=True) as source:
        values = [int(f.left[0, 0]) for f in source]
    assert values == list(range(durable))
    assert source.stats.used == durable


def test_mcap_summary_goes_in_when_the_last_chunk_does_not_fit(tmp_path, monkeypatch):
    """The disk fills up while close() writes the last chunk: close raises, that chunk is cut off again and the
    summary still goes in, indexing the chunks written before."""
    opened: list[_FullDisk] = []

    def open_disk(path):
        opened.append(_FullDisk(path, 10**9, True))
        return opened[-1]

    monkeypatch.setattr(bag_storage, "_open_storage_file", open_disk)
    out = tmp_path / "late.mcap"
    bag = BagWriter(out)  # 1 MiB chunks: nothing reaches the file before flush() / close()
    for i in range(10):
        bag.write_image("/cam/image_raw", header(i), np.full((100, 100), i, np.uint8))
        if i == 4:
            bag.flush()
    disk = opened[0]
    disk.budget = disk.f.tell() + 10_000  # room for the summary (a few kB), not for the last chunk (50 kB)
    with pytest.raises(BagWriteError, match="closing the bag failed: .*No space left"):
        bag.close()
    assert bag.message_counts == {"/cam/image_raw": 5}
    with Reader(out) as r:  # an ordinary indexed bag, metadata.yaml included
        assert r.message_count == 5
        assert [int(np.frombuffer(raw, np.uint8)[-1]) for _, _, raw in r.messages()] == [0, 1, 2, 3, 4]
    bag.close()  # closing twice is fine


def test_sqlite_bag_keeps_its_commits_when_it_cannot_be_finished(tmp_path, monkeypatch):
    """The last step of closing (rosbags' metadata row and final commit) fails: the storage is aborted, its
    committed messages stay, and metadata.yaml is written for them all the same."""
    from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer

    def full(self, version, metadata):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Sqlite3Writer, "close", full)
    out = tmp_path / "late.db3"
    bag = BagWriter(out, commit_every=2)
    for i in range(5):
        bag.write_image("/cam/image_raw", header(i), np.full((4, 4), i, np.uint8))
    with pytest.raises(BagWriteError, match="closing the bag failed: database or disk is full"):
        bag.close()
    assert bag.message_counts == {"/cam/image_raw": 5}  # close() committed the last one before it failed
    meta = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["message_count"] == 5 and meta["relative_file_paths"] == ["late_0.db3"]
    with Reader(out) as r:
        assert [int(np.frombuffer(raw, np.uint8)[-1]) for _, _, raw in r.messages()] == [0, 1, 2, 3, 4]


def test_lz4_and_unknown_compression_are_refused(tmp_path):
    with pytest.raises(BagWriteError, match="zstd-compressed MCAP chunks only"):
        BagWriter(tmp_path / "a.mcap", compression="lz4")
    with pytest.raises(BagWriteError, match="only available for MCAP"):
        BagWriter(tmp_path / "a.db3", compression="zstd")
    assert not (tmp_path / "a.mcap").exists() and not (tmp_path / "a.db3").exists()


FILL_SCRIPT = textwrap.dedent(
    """
    import resource, signal, sys
    import numpy as np
    from perception.io import BagWriter, BagWriteError
    from perception.frame import Header
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    n = 0
    try:
        with BagWriter(sys.argv[1], chunk_size=100_000) as bag:
            for i in range(400):
                bag.write_image("/cam/image_raw", Header(10**9 + i * 10**7, "cam"), np.full((100, 200), i % 256, np.uint8))
                n += 1
    except BagWriteError as err:
        print("FAILED", n, bag.message_counts["/cam/image_raw"], err)
    """
)


@pytest.mark.parametrize("suffix", [".mcap", ".db3"])
def test_real_file_size_limit_keeps_written_messages(tmp_path, suffix):
    """An OS-enforced limit (RLIMIT_FSIZE, EFBIG like a full disk) in a child process; no mocks."""
    out = tmp_path / f"limited{suffix}"
    run = subprocess.run([sys.executable, "-c", FILL_SCRIPT, str(out), str(3_000_000)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("FAILED"), run.stdout + run.stderr
    _, attempted, durable, *_ = run.stdout.split(maxsplit=3)
    assert 0 < int(durable) <= int(attempted) < 400
    with Reader(out) as r:  # closed properly: metadata.yaml and a finished storage file
        values = [int(np.frombuffer(raw, np.uint8)[-1]) for _, _, raw in r.messages()]
    assert values == [i % 256 for i in range(int(durable))]


KILL_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from perception.io import BagWriter
    from perception.frame import Header
    bag = BagWriter(sys.argv[1])
    rng = np.random.default_rng(0)
    for i in range(41):  # 41 x 300 kB: the last chunk / transaction (~4 MB, more than sqlite's cache) is pending
        image = rng.integers(0, 256, (480, 640), dtype=np.uint8)
        image[0, 0] = i
        bag.write_image("/cam/image_raw", Header(10**9 + i * 10**7, "cam"), image)
    print(bag.message_counts["/cam/image_raw"], flush=True)
    os._exit(1)  # killed: no close(), no __del__
    """
)


@pytest.mark.parametrize("suffix", [".mcap", ".db3"])
def test_killed_writer_leaves_its_durable_messages_readable(tmp_path, suffix):
    """A process killed mid-recording: no metadata.yaml, no MCAP summary, an sqlite3 hot journal; every message
    that was durable is read back (rosbags' sqlite3 reader opens the file immutable, ignoring the journal)."""
    from perception.sources.bag import BagSource

    out = tmp_path / f"killed{suffix}"
    run = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(out)], capture_output=True, text=True, timeout=60)
    durable = int(run.stdout)
    assert 0 < durable < 41 and not (out / "metadata.yaml").exists()
    with BagSource(out, mono=True) as source:
        assert [int(f.left[0, 0]) for f in source] == list(range(durable))
    if suffix == ".db3":
        db = sqlite3.connect(f"file:{out / 'killed_0.db3'}?immutable=1", uri=True)
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        db.close()
