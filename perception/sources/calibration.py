"""The `calibration=` option every source takes: a CameraInfo, a calibration YAML path, or None."""
from __future__ import annotations

from pathlib import Path

from perception.camera.model import CameraInfo


def load_calibration(value: str | Path | CameraInfo | None) -> CameraInfo | None:
    """The camera model given as a CameraInfo or a YAML file (`CameraInfo.from_yaml`); None stays None."""
    if value is None or isinstance(value, CameraInfo):
        return value
    return CameraInfo.from_yaml(value)


__all__ = ["load_calibration"]
