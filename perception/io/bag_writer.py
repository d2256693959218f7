"""Write everything the pipeline produces to a ROS 2 bag (rosbag2: a directory with metadata.yaml) without ROS.

Bag path convention (**contract** for `--out`)
----------------------------------------------
The path given IS the bag directory, whatever its name, so the same path is what `ros2 bag play`, `ros2 bag info`,
rosbags' `Reader` / `AnyReader` and `perception replay` take. Its suffix picks the storage when `storage` is None:

* `--out /tmp/drive.mcap` -> directory `/tmp/drive.mcap/` with `metadata.yaml` and `drive_0.mcap` (MCAP);
* `--out /tmp/drive.db3`  -> directory `/tmp/drive.db3/` with `metadata.yaml` and `drive_0.db3` (sqlite3);
* `--out /tmp/drive`      -> directory `/tmp/drive/` with `metadata.yaml` and `drive_0.mcap` (MCAP is the default).

The file inside follows `ros2 bag record`'s `<name>_0.<ext>` naming. An existing path is never overwritten unless
`overwrite=True`, and even then only a file or a directory that looks like a bag (metadata.yaml / storage files).

Robustness: messages are written in self-contained chunks (MCAP) or committed transactions (sqlite3). If a write
fails (disk full, quota, I/O error) the partial chunk is cut off again, the writer stops accepting messages
(`BagWriteError`) and `close()` -- called by `__exit__` even when an exception is propagating -- finishes the file
(MCAP summary + footer, sqlite3 commit) and writes metadata.yaml for what was durably written. If even that cannot
be written, the MCAP file still ends at a chunk boundary, which `perception.sources.BagSource` (and `mcap recover`)
read; the bag source also accepts a bag directory whose metadata.yaml is missing.

QoS: each topic records `offered_qos_profiles` so `ros2 bag play` republishes with the right QoS:
sensor data (Image, CompressedImage, CameraInfo, DisparityImage) best effort + volatile, depth 5; maps
(OccupancyGrid, any topic ending in `map` / `costmap`) and `/tf_static` reliable + transient local, depth 1;
everything else reliable + volatile (depth 100 for /tf, 10 otherwise). Override per topic with `qos_overrides`.
"""
from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import sqlite3
import struct
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from perception.camera.model import CameraInfo
from perception.errors import PerceptionError
from perception.frame import Header, Pose
from perception.io import messages as M

log = logging.getLogger("perception.io")

STORAGES = {"mcap": ".mcap", "sqlite3": ".db3"}
_STORAGE_ALIASES = {"mcap": "mcap", "sqlite3": "sqlite3", "sqlite": "sqlite3", "db3": "sqlite3"}
METADATA_VERSION = 8  # what rosbags and rosbag2 Iron/Jazzy read; Humble reads the fields it knows


class BagWriteError(PerceptionError):
    """A bag cannot be created or written (path exists, disk full, message does not fit its type)."""


# --------------------------------------------------------------------------------------------------------------
# Paths and QoS
# --------------------------------------------------------------------------------------------------------------
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
    stem = p.stem if inferred else p.name
    return p, key, p / f"{stem}_0{STORAGES[key]}"


@dataclass(frozen=True)
class QosProfile:
    reliability: str = "reliable"  # reliable | best_effort
    durability: str = "volatile"  # volatile | transient_local
    depth: int = 10

    def to_dict(self) -> dict:
        """rosbag2 metadata v8 form (enums as rmw integers; zero durations mean 'default', i.e. infinite)."""
        zero = {"sec": 0, "nsec": 0}
        return {
            "history": 1,  # keep last
            "depth": int(self.depth),
            "reliability": {"reliable": 1, "best_effort": 2}[self.reliability],
            "durability": {"transient_local": 1, "volatile": 2}[self.durability],
            "deadline": dict(zero),
            "lifespan": dict(zero),
            "liveliness": 1,  # automatic
            "liveliness_lease_duration": dict(zero),
            "avoid_ros_namespace_conventions": False,
        }


SENSOR_QOS = QosProfile("best_effort", "volatile", 5)
LATCHED_QOS = QosProfile("reliable", "transient_local", 1)
RELIABLE_QOS = QosProfile("reliable", "volatile", 10)
TF_QOS = QosProfile("reliable", "volatile", 100)
NAMED_QOS = {"sensor": SENSOR_QOS, "latched": LATCHED_QOS, "map": LATCHED_QOS, "reliable": RELIABLE_QOS, "tf": TF_QOS}

