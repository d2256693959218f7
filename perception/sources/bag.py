"""Frames from a ROS 2 bag: rosbag2 directories (metadata.yaml + MCAP or sqlite3) and bare .mcap / .db3 files.

Opening the bag and choosing its topics is `perception.sources.bag_reader` (`open_bag`, `select_topics`): topics
are given explicitly or auto-detected (a left/right pair, else mono). Camera info comes from
`<image namespace>/camera_info` unless a topic or a calibration YAML (`CameraInfo.from_yaml`, which then wins
over the bag) is given. `rectified` is taken from the topic name (`image_rect` vs `image_raw`) unless given, else
from the camera model (no distortion, R = I).

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
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perception.camera.model import CameraInfo
from perception.errors import InputError, PerceptionError, SourceError
from perception.frame import Frame, Header, Pose
from perception.io import messages as M
from perception.sources.bag_reader import IMAGE_TYPES, TopicInfo, detect_topics, open_bag, select_topics
from perception.sources.base import FrameSource, SourceStats
from perception.sources.calibration import load_calibration
from perception.sources.sync import StereoSync, SyncEvent

log = logging.getLogger("perception.sources")

INFO_TYPE = "sensor_msgs/msg/CameraInfo"


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
            chosen = select_topics(self.topics, self.path, left_topic, right_topic, left_info_topic, right_info_topic,
                                   pose_topic, mono=mono)
            self.left_calibration = load_calibration(left_calibration)
            self.right_calibration = load_calibration(right_calibration)
        except BaseException:
            self._reader.close()
            raise
        self.left_topic, self.right_topic, self.left_info_topic, self.right_info_topic, self.pose_topic = chosen
        self.is_stereo = self.right_topic is not None
        log.info("%s: %s %s%s", self.path, "stereo" if self.is_stereo else "mono", self.left_topic,
                 f" + {self.right_topic}" if self.right_topic else "")
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


__all__ = ["BagSource", "TopicInfo", "detect_topics", "open_bag"]  # the last three: perception.sources.bag_reader