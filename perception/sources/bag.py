"""Frames from a ROS 2 bag: rosbag2 directories (metadata.yaml + MCAP or sqlite3) and bare .mcap / .db3 files.

Topics: given explicitly, or auto-detected. Left/right image topics are the Image / CompressedImage topics whose
names contain `left` / `right` (or `cam0` / `cam1`), rectified ones (`image_rect*`) preferred over raw ones, and
the right topic is the left one with left -> right when the bag has it. With a single image topic (or no pair)
the source is mono. Camera info comes from `<image namespace>/camera_info` unless a topic or a calibration YAML
(`CameraInfo.from_yaml`, which then wins over the bag) is given. `rectified` is taken from the topic name
(`image_rect` vs `image_raw`) unless given, else from the camera model (no distortion, R = I).

Each frame: stamp and frame_id = the LEFT image header; left/right images as the pipeline takes them
(`perception.io.messages.to_pipeline`: BGR uint8 or mono uint8; mono16 stays uint16 unless `mono16_scale`).
Frames come in stamp order; pairs are matched by header stamp within `max_pair_dt` seconds (`StereoSync`).

Bad input never ends the iteration: the frame is skipped with a reason naming the topic and stamp, counted in
`self.stats` (`stats.summary()` says how many and why) and the next frame follows. A truncated MCAP file (a
recording cut off by a crash or a full disk) is read up to its last complete chunk; the frames lost with the tail
are counted when metadata.yaml says how many there were. A bag that cannot be opened at all raises SourceError.
"""
from __future__ import annotations

import bisect
import logging
import mmap
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from perception.camera.model import CameraInfo
from perception.errors import InputError, PerceptionError, SourceError
from perception.frame import Frame, Header, Pose
from perception.io import messages as M
from perception.sources.base import FrameSource, SourceStats
from perception.sources.sync import StereoSync, SyncEvent

log = logging.getLogger("perception.sources")

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
OPEN_HINT = (
    "pass a rosbag2 directory (with metadata.yaml), an .mcap or a .db3 file; "
    "check with `ros2 bag info PATH`; a damaged MCAP can be repaired with `mcap recover`"
)


# --------------------------------------------------------------------------------------------------------------
# Reading raw messages (rosbags, with a fallback for truncated MCAP files)
# --------------------------------------------------------------------------------------------------------------
@dataclass
class TopicInfo:
    """A topic of the bag: its type(s) and message count; msgdef/rihs01 let a writer copy it through."""

    name: str
    msgtype: str
    count: int
    msgdef: str = ""
    rihs01: str = ""


