"""Camera models from ROS camera_info (messages and camera_calibration YAML), rectification."""
from perception.camera.model import CameraInfo, stereo_baseline

__all__ = ["CameraInfo", "stereo_baseline"]
