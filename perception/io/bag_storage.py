"""rosbags' rosbag2 writer, set up so that a failed write leaves every message written before it readable.

`rosbags.rosbag2.Writer` and its storage plugins `McapWriter` / `Sqlite3Writer` write every record, every SQL row,
the MCAP summary and metadata.yaml. The subclasses here change *when* data reaches the disk and what happens when
that fails -- nothing about what is written:

What stock rosbags does on a failing write (its 0.11 source, and measured with RLIMIT_FSIZE)
* MCAP: messages collect in an in-memory chunk that is written when it passes 1 MiB, with several `write()` calls
  (chunk record, one message index per channel) through a buffered file. A full disk leaves a torn chunk at the
  end of the file, the Writer's context manager then aborts (no summary, no footer, no metadata.yaml: rosbags'
  Reader refuses the file) and its message counts already include the lost chunk.
* sqlite3: every INSERT runs in one implicit transaction that only `close()` commits, so a full disk loses every
  message of the bag (0 of 231 readable in the measurement).

What the subclasses add
* `McapStorage`: chunks close at `chunk_size` bytes (at most rosbags' 1 MiB). Everything rosbags writes goes into
  `_GroupFile`, which holds it in memory and writes each group -- one chunk with its message indexes, or at close
  the metadata record, summary and footer -- in one go; a failed write is truncated off again, so the file
  always ends after a complete chunk (or after the footer). rosbags' chunk index of a chunk that did not make it
  is dropped and the counts are set back to what is on disk, so a summary written after the fault is correct.
* `Sqlite3Storage`: commits every `commit_every` messages or 4 MiB and after each new topic; a failed INSERT or
  COMMIT is rolled back, leaving the committed transactions. Uncommitted pages stay in memory (cache_spill off).
* Both name the file like `ros2 bag record` (`<name>_0.mcap`, `<name>_0.db3`, rosbags would write
  `<folder name>.mcap`): the file rosbags created is renamed while it holds only its header / schema, and
  reopened.
* `durable` per connection (and its time span): what is on disk; `Rosbag2Writer.discard_pending()` drops what is
  not and makes rosbags' counts say the same, and `Rosbag2Writer.finish()` closes the bag even after a failure:
  what did not fit is dropped and rosbags' close() tried again (an MCAP summary is far smaller than the chunk
  that did not fit); if the storage still cannot be finished (no room for the MCAP summary / the sqlite3
  metadata row) it is aborted and rosbags still writes metadata.yaml for what is durable.

What is not covered
* Messages accepted since the last durable point (at most one chunk / one transaction) are lost with the fault;
  `BagWriter.message_counts` and metadata.yaml say exactly what is in the bag.
* An MCAP file whose summary does not fit even after the torn chunk is cut off has no footer: rosbags' Reader and
  `ros2 bag play` refuse it; `perception.sources.BagSource` and `mcap recover` read it to its last chunk.
* If even the truncation fails, the torn bytes stay at the end of the MCAP file (the salvage reader stops there).
* sqlite3: a fault that keeps sqlite from rolling back, or a crash inside a COMMIT, leaves a hot journal, which
  rosbags' readers (immutable opens) ignore until a writable sqlite open has rolled it back.
* A killed process gets no fault handling: no metadata.yaml, no MCAP summary; the durable chunks / commits are
  still read by BagSource (uncommitted sqlite pages never reach the file: cache_spill is off).
"""
from __future__ import annotations

import errno
import logging
import os
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Mapping
from contextlib import suppress
from functools import partial
from io import BytesIO
from pathlib import Path

from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.enums import CompressionMode
from rosbags.rosbag2.storage_mcap import McapWriter, PendingChunk
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer

log = logging.getLogger("perception.io")

METADATA_VERSION = 8  # what rosbags and rosbag2 Iron/Jazzy read; Humble reads the fields it knows
MAX_CHUNK = 1 << 20  # rosbags' McapWriter closes a chunk once it passes this many bytes
WRITE_ERRORS = (OSError, sqlite3.Error)
_NEVER = 2**63 - 1


