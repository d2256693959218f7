"""Salvage readers: what is still readable in a bag that rosbags cannot open (a recording cut off by a crash,
a full disk or a killed process). `perception.sources.bag_reader.open_bag` falls back to them.

* `McapSalvage`: a linear scan of an MCAP file without (or with a damaged) summary and footer: every complete
  record up to the cut, chunks decompressed and checked with rosbags' own chunk decoder;
* `SqliteSalvage`: row by row through a rosbag2 sqlite3 file, even one cut off mid-page.

`lost_records` counts the records / rows that could not be read; `expected` is what metadata.yaml promised.
"""
from __future__ import annotations

import mmap
import shutil
import sqlite3
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rosbags.rosbag2.storage_mcap import decompress

from perception.errors import SourceError
from perception.sources.bag_reader import OPEN_HINT, BagReader, TopicInfo


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


class McapSalvage(BagReader):
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
            (_s, _e, size, crc), o = _u("<QQQI", rec, 0)
            comp, o = _string(rec, o)
            (n,), o = _u("<Q", rec, o)
            payload = bytes(rec[o: o + n])
            if len(payload) != n:
                return None
            return list(self._records(decompress(payload, comp, size, crc)))
        except Exception:  # noqa: BLE001 - a damaged chunk is skipped, not fatal
            return None

    def messages(self, topics: set[str]):
        yield from self._scan(topics)


class SqliteSalvage(BagReader):
    """Row-by-row read of a damaged rosbag2 sqlite3 file: every message row that can still be read."""

    MAX_FAILURES = 200

    def __init__(self, paths: list[Path], reason: str, expected: dict[str, int] | None):
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
        for conn in self.conns:
            conn.close()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


__all__ = ["McapSalvage", "SqliteSalvage"]
