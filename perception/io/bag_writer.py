"""Write everything the pipeline produces to a ROS 2 bag (rosbag2: a directory with metadata.yaml) without ROS.

rosbags (`rosbags.rosbag2.Writer`) writes every bag, MCAP or sqlite3; `perception.io.bag_storage` sets it up to
survive write failures. This module adds typed `write_*` methods, the path convention, QoS and error reporting.

Bag path convention (**contract** for `--out`)
----------------------------------------------
The path given IS the bag directory, whatever its name, so the same path is what `ros2 bag play`, `ros2 bag info`,
rosbags' `Reader` / `AnyReader` and `perception replay` take. Its suffix picks the storage when `storage` is None:

* `--out /tmp/drive.mcap` -> directory `/tmp/drive.mcap/` with `metadata.yaml` and `drive_0.mcap` (MCAP);
* `--out /tmp/drive.db3`  -> directory `/tmp/drive.db3/` with `metadata.yaml` and `drive_0.db3` (sqlite3);
* `--out /tmp/drive`      -> directory `/tmp/drive/` with `metadata.yaml` and `drive_0.mcap` (MCAP is the default).

The file inside follows `ros2 bag record`'s `<name>_0.<ext>` naming. An existing path is never overwritten unless
`overwrite=True`, and even then only a file or a directory that looks like a bag (metadata.yaml / storage files).

Write failures (disk full, quota, file size limit, I/O error)
-------------------------------------------------------------
Messages become durable a chunk (MCAP, `chunk_size` bytes) or a transaction (sqlite3, `commit_every` messages)
at a time, each written all or nothing. When a write fails the write_* call raises `BagWriteError`, the bag takes
no more messages, and what was not durable yet (at most that one chunk / transaction) is dropped; `close()` --
called by `__exit__` even when an exception is propagating -- finishes the storage file (MCAP summary + footer,
sqlite3 metadata row) and writes metadata.yaml for exactly the durable messages (`message_counts`). If the
MCAP summary no longer fits, the file ends after its last complete chunk without a footer: rosbags and
`ros2 bag play` then refuse it, `perception.sources.BagSource` (and `mcap recover`) read every durable message.
A bag directory whose metadata.yaml could not be written is read by BagSource too. When closing itself fails
(the last chunk or the summary does not fit), `close()` raises BagWriteError after finishing what it can (in
`__exit__` with an exception already propagating it is logged instead). The precise mechanism and the cases it
does not cover are in `perception.io.bag_storage`.

QoS: each topic records `offered_qos_profiles` (rules in `perception.io.qos`) so `ros2 bag play` republishes with
the right QoS; override per topic with `qos_overrides`.
"""
from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import WriterError
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

from perception.camera.model import CameraInfo
from perception.errors import PerceptionError
from perception.frame import Header, Pose
from perception.io import messages as M
from perception.io.bag_storage import MAX_CHUNK, METADATA_VERSION, WRITE_ERRORS, Rosbag2Writer, storage_file
from perception.io.qos import (  # the QoS names were first defined here: re-exported
    LATCHED_QOS, NAMED_QOS, RELIABLE_QOS, SENSOR_QOS, SENSOR_TYPES, TF_QOS, QosProfile, as_profile, dump_qos, qos_for,
)
from perception.io.typestore import type_hash

log = logging.getLogger("perception.io")

STORAGES = {"mcap": ".mcap", "sqlite3": ".db3"}
_STORAGE_ALIASES = {"mcap": "mcap", "sqlite3": "sqlite3", "sqlite": "sqlite3", "db3": "sqlite3"}
_BAG_FILES = ("metadata.yaml",)
_BAG_SUFFIXES = (".mcap", ".db3", ".db3-journal", ".tmp")


class BagWriteError(PerceptionError):
    """A bag cannot be created or written (path exists, disk full, message does not fit its type)."""


def resolve_bag_path(path: str | os.PathLike, storage: str | None = None) -> tuple[Path, str, Path]:
    """(bag directory, storage, storage file) for an `--out` path; see the module doc for the convention."""
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    inferred = {".mcap": "mcap", ".db3": "sqlite3"}.get(suffix)
    if storage is None:
        storage = inferred or "mcap"
    key = _STORAGE_ALIASES.get(str(storage).lower())
    if key is None:
        raise BagWriteError(f"unknown storage '{storage}'", subject=str(p), hint="use mcap or sqlite3")
    if inferred and inferred != key:
        raise BagWriteError(
            f"path suffix {suffix} says {inferred} but storage={storage}", subject=str(p),
            hint="make the suffix and the storage agree, or drop the suffix",
        )
    return p, key, storage_file(p, STORAGES[key])