SENSOR_TYPES = {
    "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/CameraInfo",
    "stereo_msgs/msg/DisparityImage",
}


def qos_for(topic: str, msgtype: str, *, static: bool = False) -> QosProfile:
    """The QoS a topic is recorded with (see the module doc)."""
    name = topic.rstrip("/").rsplit("/", 1)[-1]
    if static or topic.rstrip("/").endswith("tf_static") or msgtype == "nav_msgs/msg/OccupancyGrid":
        return LATCHED_QOS
    if msgtype in SENSOR_TYPES:
        return SENSOR_QOS
    if name in ("map", "costmap") or name.endswith(("_map", "_costmap")):
        return LATCHED_QOS
    if msgtype == "tf2_msgs/msg/TFMessage":
        return TF_QOS
    return RELIABLE_QOS


def dump_qos(profiles: Iterable[QosProfile]) -> str:
    items = [p.to_dict() for p in profiles]
    return yaml.safe_dump(items, sort_keys=False).strip() if items else ""


# --------------------------------------------------------------------------------------------------------------
# Storage back ends
# --------------------------------------------------------------------------------------------------------------
@dataclass
class _Connection:
    id: int
    topic: str
    msgtype: str
    msgdef: str
    digest: str
    qos: str


def _open_storage_file(path: Path):
    """Raw unbuffered file for the MCAP writer (a seam the tests use to simulate a full disk)."""
    return open(path, "xb", buffering=0)  # noqa: SIM115 - closed by _McapStorage.close


def _pack_str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<I", len(b)) + b


def _record(op: int, content: bytes) -> bytes:
    return struct.pack("<BQ", op, len(content)) + content


def _pack_map_str(items: Mapping[str, str]) -> bytes:
    body = b"".join(_pack_str(k) + _pack_str(v) for k, v in items.items())
    return struct.pack("<I", len(body)) + body


MCAP_MAGIC = b"\x89MCAP0\r\n"


def zstd_codec():
    """(compress, decompress) from whichever zstd module this environment has (rosbags brings one)."""
    try:
        from backports import zstd  # rosbags >= 0.11 on Python < 3.14
    except ImportError:
        try:
            from compression import zstd  # Python >= 3.14
        except ImportError:
            import zstandard  # older rosbags

            return zstandard.ZstdCompressor().compress, zstandard.ZstdDecompressor().decompressobj().decompress
    return zstd.compress, zstd.decompress


