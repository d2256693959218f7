"""Frame sources: ROS 2 bags, video files and cameras, image folders, the synthetic world.

`open_source(spec, **options)` picks the source for a `--source` / `IN_BAG` argument:

==========================================  ===================================================================
spec                                        source
==========================================  ===================================================================
`sim:` or `sim:seed=3,frames=100,size=640x480`  `perception.sources.synthetic.SyntheticSource(**kv)`
`camera:0`, `camera:/dev/video2`            `VideoSource` on a camera (index or device path)
`rtsp://...`, `http://...`                  `VideoSource` on a stream
a directory with metadata.yaml, `*.mcap`,   `BagSource` (a directory holding a single .mcap/.db3 counts too)
`*.db3`
a video file (.mp4, .avi, .mkv, ...)        `VideoSource`
a directory of images                       `FolderSource` (mono, or stereo left/right, cam0/cam1 ...)
==========================================  ===================================================================

`options` go to the source's constructor; `calibration` is accepted by all of them (for a bag it means
`left_calibration`). An option the chosen source does not take is an error naming the options it does take.
`sim:` values are converted to int / float / bool where they look like one (size=640x480 stays a string).
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from perception.errors import SourceError
from perception.sources.base import FrameSource, SourceStats

SPEC_HELP = (
    "a ROS 2 bag (directory with metadata.yaml, .mcap, .db3), a video file, camera:N, an image folder, "
    "or sim:[key=value,...]"
)


def _value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_kv(text: str) -> dict[str, Any]:
    """`a=1,b=x,size=640x480` -> {"a": 1, "b": "x", "size": "640x480"}."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise SourceError(f"'{part}' is not key=value", subject=f"sim:{text}", hint="e.g. sim:seed=3,frames=100")
        key, value = part.split("=", 1)
        out[key.strip().replace("-", "_")] = _value(value)
    return out


def _construct(cls, spec: str, *args, **options) -> FrameSource:
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not takes_any:
        unknown = [k for k in options if k not in params]
        if unknown:
            accepted = [k for k, p in params.items() if k != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]
            raise SourceError(
                f"option(s) {', '.join(unknown)} not accepted by {cls.__name__}", subject=spec,
                hint=f"accepted: {', '.join(accepted[len(args):])}",
            )
    return cls(*args, **options)


def is_bag_path(path: Path) -> bool:
    if path.is_dir():
        if (path / "metadata.yaml").is_file():
            return True
        inner = [p for p in path.iterdir() if p.is_file()]
        return bool(inner) and all(p.suffix in (".mcap", ".db3") or p.name.endswith(".tmp") for p in inner)
    return path.suffix in (".mcap", ".db3")


def open_source(spec: str | Path, **options: Any) -> FrameSource:
    """The frame source for `spec` (see the module doc). Raises SourceError with what was expected."""
    options = {k: v for k, v in options.items() if v is not None}
    text = str(spec)
    if text.startswith("sim:") or text == "sim":
        try:
            from perception.sources.synthetic import SyntheticSource
        except ImportError as err:
            raise SourceError(
                f"the synthetic world is not available ({err})", subject=text,
                hint="perception.sources.synthetic is missing from this installation",
            ) from err
        kv = parse_kv(text[4:]) if text.startswith("sim:") else {}
        kv.update(options)
        return _construct(SyntheticSource, text, **kv)
    if text.startswith("camera:"):
        from perception.sources.video import VideoSource

        dev = text[len("camera:"):]
        device: Any = int(dev) if dev.isdigit() else dev
        if device == "":
            raise SourceError("camera: needs an index or a device path", subject=text, hint="e.g. camera:0")
        if isinstance(device, str) and not Path(device).exists():
            raise SourceError("camera device not found", subject=device, hint="ls /dev/video*")
        if isinstance(device, str):
            options["live"] = True
        return _construct(VideoSource, text, device, **options)
    if "://" in text:
        from perception.sources.video import VideoSource

        return _construct(VideoSource, text, text, **options)
    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError("not found", subject=text, hint=f"a source is {SPEC_HELP}")
    if is_bag_path(path):
        from perception.sources.bag import BagSource

        if "calibration" in options:
            options["left_calibration"] = options.pop("calibration")
        return _construct(BagSource, text, path, **options)
    from perception.sources.video import VIDEO_SUFFIXES, VideoSource

    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return _construct(VideoSource, text, path, **options)
    if path.is_dir():
        from perception.sources.folder import FolderSource

        return _construct(FolderSource, text, path, **options)
    raise SourceError(f"cannot tell what kind of source '{path.suffix or path.name}' is", subject=text,
                      hint=f"a source is {SPEC_HELP}")


def __getattr__(name: str):  # lazy: importing perception.sources does not pull in OpenCV's video stack
    if name == "BagSource":
        from perception.sources.bag import BagSource

        return BagSource
    if name == "VideoSource":
        from perception.sources.video import VideoSource

        return VideoSource
    if name == "FolderSource":
        from perception.sources.folder import FolderSource

        return FolderSource
    if name == "StereoSync":
        from perception.sources.sync import StereoSync

        return StereoSync
    raise AttributeError(name)


__all__ = ["BagSource", "FolderSource", "FrameSource", "SourceStats", "StereoSync", "VideoSource", "is_bag_path",
           "open_source", "parse_kv"]