def storage_file(bag_dir: Path, suffix: str) -> Path:
    """`<bag>/<name>_0<suffix>` (ros2 bag record's naming); <name> is the folder name without .mcap / .db3."""
    stem = bag_dir.stem if bag_dir.suffix.lower() in (".mcap", ".db3") else bag_dir.name
    return bag_dir / f"{stem}_0{suffix}"


def _open_storage_file(path: Path):
    """The MCAP file rosbags created, opened raw for writing at its end (a seam the tests use to fill the disk)."""
    return open(path, "r+b", buffering=0)  # noqa: SIM115 - closed by _GroupFile.close


class _Durable:
    """Messages on disk per connection id, and their time span."""

    def _init_durable(self) -> None:
        self.durable: Counter = Counter()
        self.start, self.end = _NEVER, 0

    def _made_durable(self, counts: Mapping[int, int], start: int, end: int) -> None:
        self.durable.update(counts)
        if any(counts.values()):
            self.start, self.end = min(self.start, start), max(self.end, end)


class _GroupFile:
    """The file under rosbags' MCAP writer: writes collect in memory and reach the disk as a whole at `commit()`;
    a failed write is cut off again, so the file ends after the last committed group."""

    def __init__(self, raw):
        self.raw = raw
        self.good = raw.seek(0, os.SEEK_END)
        self.pending = BytesIO()

    def write(self, data) -> int:
        return self.pending.write(data)

    def tell(self) -> int:
        return self.good + self.pending.tell()

    def commit(self) -> None:
        view = memoryview(self.pending.getvalue())
        self.pending = BytesIO()
        size = len(view)
        try:
            while view:
                n = self.raw.write(view)
                if not n:
                    raise OSError(errno.EIO, "write returned 0 bytes")
                view = view[n:]
        except OSError:
            try:
                self.raw.truncate(self.good)
                self.raw.seek(self.good)
            except OSError as err:  # pragma: no cover - nothing more can be done
                log.error("could not cut the bag file back to %d bytes: %s", self.good, err)
            raise
        self.good += size

    def discard(self) -> None:
        self.pending = BytesIO()

    def close(self) -> None:
        """Commit and close; when the commit fails the file stays open (cut back) for `abort`."""
        self.commit()
        self.raw.close()


class McapStorage(McapWriter, _Durable):
    """rosbags' MCAP storage writing whole chunks of `chunk_size` bytes (see the module doc)."""

    def __init__(self, path: Path, compression: CompressionMode, *, chunk_size: int = MAX_CHUNK) -> None:
        super().__init__(path, compression)  # creates <bag>/<folder name>.mcap with its magic and header record
        self.bio.close()
        self.path = self.path.rename(storage_file(path, ".mcap"))
        self.bio = _GroupFile(_open_storage_file(self.path))
        self.chunk_size = max(1, min(int(chunk_size), MAX_CHUNK))
        self._init_durable()

    def write(self, connection: Connection, timestamp: int, data: bytes | memoryview) -> None:
        super().write(connection, timestamp, data)
        if self.chunk.bio.tell() >= self.chunk_size:
            self.close_chunk()

    def close_chunk(self) -> None:
        chunk = self.chunk
        super().close_chunk()  # encodes the chunk and its message indexes into self.bio, records its chunk index
        try:
            self.bio.commit()
        except OSError:
            self.chunks.pop()  # the chunk index of a chunk that is not in the file
            raise
        self._made_durable({cid: len(m) for cid, m in chunk.msgs.items()}, chunk.message_start_time,
                           chunk.message_end_time)

    def flush(self) -> None:
        if self.chunk.bio.tell():
            self.close_chunk()

    def discard_pending(self) -> None:
        self.bio.discard()
        self.chunk = PendingChunk(_NEVER, 0, BytesIO(), defaultdict(list))
        self.channel_stats = {cid: self.durable[cid] for cid in self.channel_stats}
        self.message_start_time, self.message_end_time = self.start, self.end

    def abort(self) -> None:
        self.bio.discard()
        super().abort()