class _McapStorage:
    """A chunked MCAP writer (ros2 profile) that only ever leaves whole chunks behind."""

    def __init__(self, path: Path, *, compression: str | None, chunk_size: int, library: str):
        self.path = path
        self.compression = compression or ""
        self.chunk_size = chunk_size
        self.f = _open_storage_file(path)
        self.good = 0  # file offset up to which the content is complete
        self.schemas: dict[str, int] = {}
        self.schema_records: list[bytes] = []
        self.channel_records: list[bytes] = []
        self.chunk_indexes: list[bytes] = []
        self.counts: Counter = Counter()  # durable per connection
        self.start = 2**63 - 1
        self.end = 0
        self._reset_chunk()
        self._write(MCAP_MAGIC + _record(0x01, _pack_str("ros2") + _pack_str(library)))

    def _reset_chunk(self) -> None:
        self.buf = io.BytesIO()
        self.index: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self.chunk_counts: Counter = Counter()
        self.chunk_start = 2**63 - 1
        self.chunk_end = 0

    def _write(self, blob: bytes) -> None:
        """Write all of blob at self.good; on failure cut the file back to self.good and re-raise."""
        try:
            view = memoryview(blob)
            while view:
                n = self.f.write(view)
                if not n:
                    raise OSError(errno.EIO, "write returned 0 bytes")
                view = view[n:]
        except OSError:
            self._rollback()
            raise
        self.good += len(blob)

    def _rollback(self) -> None:
        try:
            self.f.truncate(self.good)
            self.f.seek(self.good)
        except OSError as err:  # pragma: no cover - nothing more we can do
            log.error("could not cut %s back to %d bytes: %s", self.path, self.good, err)

    def add_connection(self, conn: _Connection) -> None:
        if conn.msgtype not in self.schemas:
            sid = len(self.schemas) + 1
            self.schemas[conn.msgtype] = sid
            body = struct.pack("<H", sid) + _pack_str(conn.msgtype) + _pack_str("ros2msg")
            data = conn.msgdef.encode()
            rec = _record(0x03, body + struct.pack("<I", len(data)) + data)
            self.schema_records.append(rec)
            self.buf.write(rec)
        meta = {"offered_qos_profiles": conn.qos, "topic_type_hash": conn.digest}
        body = (
            struct.pack("<HH", conn.id, self.schemas[conn.msgtype]) + _pack_str(conn.topic) + _pack_str("cdr")
            + _pack_map_str(meta)
        )
        rec = _record(0x04, body)
        self.channel_records.append(rec)
        self.buf.write(rec)

    def write(self, cid: int, timestamp: int, data: bytes) -> None:
        self.index[cid].append((timestamp, self.buf.tell()))
        self.buf.write(struct.pack("<BQHIQQ", 0x05, 22 + len(data), cid, 0, timestamp, timestamp))
        self.buf.write(data)
        self.chunk_counts[cid] += 1
        self.chunk_start = min(self.chunk_start, timestamp)
        self.chunk_end = max(self.chunk_end, timestamp)
        if self.buf.tell() >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        """Write the pending chunk (with its message indexes) to the file; all or nothing."""
        if not self.chunk_counts:
            return
        raw = self.buf.getvalue()
        if self.compression == "zstd":
            packed = zstd_codec()[0](raw)
        elif self.compression == "lz4":
            import lz4.frame

            packed = lz4.frame.compress(raw)
        else:
            packed = raw
        start, end = self.chunk_start, self.chunk_end
        content = (
            struct.pack("<QQQI", start, end, len(raw), zlib.crc32(raw)) + _pack_str(self.compression)
            + struct.pack("<Q", len(packed)) + packed
        )
        chunk = _record(0x06, content)
        chunk_offset = self.good
        index_offsets = {}
        pos = chunk_offset + len(chunk)
        indexes = []
        for cid in sorted(self.index):
            entries = b"".join(struct.pack("<QQ", ts, off) for ts, off in self.index[cid])
            rec = _record(0x07, struct.pack("<HI", cid, len(entries)) + entries)
            index_offsets[cid] = pos
            pos += len(rec)
            indexes.append(rec)
        index_blob = b"".join(indexes)
        self._write(chunk + index_blob)  # raises after rolling back: the chunk is lost, earlier ones stay
        offsets = b"".join(struct.pack("<HQ", cid, off) for cid, off in index_offsets.items())
        self.chunk_indexes.append(
            _record(
                0x08,
                struct.pack("<QQQQ", start, end, chunk_offset, len(chunk)) + struct.pack("<I", len(offsets)) + offsets
                + struct.pack("<Q", len(index_blob)) + _pack_str(self.compression)
                + struct.pack("<QQ", len(packed), len(raw)),
            )
        )
        self.counts.update(self.chunk_counts)
        self.start, self.end = min(self.start, start), max(self.end, end)
        self._reset_chunk()

    def discard_pending(self) -> None:
        self._reset_chunk()

    def finish(self, metadata_yaml: str) -> None:
        """Metadata record, data end, summary, footer. On failure the file is cut back to its last whole chunk."""
        base = self.good
        out = io.BytesIO()
        meta_start = base + out.tell()
        out.write(_record(0x0C, _pack_str("rosbag2") + _pack_map_str({"serialized_metadata": metadata_yaml})))
        meta_len = base + out.tell() - meta_start
        out.write(_record(0x0F, struct.pack("<I", 0)))
        summary_start = base + out.tell()
        groups = []

        def group(op: int, records: list[bytes]) -> None:
            if records:
                start = base + out.tell()
                for r in records:
                    out.write(r)
                groups.append((op, start, base + out.tell() - start))

        group(0x03, self.schema_records)
        group(0x04, self.channel_records)
        n = sum(self.counts.values())
        stats = struct.pack(
            "<QHIIIIQQ", n, len(self.schema_records), len(self.channel_records), 0, 1, len(self.chunk_indexes),
            self.start if n else 0, self.end if n else 0,
        )
        cc = b"".join(struct.pack("<HQ", cid, self.counts[cid]) for cid in sorted(self.counts))
        group(0x0B, [_record(0x0B, stats + struct.pack("<I", len(cc)) + cc)])
        group(0x08, self.chunk_indexes)
        group(0x0D, [_record(0x0D, struct.pack("<QQ", meta_start, meta_len) + _pack_str("rosbag2"))])
        offsets_start = base + out.tell()
        for op, start, length in groups:
            out.write(_record(0x0E, struct.pack("<BQQ", op, start, length)))
        out.write(_record(0x02, struct.pack("<QQI", summary_start, offsets_start, 0)))
        out.write(MCAP_MAGIC)
        self._write(out.getvalue())

    def close(self) -> None:
        try:
            self.f.close()
        except OSError as err:
            log.error("closing %s: %s", self.path, err)