class _Reader:
    topics: dict[str, TopicInfo]
    truncated: str = ""  # why the bag was read in salvage mode ("" when it was fine)
    expected: dict[str, int] | None = None  # message counts metadata.yaml promised, when salvaging

    def messages(self, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _RosbagsReader(_Reader):
    def __init__(self, path: Path):
        from rosbags.rosbag2 import Reader

        self.reader = Reader(path)
        self.reader.open()
        self.topics = {}
        for c in self.reader.connections:
            prev = self.topics.get(c.topic)
            msgdef = getattr(c.msgdef, "data", "") or ""
            if prev is None:
                self.topics[c.topic] = TopicInfo(c.topic, c.msgtype, int(c.msgcount), msgdef, c.digest or "")
            else:
                prev.count += int(c.msgcount)
                if c.msgtype not in prev.msgtype.split("|"):
                    prev.msgtype += "|" + c.msgtype

    def messages(self, topics: set[str]):
        conns = [c for c in self.reader.connections if c.topic in topics]
        if not conns:
            return
        for conn, ts, raw in self.reader.messages(connections=conns):
            yield conn.topic, conn.msgtype, ts, raw

    def close(self) -> None:
        try:
            self.reader.close()
        except Exception:  # noqa: BLE001
            pass


def _u(fmt: str, buf: bytes, off: int) -> tuple[Any, int]:
    size = struct.calcsize(fmt)
    if off + size > len(buf):
        raise ValueError("record ends early")
    return struct.unpack_from(fmt, buf, off), off + size


def _string(buf: bytes, off: int) -> tuple[str, int]:
    (n,), off = _u("<I", buf, off)
    if off + n > len(buf):
        raise ValueError("string ends early")
    return bytes(buf[off: off + n]).decode("utf-8", "replace"), off + n


class _McapSalvage(_Reader):
    """Linear scan of an MCAP file without (or with a damaged) summary: every complete record up to the cut."""

    MAGIC = b"\x89MCAP0\r\n"

    def __init__(self, paths: list[Path], reason: str, expected: dict[str, int] | None):
        self.paths = paths
        self.truncated = reason
        self.expected = expected
        self.topics = {}
        self.lost_records = 0
        for _topic, _type, _ts, _raw in self._scan(None, collect=True):
            pass

    def _records(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        off = 0
        while off + 9 <= len(data):
            op, length = struct.unpack_from("<BQ", data, off)
            if off + 9 + length > len(data):
                self.lost_records += 1
                return
            yield op, data[off + 9: off + 9 + length]
            off += 9 + length

    def _scan(self, topics: set[str] | None, collect: bool = False):
        for path in self.paths:
            with open(path, "rb") as f:
                try:
                    mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                except ValueError:  # empty file
                    mapped = None
            if mapped is None or mapped[:8] != self.MAGIC:
                raise SourceError("not an MCAP file (bad magic)", subject=str(path), hint=OPEN_HINT)
            data = memoryview(mapped)
            schemas: dict[int, tuple[str, str]] = {}
            channels: dict[int, tuple[str, str]] = {}
            for op, rec in self._records(data[8:]):
                if op in (0x0F, 0x02):  # data end / footer: the rest is the summary
                    break
                items = self._chunk(rec) if op == 0x06 else [(op, rec)]
                if items is None:
                    self.lost_records += 1
                    continue
                msgs = []
                for sub_op, sub in items:
                    try:
                        if sub_op == 0x03:
                            (sid,), o = _u("<H", sub, 0)
                            name, o = _string(sub, o)
                            _enc, o = _string(sub, o)
                            (n,), o = _u("<I", sub, o)
                            schemas[sid] = (name, bytes(sub[o: o + n]).decode("utf-8", "replace"))
                        elif sub_op == 0x04:
                            (cid, sid), o = _u("<HH", sub, 0)
                            topic, o = _string(sub, o)
                            channels[cid] = (topic, schemas.get(sid, ("", ""))[0])
                            if collect and topic not in self.topics:
                                name, text = schemas.get(sid, ("", ""))
                                self.topics[topic] = TopicInfo(topic, name, 0, text, "")
                        elif sub_op == 0x05:
                            (cid, _seq, log_time, _pub), o = _u("<HIQQ", sub, 0)
                            if cid in channels:
                                msgs.append((log_time, cid, sub[o:]))
                    except ValueError:
                        self.lost_records += 1
                msgs.sort(key=lambda m: m[0])
                for log_time, cid, raw in msgs:
                    topic, msgtype = channels[cid]
                    if collect:
                        self.topics[topic].count += 1
                    if topics is None or topic in topics:
                        yield topic, msgtype, log_time, bytes(raw)

    def _chunk(self, rec: bytes):
        try:
            (_s, _e, size, _crc), o = _u("<QQQI", rec, 0)
            comp, o = _string(rec, o)
            (n,), o = _u("<Q", rec, o)
            payload = bytes(rec[o: o + n])
            if len(payload) != n:
                return None
            if comp == "zstd":
                from perception.io.bag_writer import zstd_codec

                payload = zstd_codec()[1](payload)
            elif comp == "lz4":
                import lz4.frame

                payload = lz4.frame.decompress(payload)
            elif comp:
                return None
            return list(self._records(payload))
        except Exception:  # noqa: BLE001 - a damaged chunk is skipped, not fatal
            return None

    def messages(self, topics: set[str]):
        yield from self._scan(topics)


class _SqliteSalvage(_Reader):
    """Row-by-row read of a damaged rosbag2 sqlite3 file: every message row that can still be read."""

    MAX_FAILURES = 200

    def __init__(self, paths: list[Path], reason: str, expected: dict[str, int] | None):
        import sqlite3

        self.truncated = reason
        self.expected = expected
        self.lost_records = 0
        self.conns = []
        self.topics = {}
        self.ids: dict[int, tuple[str, str]] = {}
        self.tmpdir: Path | None = None
        for path in paths:
            conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
            try:
                rows = conn.execute("SELECT id, name, type FROM topics").fetchall()
            except sqlite3.DatabaseError:
                conn.close()
                conn = sqlite3.connect(f"file:{self._patched_copy(path)}?immutable=1", uri=True)
                rows = conn.execute("SELECT id, name, type FROM topics").fetchall()
            self.conns.append(conn)
            for tid, name, msgtype in rows:
                self.ids[tid] = (name, msgtype)
                self.topics.setdefault(name, TopicInfo(name, msgtype, 0))

    def _patched_copy(self, path: Path) -> Path:
        """A copy of a cut-off database whose header page count matches what is left, so sqlite opens it
        (the missing pages then fail row by row instead of the whole file)."""
        import shutil
        import tempfile

        if self.tmpdir is None:
            self.tmpdir = Path(tempfile.mkdtemp(prefix="perception-salvage-"))
        copy = self.tmpdir / path.name
        shutil.copyfile(path, copy)
        with open(copy, "r+b") as f:
            header = f.read(100)
            if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
                raise SourceError("not an sqlite3 file", subject=str(path), hint=OPEN_HINT)
            page = struct.unpack(">H", header[16:18])[0]
            page = 65536 if page == 1 else page
            pages = copy.stat().st_size // page
            f.truncate(pages * page)
            f.seek(28)
            f.write(struct.pack(">I", pages))
        return copy

    def messages(self, topics: set[str]):
        import sqlite3

        wanted = [tid for tid, (name, _) in self.ids.items() if name in topics]
        if not wanted:
            return
        marks = ",".join("?" for _ in wanted)
        for conn in self.conns:
            last, failures = 0, 0
            while failures < self.MAX_FAILURES:
                query = (f"SELECT id, topic_id, timestamp, data FROM messages WHERE id > ? AND topic_id IN ({marks})"
                         " ORDER BY id")
                try:
                    for rid, tid, ts, data in conn.execute(query, (last, *wanted)):
                        last, failures = rid, 0
                        name, msgtype = self.ids[tid]
                        yield name, msgtype, ts, bytes(data)
                    break
                except sqlite3.DatabaseError:
                    self.lost_records += 1
                    failures += 1
                    last += 1

    def close(self) -> None:
        import shutil

        for conn in self.conns:
            conn.close()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


def _storage_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".mcap", ".db3") and p.is_file())


