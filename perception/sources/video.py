"""Frames from OpenCV VideoCapture: video files, network streams and cameras (`camera:0`, `camera:/dev/video2`).

Images are BGR uint8 (or mono uint8 with `gray=True`). `stereo="sbs"` splits a side-by-side frame (left half =
left camera, as ZED / many USB stereo cameras send it); `stereo="tb"` splits top/bottom. Calibration YAMLs are
optional (`calibration` for the left / only camera, `right_calibration` for the right one).

Stamps: for files, the container's position (CAP_PROP_POS_MSEC) from `start_ns`, or frame index / `fps` when the
container has none; for cameras and streams, the wall clock at capture. A frame that cannot be decoded is skipped
and counted; the iteration ends after the last frame (or `max_failures` consecutive read failures).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from perception.camera.model import CameraInfo
from perception.errors import SourceError
from perception.frame import Frame, Header
from perception.sources.base import FrameSource, SourceStats
from perception.sources.calibration import load_calibration

log = logging.getLogger("perception.sources")

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".mjpg",
                  ".mjpeg", ".h264", ".h265", ".ts", ".ogv")


class VideoSource(FrameSource):
    """See the module doc. `device` is a file path, a stream URL or a camera index (int)."""

    def __init__(
        self,
        device: str | int | Path,
        *,
        stereo: str | None = None,
        calibration: str | Path | CameraInfo | None = None,
        right_calibration: str | Path | CameraInfo | None = None,
        fps: float | None = None,
        start_ns: int = 0,
        frame_id: str = "camera",
        gray: bool = False,
        rectified: bool | None = None,
        width: int | None = None,
        height: int | None = None,
        max_failures: int = 5,
        live: bool | None = None,
    ) -> None:
        """`live`: a camera or stream (wall-clock stamps, no end of file); default: an int device or a URL."""
        super().__init__()
        if stereo not in (None, "sbs", "tb"):
            raise SourceError(f"unknown stereo layout '{stereo}'", subject=str(device), hint="use sbs or tb")
        self.device = device
        if live is None:
            live = isinstance(device, int) or (isinstance(device, str) and "://" in device)
        self.live = bool(live)
        if not self.live and not Path(device).is_file():
            raise SourceError("video file not found", subject=str(device))
        self.stereo = stereo
        self.left_info = load_calibration(calibration)
        self.right_info = load_calibration(right_calibration)
        self.fps = fps
        self.start_ns = int(start_ns)
        self.frame_id = frame_id
        self.gray = gray
        self.max_failures = int(max_failures)
        if rectified is None:
            rectified = self.left_info.is_rectified if self.left_info is not None else True
        self.rectified = bool(rectified)
        self.cap = cv2.VideoCapture(device if isinstance(device, int) else str(device))
        if not self.cap.isOpened():
            self.cap.release()
            what = f"camera {device}" if isinstance(device, int) else str(device)
            raise SourceError(
                "OpenCV cannot open it", subject=what,
                hint="check the camera index / permissions (ls /dev/video*)" if isinstance(device, int)
                else "is it a video OpenCV's FFmpeg backend can decode?",
            )
        if width:
            self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(width))
        if height:
            self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(height))
        container_fps = self.cap.get(cv2.CAP_PROP_FPS)
        self._fps = float(fps) if fps else (container_fps if container_fps and container_fps > 0 else 30.0)
        self._passes = 0
        count = self.cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if count and count > 0 and not self.live else None

    def _stamp(self, index: int) -> int:
        if self.live:
            return time.time_ns()
        if self.fps is None:
            pos = self.cap.get(cv2.CAP_PROP_POS_MSEC)
            if pos and pos > 0 or index == 0:
                return self.start_ns + int(round(pos * 1e6))
        return self.start_ns + int(round(index * 1e9 / self._fps))

    def _split(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self.stereo == "sbs":
            w = image.shape[1] // 2
            return np.ascontiguousarray(image[:, :w]), np.ascontiguousarray(image[:, w: 2 * w])
        if self.stereo == "tb":
            h = image.shape[0] // 2
            return np.ascontiguousarray(image[:h]), np.ascontiguousarray(image[h: 2 * h])
        return image, None

    def __iter__(self) -> Iterator[Frame]:
        if self.cap is None:
            raise SourceError("the video source is closed", subject=str(self.device))
        if self._passes and not self.live:
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # a second pass over a file starts at its beginning
            self.stats = SourceStats()
        self._passes += 1
        index = 0  # frames yielded or skipped after decoding
        reads = 0  # read attempts
        failures = 0  # consecutive failed reads
        last_stamp = None
        while failures < self.max_failures:
            ok, image = self.cap.read()
            reads += 1
            if not ok or image is None:
                if not self.live and (self.frame_count is None or reads > self.frame_count):
                    break  # the end of the file
                failures += 1
                self.stats.frames_in += 1
                self.stats.skip("unreadable video frame", f"{self.device}: frame {reads - 1} could not be read")
                continue
            failures = 0
            self.stats.frames_in += 1
            stamp = self._stamp(index)
            if last_stamp is not None and stamp <= last_stamp:
                stamp = last_stamp + 1  # keep stamps strictly increasing
            last_stamp = stamp
            if image.ndim == 3 and image.shape[2] == 4:
                image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
            if self.gray and image.ndim == 3:
                image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            left, right = self._split(image)
            bad = next((c for c in (self.left_info, self.right_info) if c is not None and (c.width, c.height) !=
                        (left.shape[1], left.shape[0])), None)
            if bad is not None:
                self.stats.skip("calibration size differs from the video",
                                f"{self.device}: calibration {bad.width}x{bad.height}, frame {left.shape[1]}x{left.shape[0]}")
                index += 1
                continue
            frame = Frame(
                header=Header(stamp, self.frame_id), left=np.ascontiguousarray(left), right=right,
                left_info=self.left_info, right_info=self.right_info, rectified=self.rectified, index=index,
            )
            self.stats.used += 1
            index += 1
            yield frame
        if failures >= self.max_failures:
            log.warning("%s: stopped after %d consecutive unreadable frames", self.device, failures)

    def close(self) -> None:
        if getattr(self, "cap", None) is not None:
            self.cap.release()
            self.cap = None


__all__ = ["VIDEO_SUFFIXES", "VideoSource"]