class _SqliteStorage:
    """rosbag2 sqlite3 storage (schema version 4), committed every `commit_every` messages."""

    SCHEMA = """
    CREATE TABLE schema(schema_version INTEGER PRIMARY KEY, ros_distro TEXT NOT NULL);
    CREATE TABLE metadata(id INTEGER PRIMARY KEY, metadata_version INTEGER NOT NULL, metadata TEXT NOT NULL);
    CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
      serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL, type_description_hash TEXT NOT NULL);
    CREATE TABLE message_definitions(id INTEGER PRIMARY KEY, topic_type TEXT NOT NULL, encoding TEXT NOT NULL,
      encoded_message_definition TEXT NOT NULL, type_description_hash TEXT NOT NULL);
    CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL, timestamp INTEGER NOT NULL,
      data BLOB NOT NULL);
    CREATE INDEX timestamp_idx ON messages (timestamp ASC);
    INSERT INTO schema(schema_version, ros_distro) VALUES (4, 'perception');
    """

    def __init__(self, path: Path, *, commit_every: int, commit_bytes: int = 4 << 20):
        self.path = path
        self.commit_every = commit_every
        self.commit_bytes = commit_bytes
        self.pending_bytes = 0
        if path.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(path))
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(self.SCHEMA)
        self.types: set[str] = set()
        self.counts: Counter = Counter()  # committed
        self.pending: Counter = Counter()
        self.start = 2**63 - 1
        self.end = 0
        self.pending_span = (2**63 - 1, 0)
        self.in_tx = False

    def _begin(self) -> None:
        if not self.in_tx:
            self.conn.execute("BEGIN")
            self.in_tx = True

    def add_connection(self, conn: _Connection) -> None:
        self._begin()
        if conn.msgtype not in self.types:
            self.conn.execute(
                "INSERT INTO message_definitions (topic_type, encoding, encoded_message_definition, type_description_hash)"
                " VALUES(?, ?, ?, ?)",
                (conn.msgtype, "ros2msg", conn.msgdef, conn.digest),
            )
            self.types.add(conn.msgtype)
        self.conn.execute(
            "INSERT INTO topics VALUES(?, ?, ?, ?, ?, ?)", (conn.id, conn.topic, conn.msgtype, "cdr", conn.qos, conn.digest)
        )
        self.flush()

    def write(self, cid: int, timestamp: int, data: bytes) -> None:
        self._begin()
        self.conn.execute("INSERT INTO messages (topic_id, timestamp, data) VALUES(?, ?, ?)", (cid, timestamp, bytes(data)))
        self.pending[cid] += 1
        self.pending_bytes += len(data)
        lo, hi = self.pending_span
        self.pending_span = (min(lo, timestamp), max(hi, timestamp))
        if sum(self.pending.values()) >= self.commit_every or self.pending_bytes >= self.commit_bytes:
            self.flush()

    def flush(self) -> None:
        if not self.in_tx:
            return
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error:
            self.discard_pending()
            raise
        self.in_tx = False
        self.counts.update(self.pending)
        if self.pending:
            self.start, self.end = min(self.start, self.pending_span[0]), max(self.end, self.pending_span[1])
        self.pending.clear()
        self.pending_bytes = 0
        self.pending_span = (2**63 - 1, 0)

    def discard_pending(self) -> None:
        if self.in_tx:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self.in_tx = False
        self.pending.clear()
        self.pending_bytes = 0
        self.pending_span = (2**63 - 1, 0)

    def finish(self, metadata_yaml: str) -> None:
        self._begin()
        self.conn.execute("INSERT INTO metadata(metadata_version, metadata) VALUES(?, ?)", (METADATA_VERSION, metadata_yaml))
        self.flush()

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error as err:
            log.error("closing %s: %s", self.path, err)


