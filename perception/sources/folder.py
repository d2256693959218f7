"""Frames from a folder of images.

Layouts, tried in this order:
* stereo sub-folders: `left/` + `right/`, `cam0/` + `cam1/` (EuRoC, images in `cam*/data/`, also under `mav0/`),
  `image_0/` + `image_1/` (KITTI grey) or `image_2/` + `image_3/` (KITTI colour); pairs matched by file name;
* stereo files in one folder: `left*` / `right*` (e.g. left01.jpg + right01.jpg), matched by the rest of the name;
* otherwise every image in the folder is one mono frame.

Stamps: when every file name is a number, it is the stamp: >= 1e15 is nanoseconds (EuRoC), a decimal like
1317384588.915 is seconds; otherwise frames are `1/fps` apart from `start_ns`, in natural name order.
Images are read unchanged and converted to the pipeline's BGR uint8 / mono uint8 (16-bit stays uint16 unless
`mono16_scale`; `gray=True` converts colour to mono). Calibration YAMLs are optional.
An unreadable image or a left without its right is skipped and counted; the iteration continues.
"""
from __future__ import annotations

import logging
import re
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

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".pnm", ".webp", ".jp2")
STEREO_DIRS = (("left", "right"), ("cam0", "cam1"), ("image_0", "image_1"), ("image_2", "image_3"))


def _images(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _image_dir(folder: Path) -> Path:
    data = folder / "data"
    return data if data.is_dir() else folder


def _stamp_from_name(stem: str) -> int | None:
    if re.fullmatch(r"\d+", stem) and int(stem) >= 10**15:
        return int(stem)
    if re.fullmatch(r"\d{9,}\.\d+", stem):
        sec, frac = stem.split(".")
        return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])
    return None


class FolderSource(FrameSource):
    """See the module doc."""

    def __init__(
        self,
        path: str | Path,
        *,
        calibration: str | Path | CameraInfo | None = None,
        right_calibration: str | Path | CameraInfo | None = None,
        fps: float = 10.0,
        start_ns: int = 0,
        frame_id: str = "camera",
        rectified: bool | None = None,
        mono16_scale: float | None = None,
        gray: bool = False,
        mono: bool = False,
    ) -> None:
        super().__init__()
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise SourceError("image folder not found", subject=str(self.path))
        if fps <= 0:
            raise SourceError(f"fps={fps} must be positive", subject=str(self.path))
        self.left_info = load_calibration(calibration)
        self.right_info = load_calibration(right_calibration)
        self.fps = float(fps)
        self.start_ns = int(start_ns)
        self.frame_id = frame_id
        self.mono16_scale = mono16_scale
        self.gray = gray
        if rectified is None:
            rectified = self.left_info.is_rectified if self.left_info is not None else True
        self.rectified = bool(rectified)
        # entries: (key, left path or None, right path or None)
        self.entries, self.layout = self._scan(mono)
        if not self.entries:
            raise SourceError("contains no images", subject=str(self.path),
                              hint=f"image types: {', '.join(IMAGE_SUFFIXES)}")
        self.is_stereo = self.layout != "mono"
        self.stamps = self._stamps()
        log.info("%s: %s, %d frames", self.path, self.layout, len(self.entries))

    def _scan(self, mono: bool) -> tuple[list[tuple[str, Path | None, Path | None]], str]:
        roots = [self.path] + ([self.path / "mav0"] if (self.path / "mav0").is_dir() else [])
        if not mono:
            for root in roots:
                for a, b in STEREO_DIRS:
                    if (root / a).is_dir() and (root / b).is_dir():
                        left = {p.stem: p for p in _images(_image_dir(root / a))}
                        right = {p.stem: p for p in _images(_image_dir(root / b))}
                        if left or right:
                            keys = sorted(set(left) | set(right), key=_natural)
                            return [(k, left.get(k), right.get(k)) for k in keys], f"stereo folders {a}/ + {b}/"
        files = _images(self.path)
        if not mono:
            left = {p.stem[4:].lstrip("_-"): p for p in files if p.stem.lower().startswith("left")}
            right = {p.stem[5:].lstrip("_-"): p for p in files if p.stem.lower().startswith("right")}
            if left and right:
                keys = sorted(set(left) | set(right), key=_natural)
                return [(k, left.get(k), right.get(k)) for k in keys], "stereo files left*/right*"
        files.sort(key=lambda p: _natural(p.name))
        return [(p.stem, p, None) for p in files], "mono"

    def _stamps(self) -> list[int]:
        from_names = [_stamp_from_name(k) for k, _, _ in self.entries]
        if all(s is not None for s in from_names) and len(set(from_names)) == len(from_names):
            order = sorted(range(len(self.entries)), key=lambda i: from_names[i])
            self.entries = [self.entries[i] for i in order]
            return [from_names[i] for i in order]  # type: ignore[misc]
        return [self.start_ns + int(round(i * 1e9 / self.fps)) for i in range(len(self.entries))]

    def __len__(self) -> int:
        return len(self.entries)

    def _read(self, path: Path) -> np.ndarray | None:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None or image.size == 0:
            return None
        if image.ndim == 3 and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.dtype == np.uint16 and self.mono16_scale is not None:
            image = np.clip(np.rint(image.astype(np.float32) * self.mono16_scale), 0, 255).astype(np.uint8)
        elif image.dtype not in (np.uint8, np.uint16):
            return None
        if self.gray and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return np.ascontiguousarray(image)

    def __iter__(self) -> Iterator[Frame]:
        self.stats = SourceStats()  # each pass counts afresh
        for index, ((key, lpath, rpath), stamp) in enumerate(zip(self.entries, self.stamps)):
            self.stats.frames_in += 1
            if lpath is None:
                self.stats.skip("right image without a left image", f"{rpath}")
                continue
            if self.is_stereo and rpath is None:
                self.stats.skip("left image without a right image", f"{lpath}")
                continue
            left = self._read(lpath)
            right = self._read(rpath) if rpath is not None else None
            bad = lpath if left is None else (rpath if rpath is not None and right is None else None)
            if bad is not None:
                self.stats.skip("unreadable image", f"{bad}: not an 8/16-bit image OpenCV can read")
                continue
            if right is not None and right.shape != left.shape:
                self.stats.skip("stereo image sizes differ", f"{lpath.name} {left.shape}, {rpath.name} {right.shape}")
                continue
            cal = next((c for c in (self.left_info, self.right_info) if c is not None and (c.width, c.height) !=
                        (left.shape[1], left.shape[0])), None)
            if cal is not None:
                self.stats.skip("calibration size differs from the images",
                                f"{lpath}: calibration {cal.width}x{cal.height}, image {left.shape[1]}x{left.shape[0]}")
                continue
            frame = Frame(
                header=Header(stamp, self.frame_id), left=left, right=right, left_info=self.left_info,
                right_info=self.right_info if self.is_stereo else None, rectified=self.rectified, index=index,
            )
            self.stats.used += 1
            yield frame


__all__ = ["FolderSource", "IMAGE_SUFFIXES"]