class BagWriter:
    """A ROS 2 bag being written. Use as a context manager; see the module doc for paths, QoS and failures.

    >>> with BagWriter("/tmp/drive.mcap") as bag:                                  # doctest: +SKIP
    ...     bag.write_image("/stereo/left/image_rect", frame.header, frame.left)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        storage: str | None = None,
        *,
        overwrite: bool = False,
        compression: str | None = None,
        chunk_size: int = MAX_CHUNK,
        commit_every: int = 64,
        qos_overrides: Mapping[str, QosProfile | str] | None = None,
    ):
        """`storage`: "mcap" or "sqlite3" (None: from the path suffix, else mcap). `compression` (MCAP only):
        None or "zstd" per chunk (rosbags compresses with zstd only). `chunk_size` bytes are buffered per MCAP
        chunk (at most rosbags' 1 MiB); `commit_every` messages per sqlite3 transaction (or 4 MiB) -- at most that
        much is lost when writing fails or the process dies without closing the bag."""
        self.path, self.storage, self.file = resolve_bag_path(path, storage)
        if compression == "lz4":
            raise BagWriteError("rosbags writes zstd-compressed MCAP chunks only, not lz4", subject=str(self.path),
                                hint="use compression='zstd'")
        if compression not in (None, "", "zstd"):
            raise BagWriteError(f"unknown compression '{compression}'", subject=str(self.path), hint="use zstd")
        if compression and self.storage != "mcap":
            raise BagWriteError("compression is only available for MCAP", subject=str(self.path))
        self._qos_overrides = {t: as_profile(q) for t, q in (qos_overrides or {}).items()}
        self._connections: dict[tuple[str, str], Any] = {}
        self._closed = True  # until the storage is open
        self.error: BaseException | None = None
        self._prepare_directory(overwrite)
        self._bag = Rosbag2Writer(self.path, self.storage, chunk_size=chunk_size, commit_every=commit_every)
        if compression:
            self._bag.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        try:
            self._bag.open()
        except WriterError as err:  # someone created the path since _prepare_directory
            raise BagWriteError(f"cannot create the bag: {err}", subject=str(self.path)) from err
        except WRITE_ERRORS as err:
            shutil.rmtree(self.path, ignore_errors=True)  # rosbags created it a moment ago
            raise BagWriteError(f"cannot create the bag file: {err}", subject=str(self.file),
                                hint="check the folder is writable and has space") from err
        self._store = self._bag.storage
        assert self._store.path == self.file, (self._store.path, self.file)
        self._closed = False

    def _prepare_directory(self, overwrite: bool) -> None:
        """Refuse an existing path, or with overwrite=True remove it if it is a bag; rosbags creates the folder."""
        p = self.path
        if not (p.exists() or p.is_symlink()):
            return
        if not overwrite:
            raise BagWriteError("already exists", subject=str(p), hint="choose another output path or remove it")
        if p.is_dir() and not p.is_symlink():
            bagish = all(c.name in _BAG_FILES or c.name.endswith(_BAG_SUFFIXES) for c in p.iterdir())
            if not bagish:
                raise BagWriteError("exists and is not a bag directory; refusing to delete it", subject=str(p),
                                    hint="choose another output path")
            shutil.rmtree(p)
        else:
            p.unlink()

    # --- low level ---------------------------------------------------------------------------------------------
    def _connection(self, topic: str, msgtype: str, *, qos: QosProfile | None = None, msgdef: str | None = None,
                    digest: str | None = None, static: bool = False):
        key = (topic, msgtype)
        conn = self._connections.get(key)
        if conn is not None:
            return conn
        if not topic or not topic.strip("/") or "//" in topic:
            raise BagWriteError(f"invalid topic name '{topic}'", subject=str(self.path))
        if msgdef is None and msgtype not in M.typestore().types:
            raise BagWriteError(
                f"message type {msgtype} is unknown here", subject=topic,
                hint="pass msgdef= (the .msg text with its dependencies) and rihs01= when copying a foreign type",
            )
        if msgdef is not None and not digest:
            try:
                digest = type_hash(msgtype, msgdef)
            except ValueError as err:
                raise BagWriteError(str(err), subject=topic, hint="pass rihs01= (the type hash) as well") from err
        profile = self._qos_overrides.get(topic) or qos or qos_for(topic, msgtype, static=static)
        conn = self._guarded(lambda: self._bag.add_connection(
            topic, msgtype, typestore=M.typestore(), msgdef=msgdef, rihs01=digest,
            offered_qos_profiles=[profile.to_rosbags()],
        ))
        self._connections[key] = conn
        return conn

    def _guarded(self, action):
        if self._closed:
            raise BagWriteError("the bag is closed", subject=str(self.path))
        if self.error is not None:
            raise BagWriteError(f"an earlier write failed ({self.error}); the bag accepts no more messages",
                                subject=str(self.path))
        try:
            return action()
        except WRITE_ERRORS as err:
            self.error = err
            self._bag.discard_pending()
            raise BagWriteError(
                f"writing failed: {err}; what was written before stays readable", subject=str(self.file),
                hint="free disk space or choose another output path",
            ) from err

    def write_raw(self, topic: str, msgtype: str, timestamp_ns: int, rawdata: bytes, *, msgdef: str | None = None,
                  rihs01: str | None = None, qos: QosProfile | str | None = None) -> None:
        """Write already serialised CDR data (e.g. an input topic copied through). Types the built-in typestore
        does not know need `msgdef` (rosbag2 message definition text); `rihs01` (type hash) is computed from it
        when not given."""
        conn = self._connection(topic, msgtype, qos=None if qos is None else as_profile(qos), msgdef=msgdef,
                                digest=rihs01)
        self._guarded(lambda: self._bag.write(conn, int(timestamp_ns), rawdata))

    def write_message(self, topic: str, msg: Any, timestamp_ns: int | None = None, *, static: bool = False) -> None:
        """Write a rosbags message object of the shared typestore; bag time = its header stamp unless given."""
        msgtype = msg.__msgtype__
        if timestamp_ns is None:
            header = getattr(msg, "header", None)
            if header is None:
                raise BagWriteError(f"{msgtype} has no header; pass timestamp_ns", subject=topic)
            timestamp_ns = M.stamp_ns(header.stamp)
        try:
            raw = M.serialize(msg, msgtype)
        except Exception as err:  # noqa: BLE001 - rosbags raises several kinds for a malformed message
            raise BagWriteError(f"cannot serialise {msgtype}: {err}", subject=topic) from err
        conn = self._connection(topic, msgtype, static=static)
        self._guarded(lambda: self._bag.write(conn, int(timestamp_ns), raw))

    # --- typed writers -----------------------------------------------------------------------------------------
    def write_image(self, topic: str, header: Header, image: np.ndarray, encoding: str | None = None, *,
                    timestamp_ns: int | None = None) -> None:
        """sensor_msgs/Image; encoding inferred from the array when None (uint8 HxW mono8, uint8 HxWx3 bgr8,
        uint8 HxWx4 bgra8, uint16 mono16, float32 32FC1); an explicit encoding takes the array in its layout."""
        self.write_message(topic, M.image_to_msg(header, image, encoding, topic=topic), _ts(header, timestamp_ns))

    def write_compressed_image(self, topic: str, header: Header, image: np.ndarray, fmt: str = "jpeg", *,
                               quality: int = 95, timestamp_ns: int | None = None) -> None:
        """sensor_msgs/CompressedImage (jpeg or png) of a BGR or mono uint8 image (png also uint16)."""
        self.write_message(topic, M.compressed_to_msg(header, image, fmt, quality=quality, topic=topic),
                           _ts(header, timestamp_ns))

    def write_camera_info(self, topic: str, header: Header, info: CameraInfo, *, timestamp_ns: int | None = None) -> None:
        self.write_message(topic, M.camera_info_to_msg(header, info), _ts(header, timestamp_ns))

    def write_pose(self, topic: str, header: Header, pose: Pose, *, timestamp_ns: int | None = None) -> None:
        """geometry_msgs/PoseStamped (header.frame_id = the frame the pose is in)."""
        self.write_message(topic, M.pose_to_msg(header, pose), _ts(header, timestamp_ns))

    def write_odometry(self, topic: str, header: Header, pose: Pose, *, timestamp_ns: int | None = None) -> None:
        """nav_msgs/Odometry (child_frame_id = pose.child_frame; zero twist)."""
        self.write_message(topic, M.odometry_to_msg(header, pose), _ts(header, timestamp_ns))

    def write_transforms(self, topic: str, header: Header, transforms: Iterable[Pose], static: bool = False, *,
                         timestamp_ns: int | None = None) -> None:
        """tf2_msgs/TFMessage of frame <- child_frame transforms; static=True (or /tf_static) records it latched."""
        self.write_message(topic, M.transforms_to_msg(header, transforms), _ts(header, timestamp_ns), static=static)

    def write_string(self, topic: str, header: Header, text: str, *, timestamp_ns: int | None = None) -> None:
        self.write_message(topic, M.string_to_msg(text), _ts(header, timestamp_ns))

    def write_occupancy_grid(self, topic: str, header: Header, data: np.ndarray, resolution: float,
                             origin_xy_yaw: tuple[float, float, float], *, timestamp_ns: int | None = None) -> None:
        """nav_msgs/OccupancyGrid from int8 HxW (0..100, -1 unknown; row = y), cell size (m), origin (x, y, yaw)."""
        self.write_message(topic, M.occupancy_grid_to_msg(header, data, resolution, origin_xy_yaw),
                           _ts(header, timestamp_ns))

    def write_disparity(self, topic: str, header: Header, disparity: np.ndarray, f: float, baseline: float,
                        min_d: float, max_d: float, *, delta_d: float = 1 / 16, timestamp_ns: int | None = None) -> None:
        """stereo_msgs/DisparityImage (float32 pixels; f in pixels, baseline in metres)."""
        self.write_message(topic, M.disparity_to_msg(header, disparity, f, baseline, min_d, max_d, delta_d),
                           _ts(header, timestamp_ns))

    def write_detections(self, topic: str, header: Header, detections: Iterable[Any], *,
                         timestamp_ns: int | None = None) -> None:
        """vision_msgs/Detection2DArray from perception.io.Detection2D (or objects `as_detection2d` accepts)."""
        self.write_message(topic, M.detections_to_msg(header, detections), _ts(header, timestamp_ns))

    def write_detections3d(self, topic: str, header: Header, detections: Iterable[M.Detection3D], *,
                           timestamp_ns: int | None = None) -> None:
        self.write_message(topic, M.detections3d_to_msg(header, detections), _ts(header, timestamp_ns))

    def write_diagnostics(self, topic: str, header: Header, statuses: M.DiagnosticStatus | Iterable[M.DiagnosticStatus],
                          *, timestamp_ns: int | None = None) -> None:
        """diagnostic_msgs/DiagnosticArray (usually on /diagnostics)."""
        self.write_message(topic, M.diagnostics_to_msg(header, statuses), _ts(header, timestamp_ns))

    # --- closing -------------------------------------------------------------------------------------------------
    @property
    def message_counts(self) -> dict[str, int]:
        """Durably written messages per topic (pending ones are counted once flushed)."""
        out: Counter = Counter()
        for conn in self._connections.values():
            out[conn.topic] += self._store.durable.get(conn.id, 0)
        return dict(out)

    def flush(self) -> None:
        """Make everything written so far durable (one MCAP chunk / one sqlite3 commit)."""
        self._guarded(self._store.flush)

    def close(self) -> None:
        """Make the pending messages durable, finish the storage file and write metadata.yaml. Safe to call twice.
        Raises BagWriteError when that fails and no earlier BagWriteError said so; what is durable stays readable."""
        if self._closed:
            return
        self._closed = True
        failure: BaseException | None = None
        if self.error is None:
            try:
                self._store.flush()
            except WRITE_ERRORS as err:
                failure = err
                self._bag.discard_pending()
        try:
            self._bag.finish()
        except (*WRITE_ERRORS, WriterError) as err:
            failure = failure or err
        if failure is None:
            return
        log.error("%s: could not finish the bag (%s); the %d messages written before stay readable", self.path,
                  failure, sum(self.message_counts.values()))
        if self.error is None:
            self.error = failure
            raise BagWriteError(
                f"closing the bag failed: {failure}; what was written before stays readable", subject=str(self.file),
                hint="free disk space or choose another output path",
            ) from failure

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            if exc_type is None:
                raise
            log.exception("closing %s after an error", self.path)

    def __del__(self) -> None:  # a bag left open by a crashed caller still gets its summary
        try:
            if not getattr(self, "_closed", True):
                self.close()
        except Exception:  # noqa: BLE001
            pass


def _ts(header: Header, timestamp_ns: int | None) -> int:
    return int(header.stamp_ns if timestamp_ns is None else timestamp_ns)


__all__ = [
    "BagWriteError", "BagWriter", "LATCHED_QOS", "METADATA_VERSION", "NAMED_QOS", "QosProfile", "RELIABLE_QOS",
    "SENSOR_QOS", "SENSOR_TYPES", "STORAGES", "TF_QOS", "dump_qos", "qos_for", "resolve_bag_path",
]