class Sqlite3Storage(Sqlite3Writer, _Durable):
    """rosbags' sqlite3 storage committing every `commit_every` messages or `commit_bytes` (see the module doc)."""

    def __init__(self, path: Path, compression: CompressionMode, *, commit_every: int = 64,
                 commit_bytes: int = 4 << 20) -> None:
        super().__init__(path, compression)  # creates <bag>/<folder name>.db3 with rosbags' schema, committed
        self.conn.close()
        self.path = self.path.rename(storage_file(path, ".db3"))
        self.conn = sqlite3.connect(self.path)
        # uncommitted pages stay in memory (a transaction is at most commit_bytes): outside a COMMIT the file holds
        # committed transactions only -- what rosbags' readers see, as they open it immutable, ignoring a journal
        self.conn.execute("PRAGMA cache_spill=OFF")
        self.cursor = self.conn.cursor()
        self.commit_every, self.commit_bytes = max(1, int(commit_every)), int(commit_bytes)
        self._init_durable()
        self._reset_pending()

    def _reset_pending(self) -> None:
        self.pending: Counter = Counter()
        self.pending_bytes = 0
        self.pending_span = (_NEVER, 0)

    def add_connection(self, connection: Connection, offered_qos_profiles: str) -> None:
        super().add_connection(connection, offered_qos_profiles)
        self.flush()

    def write(self, connection: Connection, timestamp: int, data: bytes | memoryview) -> None:
        super().write(connection, timestamp, data)
        self.pending[connection.id] += 1
        self.pending_bytes += len(data)
        self.pending_span = (min(self.pending_span[0], timestamp), max(self.pending_span[1], timestamp))
        if self.pending.total() >= self.commit_every or self.pending_bytes >= self.commit_bytes:
            self.flush()

    def flush(self) -> None:
        try:
            self.conn.commit()
        except sqlite3.Error:
            self.discard_pending()
            raise
        self._made_durable(self.pending, *self.pending_span)
        self._reset_pending()

    def discard_pending(self) -> None:
        with suppress(sqlite3.Error):
            self.conn.rollback()
        self._reset_pending()

    def close(self, version: int, metadata: str) -> None:
        super().close(version, metadata)  # the metadata row, the last commit
        self._made_durable(self.pending, *self.pending_span)
        self._reset_pending()


class _Finished:
    """Stands in for a storage that could not be finished, so that rosbags' close() still writes metadata.yaml."""

    def __init__(self, path: Path):
        self.path = path

    def close(self, version: int, metadata: str) -> None:
        pass


class Rosbag2Writer(Writer):
    """rosbags' Writer with the storages above, plus `discard_pending()` and `finish()` (see the module doc)."""

    def __init__(self, path: Path, storage: str, *, chunk_size: int = MAX_CHUNK, commit_every: int = 64):
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        super().__init__(path, version=METADATA_VERSION, storage_plugin=plugin)
        self.STORAGE_PLUGINS = {
            StoragePlugin.MCAP: partial(McapStorage, chunk_size=chunk_size),
            StoragePlugin.SQLITE3: partial(Sqlite3Storage, commit_every=commit_every),
        }

    def discard_pending(self) -> None:
        """Drop what is not on disk yet; from now on rosbags' counts are the durable ones."""
        store = self.storage
        if store is None:
            return
        store.discard_pending()
        self.counts = {cid: store.durable[cid] for cid in self.counts}
        self.min_timestamp, self.max_timestamp = store.start, store.end

    def finish(self) -> None:
        """rosbags' close(). If that fails, what did not fit is dropped and close() tried again (an MCAP summary
        is much smaller than the chunk that did not fit); if the storage still cannot be finished it is aborted,
        leaving its durable part as it is, and metadata.yaml is written all the same. The first error is raised."""
        try:
            self.close()
            return
        except Exception as err:  # noqa: BLE001 - re-raised below
            if self.storage is None:  # only metadata.yaml failed: nothing more to try
                raise
            first = err
        self.discard_pending()
        try:
            self.close()
        except Exception:  # noqa: BLE001
            store = self.storage
            if store is not None:
                with suppress(Exception):
                    store.abort()
                self.storage = _Finished(store.path)
                try:
                    self.close()
                except Exception as err:  # noqa: BLE001
                    log.error("%s: could not write metadata.yaml either: %s", self.path, err)
        raise first


__all__ = ["MAX_CHUNK", "METADATA_VERSION", "McapStorage", "Rosbag2Writer", "Sqlite3Storage", "WRITE_ERRORS",
           "storage_file"]
