"""The robot-centred long-range terrain map (REFERENCE.md section 1; docs/mapping.md).

`TerrainMap` (with `MapConfig`, `MapGrid`) lives in `perception.mapping.terrain_map`, whose docstring describes
the evidence, forgetting, stores and output grids; the names are re-exported here. Submodules: `costs` (the LAGR
cost formula and Nav2 conventions), `cartesian` / `polar_grid` (the histogram stores), `render`.

    tmap = TerrainMap(MapConfig())
    tmap.add_observations(points_xy, class_probs, robot_pose, weights=stereo_or_window_weights,
                          confidence=classifier.confidence, stamp_ns=header.stamp_ns)
    grid = tmap.cost_grid(resolution=0.5, size_m=200.0)   # MapGrid(data int8 HxW 0..100/-1, resolution, origin)
"""
from __future__ import annotations

from perception.mapping import costs
from perception.mapping.terrain_map import GRIDS, MapConfig, MapGrid, ObservationStats, TerrainMap, pose_xy_yaw

__all__ = ["GRIDS", "MapConfig", "MapGrid", "ObservationStats", "TerrainMap", "costs", "pose_xy_yaw"]
