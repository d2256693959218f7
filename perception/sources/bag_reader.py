"""Opening ROS 2 bags for reading (rosbags' Reader, salvage readers as the fallback) and choosing their topics.

`open_bag(path)` takes a rosbag2 directory (metadata.yaml + MCAP or sqlite3 files), a directory holding a single
storage file and no metadata.yaml, or a bare .mcap / .db3 file, and returns a `BagReader` that yields raw
(topic, msgtype, bag time, CDR bytes). A bag rosbags cannot open (cut off: no MCAP summary, a truncated sqlite3
file) is read by a salvage reader (`perception.sources.bag_salvage`) up to the damage, with `truncated` saying
why and `expected` the message counts metadata.yaml promised. A bag that cannot be read at all raises SourceError.

Topics (`detect_topics`, `select_topics`): left/right image topics are the Image / CompressedImage topics whose
names contain `left` / `right` (or `cam0` / `cam1`), rectified ones (`image_rect*`) preferred over raw ones, and
the right topic is the left one with left -> right when the bag has it. With a single image topic (or no pair)
the bag is mono. Camera info comes from `<image namespace>/camera_info` unless a topic is given.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import yaml

from perception.errors import SourceError

log = logging.getLogger("perception.sources")

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
OPEN_HINT = (
    "pass a rosbag2 directory (with metadata.yaml), an .mcap or a .db3 file; "
    "check with `ros2 bag info PATH`; a damaged MCAP can be repaired with `mcap recover`"
)


@dataclass
class TopicInfo:
    """A topic of the bag: its type(s) and message count; msgdef/rihs01 let a writer copy it through."""

    name: str
    msgtype: str
    count: int
    msgdef: str = ""
    rihs01: str = ""


class BagReader:
    """Raw messages of a bag: `topics`, `messages(topics)` in bag order, `close()`."""

    topics: dict[str, TopicInfo]
    truncated: str = ""  # why the bag was read in salvage mode ("" when it was fine)
    expected: dict[str, int] | None = None  # message counts metadata.yaml promised, when salvaging

    def messages(self, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class RosbagsReader(BagReader):
    """An intact bag (directory or storage file), read by rosbags' Reader."""

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


def _storage_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".mcap", ".db3") and p.is_file())


def open_bag(path: str | Path) -> BagReader:
    """A raw message reader for a bag path (directory, .mcap, .db3); a damaged bag gets a salvage reader."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError("does not exist", subject=str(path), hint=OPEN_HINT)
    expected: dict[str, int] | None = None
    files: list[Path]
    if path.is_dir():
        meta = path / "metadata.yaml"
        if meta.is_file():
            try:
                return RosbagsReader(path)
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
            return RosbagsReader(path)
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
        from perception.sources.bag_salvage import McapSalvage, SqliteSalvage  # only a damaged bag needs them

        salvage = McapSalvage if kinds == {".mcap"} else SqliteSalvage
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


# --- topic selection ------------------------------------------------------------------------------------------
def _types(info: TopicInfo) -> list[str]:
    return info.msgtype.split("|")


def is_image_topic(info: TopicInfo) -> bool:
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
    images = sorted((t for t, info in topics.items() if is_image_topic(info)), key=_rank)
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


class Topics(NamedTuple):
    """The topics a bag source reads (None: not read)."""

    left: str
    right: str | None
    left_info: str | None
    right_info: str | None
    pose: str | None


def _need(topics: dict[str, TopicInfo], path: Path, topic: str, what: str) -> str:
    if topic not in topics:
        images = [t for t, i in topics.items() if is_image_topic(i)]
        raise SourceError(
            f"has no {what} topic '{topic}'", subject=str(path),
            hint=f"image topics in the bag: {', '.join(images) or 'none'}; all topics: {', '.join(topics)}",
        )
    return topic


def select_topics(topics: dict[str, TopicInfo], path: Path, left: str | None = None, right: str | None = None,
                  left_info: str | None = None, right_info: str | None = None, pose: str | None = None, *,
                  mono: bool = False) -> Topics:
    """The given topics, checked against the bag, and the rest detected (see the module doc)."""
    if left is None:
        left_auto, right_auto = detect_topics(topics)
        if left_auto is None:
            raise SourceError(
                "has no image topics (sensor_msgs/Image or CompressedImage)", subject=str(path),
                hint=f"topics: {', '.join(f'{t} ({i.msgtype})' for t, i in topics.items()) or 'none'}",
            )
        left = left_auto
        if right is None and not mono:
            right = right_auto
    elif right is None and not mono:  # a given left topic brings its right twin along when the bag has one
        for a, b in _SIDES:
            twin = left.replace(a, b)
            if a in left and twin in topics:
                right = twin
                break
    left = _need(topics, path, left, "left image")
    right = None if mono or right is None else _need(topics, path, right, "right image")

    def info_for(image_topic: str | None, given: str | None) -> str | None:
        if given is not None:
            return _need(topics, path, given, "camera_info")
        if image_topic is None:
            return None
        candidate = _namespace(image_topic) + "/camera_info"
        return candidate if candidate in topics else None

    return Topics(left, right, info_for(left, left_info), info_for(right, right_info) if right else None,
                  None if pose is None else _need(topics, path, pose, "pose"))


__all__ = ["IMAGE_TYPES", "OPEN_HINT", "BagReader", "RosbagsReader", "TopicInfo", "Topics", "detect_topics",
           "is_image_topic", "open_bag", "select_topics"]
