"""Stereo: disparity on the CPU (semi-global matching made trustworthy), triangulation, evaluation.

docs/stereo.md has the method and the measured numbers; `perception eval stereo` reproduces them.
"""
from perception.stereo.disparity import DisparityConfig, DisparityResult, compute_disparity
from perception.stereo.points import (
    StereoGeometry, depth_to_disparity, disparity_to_depth, disparity_to_points, stereo_geometry,
)

__all__ = [
    "DisparityConfig", "DisparityResult", "compute_disparity",
    "StereoGeometry", "depth_to_disparity", "disparity_to_depth", "disparity_to_points", "stereo_geometry",
]