_WRITE_ERRORS = (OSError, sqlite3.Error)


# --------------------------------------------------------------------------------------------------------------
# The writer
# --------------------------------------------------------------------------------------------------------------
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
        chunk_size: int = 4 << 20,
        commit_every: int = 64,
        qos_overrides: Mapping[str, QosProfile | str] | None = None,
    ):
        """`storage`: "mcap" or "sqlite3" (None: from the path suffix, else mcap). `compression` (MCAP only):
        None, "zstd" or "lz4" per chunk. `chunk_size` bytes are buffered per MCAP chunk; `commit_every` messages per
        sqlite3 transaction (or 4 MiB) -- at most that much is lost if the process dies without closing the bag."""
        self.path, self.storage, self.file = resolve_bag_path(path, storage)
        if compression not in (None, "", "zstd", "lz4"):
            raise BagWriteError(f"unknown compression '{compression}'", subject=str(self.path), hint="use zstd or lz4")
        if compression and self.storage != "mcap":
            raise BagWriteError("compression is only available for MCAP", subject=str(self.path))
        self._qos_overrides = {t: NAMED_QOS[q] if isinstance(q, str) else q for t, q in (qos_overrides or {}).items()}
        self._prepare_directory(overwrite)
        self._connections: dict[tuple[str, str], _Connection] = {}
        self._closed = False
        self.error: BaseException | None = None
        try:
            if self.storage == "mcap":
                from importlib.metadata import version

                try:
                    lib = f"perception-{version('perception')}"
                except Exception:  # noqa: BLE001
                    lib = "perception"
                self._store: Any = _McapStorage(self.file, compression=compression, chunk_size=chunk_size, library=lib)
            else:
                self._store = _SqliteStorage(self.file, commit_every=commit_every)
        except (OSError, sqlite3.Error) as err:
            self._closed = True
            shutil.rmtree(self.path, ignore_errors=True)  # we created it a moment ago
            raise BagWriteError(f"cannot create the bag file: {err}", subject=str(self.file),
                                hint="check the folder is writable and has space") from err

    def _prepare_directory(self, overwrite: bool) -> None:
        p = self.path
        if p.exists() or p.is_symlink():
            if not overwrite:
                raise BagWriteError("already exists", subject=str(p), hint="choose another output path or remove it")
            if p.is_dir() and not p.is_symlink():
                names = [c.name for c in p.iterdir()]
                bagish = all(n == "metadata.yaml" or n.endswith((".mcap", ".db3", ".db3-journal", ".tmp")) for n in names)
                if not bagish:
                    raise BagWriteError(
                        "exists and is not a bag directory; refusing to delete it", subject=str(p),
                        hint="choose another output path",
                    )
                shutil.rmtree(p)
            else:
                p.unlink()
        try:
            p.mkdir(parents=True)
        except OSError as err:
            raise BagWriteError(f"cannot create the bag directory: {err}", subject=str(p)) from err

    # --- low level ---------------------------------------------------------------------------------------------
    def _connection(self, topic: str, msgtype: str, *, qos: QosProfile | None = None, msgdef: str | None = None,
                    digest: str | None = None, static: bool = False) -> _Connection:
        key = (topic, msgtype)
        conn = self._connections.get(key)
        if conn is not None:
            return conn
        if not topic or not topic.strip("/") or "//" in topic:
            raise BagWriteError(f"invalid topic name '{topic}'", subject=str(self.path))
        if msgdef is None or digest is None:
            store = M.typestore()
            if msgtype not in store.types:
                raise BagWriteError(
                    f"message type {msgtype} is unknown here", subject=topic,
                    hint="pass msgdef= (the .msg text with its dependencies) and rihs01= when copying a foreign type",
                )
            msgdef = store.generate_msgdef(msgtype, ros_version=2)[0] if msgdef is None else msgdef
            digest = store.hash_rihs01(msgtype) if digest is None else digest
        profile = self._qos_overrides.get(topic) or qos or qos_for(topic, msgtype, static=static)
        conn = _Connection(len(self._connections) + 1, topic, msgtype, msgdef, digest, dump_qos([profile]))
        self._guarded(lambda: self._store.add_connection(conn))
        self._connections[key] = conn
        return conn

    def _guarded(self, action) -> None:
        if self._closed:
            raise BagWriteError("the bag is closed", subject=str(self.path))
        if self.error is not None:
            raise BagWriteError(f"an earlier write failed ({self.error}); the bag accepts no more messages",
                                subject=str(self.path))
        try:
            action()
        except _WRITE_ERRORS as err:
            self.error = err
            self._store.discard_pending()
            raise BagWriteError(
                f"writing failed: {err}; what was written before stays readable", subject=str(self.file),
                hint="free disk space or choose another output path",
            ) from err

    def write_raw(self, topic: str, msgtype: str, timestamp_ns: int, rawdata: bytes, *, msgdef: str | None = None,
                  rihs01: str | None = None, qos: QosProfile | str | None = None) -> None:
        """Write already serialised CDR data (e.g. an input topic copied through). Types the built-in typestore
        does not know need `msgdef` (rosbag2 message definition text) and `rihs01` (type hash, may be "")."""
        if isinstance(qos, str):
            qos = NAMED_QOS[qos]
        if msgdef is not None and rihs01 is None:
            rihs01 = ""
        conn = self._connection(topic, msgtype, qos=qos, msgdef=msgdef, digest=rihs01)
        self._guarded(lambda: self._store.write(conn.id, int(timestamp_ns), rawdata))

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
        self._guarded(lambda: self._store.write(conn.id, int(timestamp_ns), raw))

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
            out[conn.topic] += self._store.counts.get(conn.id, 0)
        return dict(out)

    def flush(self) -> None:
        """Make everything written so far durable (one MCAP chunk / one sqlite3 commit)."""
        self._guarded(self._store.flush)

    def close(self) -> None:
        """Finish the storage file and write metadata.yaml. Safe to call twice; never loses what is durable."""
        if self._closed:
            return
        failure: BaseException | None = None
        if self.error is None:
            try:
                self._store.flush()
            except _WRITE_ERRORS as err:
                self.error = failure = err
                self._store.discard_pending()
        else:
            self._store.discard_pending()
        text = self._metadata_yaml()
        try:
            self._store.finish(yaml.safe_dump(text["rosbag2_bagfile_information"], sort_keys=False))
        except _WRITE_ERRORS as err:
            failure = failure or err
            log.error("%s: could not finish the bag file (%s); the chunks written so far stay readable", self.file, err)
        finally:
            self._store.close()
            self._closed = True
        try:
            tmp = self.path / "metadata.yaml.tmp"
            tmp.write_text(yaml.safe_dump(text, sort_keys=False))
            tmp.replace(self.path / "metadata.yaml")
        except OSError as err:
            failure = failure or err
            log.error("%s: could not write metadata.yaml (%s)", self.path, err)
            try:
                (self.path / "metadata.yaml.tmp").unlink(missing_ok=True)
            except OSError:
                pass
        if failure is not None and self.error is None:
            self.error = failure

    def _metadata_yaml(self) -> dict:
        store = self._store
        counts = store.counts
        total = int(sum(counts.values()))
        start = int(store.start) if total else 0
        duration = int(store.end - store.start) if total else 0
        topics = [
            {
                "topic_metadata": {
                    "name": c.topic,
                    "type": c.msgtype,
                    "serialization_format": "cdr",
                    "offered_qos_profiles": c.qos,
                    "type_description_hash": c.digest,
                },
                "message_count": int(counts.get(c.id, 0)),
            }
            for c in self._connections.values()
        ]
        return {
            "rosbag2_bagfile_information": {
                "version": METADATA_VERSION,
                "storage_identifier": self.storage,
                "duration": {"nanoseconds": duration},
                "starting_time": {"nanoseconds_since_epoch": start},
                "message_count": total,
                "topics_with_message_count": topics,
                "compression_format": "",
                "compression_mode": "",
                "relative_file_paths": [self.file.name],
                "files": [
                    {
                        "path": self.file.name,
                        "starting_time": {"nanoseconds_since_epoch": start},
                        "duration": {"nanoseconds": duration},
                        "message_count": total,
                    }
                ],
                "custom_data": None,
                "ros_distro": "perception",
            }
        }

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
    "BagWriteError", "BagWriter", "LATCHED_QOS", "QosProfile", "RELIABLE_QOS", "SENSOR_QOS", "STORAGES", "TF_QOS",
    "qos_for", "resolve_bag_path",
]