def open_bag(path: str | Path) -> _Reader:
    """A raw message reader for a bag path (directory, .mcap, .db3), salvaging truncated MCAP files."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError("does not exist", subject=str(path), hint=OPEN_HINT)
    expected: dict[str, int] | None = None
    files: list[Path]
    if path.is_dir():
        meta = path / "metadata.yaml"
        if meta.is_file():
            try:
                return _RosbagsReader(path)
            except Exception as err:  # noqa: BLE001 - decide below whether salvage is possible
                first_error = err
            try:
                info = yaml.safe_load(meta.read_text())["rosbag2_bagfile_information"]
                files = [path / Path(p).name for p in info.get("relative_file_paths", [])] or _storage_files(path)
                expected = {t["topic_metadata"]["name"]: int(t["message_count"]) for t in info["topics_with_message_count"]}
            except Exception:  # noqa: BLE001
                files = _storage_files(path)
        else:
            files = _storage_files(path)
            if not files:
                raise SourceError("is a folder without metadata.yaml or .mcap/.db3 files", subject=str(path),
                                  hint=OPEN_HINT)
            if len(files) == 1:
                return open_bag(files[0])
            first_error = SourceError("several storage files and no metadata.yaml", subject=str(path))
    elif path.suffix in (".mcap", ".db3"):
        try:
            return _RosbagsReader(path)
        except Exception as err:  # noqa: BLE001
            first_error = err
            files = [path]
    elif path.suffix == ".bag":
        raise SourceError("ROS 1 bags are not supported", subject=str(path),
                          hint="convert it with `rosbags-convert --src IN.bag --dst OUT` first")
    else:
        raise SourceError("not a bag (expected a directory with metadata.yaml, .mcap or .db3)", subject=str(path),
                          hint=OPEN_HINT)
    files = [f for f in files if f.is_file()]
    kinds = {f.suffix for f in files}
    if len(kinds) == 1:
        salvage = _McapSalvage if kinds == {".mcap"} else _SqliteSalvage
        try:
            reader = salvage(files, f"{first_error}", expected)
        except SourceError:
            raise
        except Exception as err:  # noqa: BLE001
            raise SourceError(f"cannot be read: {first_error}; salvage failed too: {err}", subject=str(path),
                              hint=OPEN_HINT) from err
        if reader.topics:
            log.warning("%s: %s; reading what is still readable", path, first_error)
            return reader
    raise SourceError(f"cannot be opened: {first_error}", subject=str(path), hint=OPEN_HINT)


# --------------------------------------------------------------------------------------------------------------
# Topic selection
# --------------------------------------------------------------------------------------------------------------
def _types(info: TopicInfo) -> list[str]:
    return info.msgtype.split("|")


def _is_image_topic(info: TopicInfo) -> bool:
    if any(t in IMAGE_TYPES for t in _types(info)):
        return True
    name = info.name.lower()
    return "image" in name.rsplit("/", 2)[-1] or name.endswith(("/image", "/compressed"))


def _rank(name: str) -> tuple:
    n = name.lower()
    return ("rect" not in n, n.endswith("/compressed"), "color" in n, len(n), n)


_SIDES = (("left", "right"), ("cam0", "cam1"))


def _namespace(image_topic: str) -> str:
    parts = image_topic.rstrip("/").split("/")
    if parts[-1] in ("compressed", "compressedDepth", "theora"):
        parts = parts[:-1]
    return "/".join(parts[:-1])


def detect_topics(topics: dict[str, TopicInfo]) -> tuple[str | None, str | None]:
    """(left, right) image topics of a bag by name; right None for mono; (None, None) when no image topic."""
    images = sorted((t for t, info in topics.items() if _is_image_topic(info)), key=_rank)
    for a, b in _SIDES:
        lefts = [t for t in images if a in t.lower()]
        for left in lefts:
            right = left.replace(a, b).replace(a.capitalize(), b.capitalize()).replace(a.upper(), b.upper())
            if right in topics:
                return left, right
        rights = [t for t in images if b in t.lower()]
        if lefts and rights:
            return lefts[0], rights[0]
    typed = [t for t in images if any(x in IMAGE_TYPES for x in _types(topics[t]))]
    if typed:
        if len(typed) > 1:
            log.warning("several image topics and no left/right pair; using %s (others: %s)", typed[0], ", ".join(typed[1:]))
        return typed[0], None
    return (images[0], None) if images else (None, None)


# --------------------------------------------------------------------------------------------------------------
# The source
# --------------------------------------------------------------------------------------------------------------
@dataclass
class _Img:
    topic: str
    stamp_ns: int
    frame_id: str = ""
    image: np.ndarray | None = None
    reason: str = ""
    detail: str = ""


@dataclass
class _BadInfo:
    reason: str
    detail: str


def _raw_stamp(raw: bytes, fallback: int) -> int:
    """Header stamp straight from CDR bytes (every stamped message starts with its header)."""
    try:
        endian = "<" if raw[1] & 1 else ">"
        sec, nsec = struct.unpack_from(endian + "iI", raw, 4)
        if 0 <= nsec < 1_000_000_000:
            return sec * 1_000_000_000 + nsec
    except (IndexError, struct.error):
        pass
    return fallback


class BagSource(FrameSource):
    """Iterate over the (stereo or mono) frames of a ROS 2 bag; see the module doc."""

    def __init__(
        self,
        path: str | Path,
        left_topic: str | None = None,
        right_topic: str | None = None,
        left_info_topic: str | None = None,
        right_info_topic: str | None = None,
        left_calibration: str | Path | CameraInfo | None = None,
        right_calibration: str | Path | CameraInfo | None = None,
        pose_topic: str | None = None,
        max_pair_dt: float = 0.005,
        rectified: bool | None = None,
        *,
        mono: bool = False,
        require_info: bool | None = None,
        mono16_scale: float | None = None,
        max_pose_dt: float = 0.1,
        reorder_s: float = 0.25,
        queue_size: int = 30,
    ) -> None:
        """`mono=True` reads only the left (or only) image topic. `require_info` (default: True for stereo, False
        for mono): skip frames without a camera model. `max_pose_dt`: a pose within this many seconds of the frame
        is attached. `reorder_s`: how far stamps may arrive out of order (the synchroniser's hold)."""
        super().__init__()
        self.path = Path(path)
        if max_pair_dt < 0:
            raise SourceError(f"max_pair_dt={max_pair_dt} is negative", subject=str(path))
        self.max_pair_dt = float(max_pair_dt)
        self.mono16_scale = mono16_scale
        self.max_pose_dt = float(max_pose_dt)
        self.reorder_s = float(reorder_s)
        self.queue_size = int(queue_size)
        self._reader = open_bag(self.path)
        self.topics: dict[str, TopicInfo] = dict(self._reader.topics)
        try:
            self._select_topics(left_topic, right_topic, left_info_topic, right_info_topic, pose_topic, mono)
            self.left_calibration = self._calibration(left_calibration)
            self.right_calibration = self._calibration(right_calibration)
        except BaseException:
            self._reader.close()
            raise
        self.require_info = self.is_stereo if require_info is None else bool(require_info)
        name = (self.left_topic or "").lower()
        if rectified is not None:
            self.rectified: bool | None = bool(rectified)
        elif "rect" in name:
            self.rectified = True
        elif "raw" in name:
            self.rectified = False
        else:
            self.rectified = None  # decided per frame from the camera model
        self._closed = False

    # --- setup ---------------------------------------------------------------------------------------------------
    def _need(self, topic: str, what: str) -> str:
        if topic not in self.topics:
            images = [t for t, i in self.topics.items() if _is_image_topic(i)]
            raise SourceError(
                f"has no {what} topic '{topic}'", subject=str(self.path),
                hint=f"image topics in the bag: {', '.join(images) or 'none'}; all topics: {', '.join(self.topics)}",
            )
        return topic

    def _select_topics(self, left, right, left_info, right_info, pose, mono) -> None:
        if left is None:
            left_auto, right_auto = detect_topics(self.topics)
            if left_auto is None:
                raise SourceError(
                    "has no image topics (sensor_msgs/Image or CompressedImage)", subject=str(self.path),
                    hint=f"topics: {', '.join(f'{t} ({i.msgtype})' for t, i in self.topics.items()) or 'none'}",
                )
            left = left_auto
            if right is None and not mono:
                right = right_auto
        elif right is None and not mono:  # a given left topic brings its right twin along when the bag has one
            for a, b in _SIDES:
                twin = left.replace(a, b)
                if a in left and twin in self.topics:
                    right = twin
                    break
        self.left_topic = self._need(left, "left image")
        self.right_topic = None if mono or right is None else self._need(right, "right image")
        self.is_stereo = self.right_topic is not None

        def info_for(image_topic: str | None, given: str | None) -> str | None:
            if given is not None:
                return self._need(given, "camera_info")
            if image_topic is None:
                return None
            candidate = _namespace(image_topic) + "/camera_info"
            return candidate if candidate in self.topics else None

        self.left_info_topic = info_for(self.left_topic, left_info)
        self.right_info_topic = info_for(self.right_topic, right_info) if self.is_stereo else None
        self.pose_topic = None if pose is None else self._need(pose, "pose")
        log.info(
            "%s: %s %s%s", self.path, "stereo" if self.is_stereo else "mono", self.left_topic,
            f" + {self.right_topic}" if self.right_topic else "",
        )

    def _calibration(self, value) -> CameraInfo | None:
        if value is None or isinstance(value, CameraInfo):
            return value
        return CameraInfo.from_yaml(value)

    def describe(self) -> str:
        parts = [f"left {self.left_topic}"]
        if self.right_topic:
            parts.append(f"right {self.right_topic}")
        for side, topic, cal in (("left", self.left_info_topic, self.left_calibration),
                                 ("right", self.right_info_topic, self.right_calibration)):
            if side == "right" and not self.is_stereo:
                continue
            parts.append(f"{side} camera_info {'from YAML' if cal is not None else topic or 'missing'}")
        return f"{self.path}: " + ", ".join(parts)

    # --- decoding ------------------------------------------------------------------------------------------------
    def _image(self, topic: str, msgtype: str, ts: int, raw: bytes) -> _Img:
        stamp = _raw_stamp(raw, ts)
        if msgtype not in IMAGE_TYPES:
            return _Img(topic, stamp, reason=f"unsupported message type on {topic}",
                        detail=f"stamp {stamp}: {msgtype} is not sensor_msgs/msg/Image or CompressedImage")
        try:
            msg = M.deserialize(raw, msgtype)
        except Exception as err:  # noqa: BLE001 - rosbags raises various errors for garbage bytes
            return _Img(topic, stamp, reason=f"undecodable message on {topic}", detail=f"stamp {stamp}: {err!r}")
        stamp = M.stamp_ns(msg.header.stamp)
        try:
            if msgtype == IMAGE_TYPES[0]:
                native = M.image_from_msg(msg, topic=topic)
                image = M.to_pipeline(native, str(msg.encoding), topic=topic, mono16_scale=self.mono16_scale)
            else:
                image = M.compressed_from_msg(msg, topic=topic)
                if image.dtype == np.uint16 and self.mono16_scale is not None:
                    image = M.to_pipeline(image, "mono16", topic=topic, mono16_scale=self.mono16_scale)
        except PerceptionError as err:
            return _Img(topic, stamp, reason=f"invalid image on {topic}", detail=f"stamp {stamp}: {err.message}")
        return _Img(topic, stamp, str(msg.header.frame_id), image)

    def _info(self, topic: str, msgtype: str, ts: int, raw: bytes) -> tuple[int, CameraInfo | _BadInfo]:
        stamp = _raw_stamp(raw, ts)
        if msgtype != INFO_TYPE:
            return stamp, _BadInfo(f"unsupported message type on {topic}", f"stamp {stamp}: {msgtype} is not CameraInfo")
        try:
            msg = M.deserialize(raw, msgtype)
        except Exception as err:  # noqa: BLE001
            return stamp, _BadInfo(f"undecodable message on {topic}", f"stamp {stamp}: {err!r}")
        stamp = M.stamp_ns(msg.header.stamp)
        try:
            return stamp, M.camera_info_from_msg(msg, topic=topic)
        except InputError as err:
            return stamp, _BadInfo(f"invalid camera_info on {topic}", f"stamp {stamp}: {err.message}")

    def _pose(self, topic: str, msgtype: str, ts: int, raw: bytes) -> tuple[int, Pose] | None:
        if msgtype not in M.POSE_TYPES:
            self.stats.skip(f"unsupported pose type on {topic}", f"{msgtype}; use PoseStamped or Odometry")
            return None
        try:
            msg = M.deserialize(raw, msgtype)
            return M.stamp_ns(msg.header.stamp), M.pose_from_msg(msg, topic=topic)
        except Exception as err:  # noqa: BLE001
            self.stats.skip(f"invalid pose on {topic}", f"{err}")
            return None

    # --- iteration -----------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        if self._closed:
            raise SourceError("the bag source is closed", subject=str(self.path))
        self.stats = SourceStats()  # each pass over the bag counts afresh
        roles: dict[str, str] = {self.left_topic: "left"}
        if self.right_topic:
            roles[self.right_topic] = "right"
        if self.left_info_topic and self.left_calibration is None:
            roles.setdefault(self.left_info_topic, "left_info")
        if self.right_info_topic and self.right_calibration is None:
            roles.setdefault(self.right_info_topic, "right_info")
        if self.pose_topic:
            roles.setdefault(self.pose_topic, "pose")
        sync = StereoSync(int(round(self.max_pair_dt * 1e9)), self.queue_size, int(self.reorder_s * 1e9),
                          stereo=self.is_stereo)
        self._poses: list[tuple[int, Pose]] = []
        self._index = 0
        seen = Counter()
        try:
            for topic, msgtype, ts, raw in self._reader.messages(set(roles)):
                role = roles[topic]
                seen[topic] += 1
                if role in ("left", "right"):
                    item = self._image(topic, msgtype, ts, raw)
                    if role == "left":
                        self.stats.frames_in += 1
                    events = sync.add(role, item.stamp_ns, item)
                elif role.endswith("_info"):
                    stamp, info = self._info(topic, msgtype, ts, raw)
                    events = sync.add(role, stamp, info)
                else:
                    pose = self._pose(topic, msgtype, ts, raw)
                    if pose is not None:
                        bisect.insort(self._poses, pose, key=lambda p: p[0])
                        del self._poses[:-400]
                    events = []
                for event in events:
                    yield from self._emit(event)
        except PerceptionError:
            raise
        except Exception as err:  # noqa: BLE001 - a storage error mid-file ends reading, not the program
            self.stats.skip("unreadable bag data", f"{self.path}: {err!r}; frames after this point are lost")
        for event in sync.flush():
            yield from self._emit(event)
        self._account_truncation(seen)
        log.info("%s: %s", self.path, self.stats.summary())

    def _account_truncation(self, seen: Counter) -> None:
        reader = self._reader
        if not reader.truncated:
            return
        expected = (reader.expected or {}).get(self.left_topic)
        lost = (expected - seen[self.left_topic]) if expected is not None else 0
        detail = f"{self.path}: {reader.truncated}; read what was still readable"
        if lost > 0:
            self.stats.frames_in += lost
            for _ in range(lost):
                self.stats.skip("lost in the truncated end of the bag", detail)
        elif getattr(reader, "lost_records", 0):
            # how many frames were in the cut-off tail is unknown without metadata.yaml: count the event once
            self.stats.skip("truncated bag (end of file lost)", detail)

    def _info_for(self, side: str, info: Any, image: np.ndarray, stamp: int) -> tuple[CameraInfo | None, str, str]:
        """(camera info, skip reason, detail)."""
        cal = self.left_calibration if side == "left" else self.right_calibration
        topic = self.left_info_topic if side == "left" else self.right_info_topic
        image_topic = self.left_topic if side == "left" else self.right_topic
        if cal is not None:
            info = cal
        if isinstance(info, _BadInfo):
            return None, info.reason, info.detail
        if info is None:
            if not self.require_info:
                return None, "", ""
            where = f"no message on {topic} yet" if topic else f"the bag has no camera_info for {image_topic}"
            return None, f"missing camera_info for {side} camera", (
                f"{image_topic} stamp {stamp}: {where}; pass {side}_calibration=YAML (--calibration)"
            )
        h, w = image.shape[:2]
        if (info.width, info.height) != (w, h):
            return None, f"camera_info size differs from the image on {image_topic}", (
                f"stamp {stamp}: camera_info {info.width}x{info.height}, image {w}x{h}"
            )
        return info, "", ""

    def _emit(self, ev: SyncEvent) -> Iterator[Frame]:
        left: _Img | None = ev.left
        right: _Img | None = ev.right
        if ev.kind == "drop" and left is None:  # a right image with no left one: a frame without its left half
            self.stats.frames_in += 1
            if right is not None and right.reason:
                self.stats.skip(right.reason, right.detail)
            else:
                self.stats.skip(f"right image without a left image on {self.left_topic}",
                                f"{self.right_topic}: {ev.detail}")
            return
        for part in (left, right):
            if part is not None and part.reason:
                self.stats.skip(part.reason, part.detail)
                return
        if ev.kind == "drop":
            tol = self.max_pair_dt * 1e3
            if ev.reason == "stamps too far apart":
                self.stats.skip(f"stereo stamps more than {tol:g} ms apart",
                                f"{self.left_topic} stamp {ev.left_stamp_ns}: {ev.detail}")
            elif ev.reason == "no right image":
                self.stats.skip(f"no right image within {tol:g} ms", f"{self.right_topic}: {ev.detail}")
            else:
                self.stats.skip(f"stereo sync: {ev.reason}", f"{self.left_topic}: {ev.detail}")
            return
        assert left is not None and left.image is not None
        stamp = left.stamp_ns
        left_info, reason, detail = self._info_for("left", ev.left_info, left.image, stamp)
        if reason:
            self.stats.skip(reason, detail)
            return
        right_info = None
        if self.is_stereo:
            assert right is not None and right.image is not None
            if right.image.shape != left.image.shape:
                self.stats.skip(
                    "stereo image sizes differ",
                    f"stamp {stamp}: {self.left_topic} {left.image.shape}, {self.right_topic} {right.image.shape}",
                )
                return
            right_info, reason, detail = self._info_for("right", ev.right_info, right.image, right.stamp_ns)
            if reason:
                self.stats.skip(reason, detail)
                return
        rectified = self.rectified
        if rectified is None:
            rectified = left_info.is_rectified if left_info is not None else True
        frame = Frame(
            header=Header(stamp, left.frame_id),
            left=left.image,
            right=right.image if right is not None else None,
            left_info=left_info,
            right_info=right_info,
            rectified=rectified,
            pose=self._pose_at(stamp),
            index=self._index,
        )
        self._index += 1
        self.stats.used += 1
        yield frame

    def _pose_at(self, stamp: int) -> Pose | None:
        if not self._poses:
            return None
        i = bisect.bisect_left(self._poses, stamp, key=lambda p: p[0])
        cands = self._poses[max(0, i - 1): i + 1]
        best = min(cands, key=lambda p: abs(p[0] - stamp))
        return best[1] if abs(best[0] - stamp) <= self.max_pose_dt * 1e9 else None

    def close(self) -> None:
        if not getattr(self, "_closed", True):
            self._closed = True
            self._reader.close()


__all__ = ["BagSource", "TopicInfo", "detect_topics", "open_bag"]
