"""The robot-centred terrain map: evidence accumulates, decays and stays where it was seen in the world while the
robot drives and turns; unknown stays unknown; far cells are coarse but right; both stores behave alike."""
from __future__ import annotations

import math

import numpy as np
import pytest

from perception.errors import InputError
from perception.frame import Pose
from perception.mapping import MapConfig, TerrainMap, costs
from perception.mapping.cartesian import MultiResGrid
from perception.mapping.polar_grid import PolarGrid

GRIDS = ("cartesian", "polar")
GROUND, SUPER_OBSTACLE = 1, 4


def pose(x: float, y: float, yaw: float = 0.0, frame: str = "odom") -> Pose:
    return Pose(np.array([x, y, 0.0]), np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]), frame=frame)


def view(p: Pose, obstacles, near=2.0, far=30.0, fov_deg=70.0, n_r=400, n_a=120):
    """Deterministic ground points in the robot's field of view (uniform in 1/r, like image rows), labelled
    super-obstacle inside obstacle discs (x, y, radius) and ground elsewhere. Returns (odom points, labels)."""
    x0, y0 = p.position[:2]
    yaw = 2 * math.atan2(p.orientation[2], p.orientation[3])
    r = 1.0 / np.linspace(1.0 / near, 1.0 / far, n_r)
    a = yaw + np.radians(np.linspace(-fov_deg / 2, fov_deg / 2, n_a))
    rr, aa = np.meshgrid(r, a)
    pts = np.column_stack([x0 + (rr * np.cos(aa)).ravel(), y0 + (rr * np.sin(aa)).ravel()])
    labels = np.full(len(pts), GROUND, np.int64)
    for ox, oy, rad in obstacles:
        labels[np.hypot(pts[:, 0] - ox, pts[:, 1] - oy) <= rad] = SUPER_OBSTACLE
    return pts, labels


def cell_centres(grid):
    n_rows, n_cols = grid.data.shape
    ox, oy, _ = grid.origin_xy_yaw
    xs = ox + (np.arange(n_cols) + 0.5) * grid.resolution
    ys = oy + (np.arange(n_rows) + 0.5) * grid.resolution
    return xs, ys


def value_at(grid, x, y):
    xs, ys = cell_centres(grid)
    ox, oy, _ = grid.origin_xy_yaw
    return grid.data[int((y - oy) // grid.resolution), int((x - ox) // grid.resolution)]


def blob(grid, x0, y0, radius, threshold):
    """(centroid error m, extent x m, extent y m) of cells above `threshold` within `radius` of (x0, y0)."""
    xs, ys = cell_centres(grid)
    near = np.hypot(xs[None, :] - x0, ys[:, None] - y0) <= radius
    r, c = np.nonzero(near & (grid.data > threshold))
    assert r.size, "no obstacle cells found"
    return (math.hypot(xs[c].mean() - x0, ys[r].mean() - y0), np.ptp(xs[c]) + grid.resolution,
            np.ptp(ys[r]) + grid.resolution)


NET_OBSTACLE = int(costs.NAV2_TO_OCCUPANCY[MapConfig().unexplored_cost])  # cost above it: S > 0


@pytest.mark.parametrize("grid", GRIDS)
def test_a_new_map_is_unknown_and_grids_are_robot_centred(grid):
    tmap = TerrainMap(MapConfig(grid=grid))
    tmap.set_pose(pose(10.3, -4.7))
    g = tmap.cost_grid(resolution=0.5, size_m=20.0)
    assert g.data.shape == (40, 40) and g.data.dtype == np.int8
    assert (g.data == -1).all()
    assert g.resolution == 0.5
    # cell edges on multiples of the resolution; the robot's cell is the centre one
    assert g.origin_xy_yaw == (0.0, -15.0, 0.0)
    xs, ys = cell_centres(g)
    assert abs(xs[20] - 10.3) <= 0.25 and abs(ys[20] + 4.7) <= 0.25
    assert (tmap.class_grid(0.5, 20.0).data == -1).all()
    with pytest.raises(InputError):
        tmap.cost_grid(resolution=0.0, size_m=10.0)


@pytest.mark.parametrize("grid", GRIDS)
def test_cells_never_observed_stay_unknown(grid):
    tmap = TerrainMap(MapConfig(grid=grid))
    p = pose(0.0, 0.0, math.radians(30))
    pts, labels = view(p, [])
    tmap.add_observations(pts, labels, p)
    g = tmap.cost_grid(0.5, 100.0)
    assert value_at(g, -10.0, -5.0) == -1  # behind the robot
    assert value_at(g, 0.0, 35.0) == -1  # beside it, outside the 70 degree view
    assert value_at(g, 40.0, 0.0) == -1  # beyond the farthest observation
    seen = value_at(g, 10 * math.cos(math.radians(30)), 10 * math.sin(math.radians(30)))
    assert 0 <= seen < NET_OBSTACLE  # ground in view: known, cheaper than unexplored
    known = g.data >= 0
    # the known region is roughly the 2..30 m, 70 degree wedge: (70/360) * pi * (30^2 - 2^2) = 547 m^2
    assert 400 < known.sum() * 0.25 < 700


@pytest.mark.parametrize("grid", GRIDS)
def test_histograms_accumulate_with_weights_confidence_and_range(grid):
    tmap = TerrainMap(MapConfig(grid=grid, range_scale_m=0.0, half_life_s=0.0))
    p = pose(0.0, 0.0)
    pt = np.array([[10.05, 0.05]])
    tmap.add_observations(pt, np.array([GROUND]), p)
    tmap.add_observations(pt, np.array([[0.0, 2.0, 0.0, 0.0, 2.0]]), p)  # normalised: half ground, half obstacle
    h, _ = tmap.histogram_grid(0.1, 30.0)
    cell = h[int(15.0 / 0.1), int((15.0 + 10.05) / 0.1)]
    np.testing.assert_allclose(cell, [0, 1.5, 0, 0, 0.5], atol=1e-6)
    st = tmap.add_observations(pt, np.array([SUPER_OBSTACLE]), p, weights=[0.5], confidence=0.5)
    assert st.mass_added == pytest.approx(0.25)
    cell = tmap.histogram_grid(0.1, 30.0)[0][int(15.0 / 0.1), int((15.0 + 10.05) / 0.1)]
    np.testing.assert_allclose(cell, [0, 1.5, 0, 0, 0.75], atol=1e-6)
    # range weighting: 1 / (1 + (d / scale)^2) -> 0.5 at d = scale
    ranged = TerrainMap(MapConfig(grid=grid, range_scale_m=10.0))
    assert ranged.add_observations(pt - [0.05, 0.05], np.array([GROUND]), p).mass_added == pytest.approx(0.5)


@pytest.mark.parametrize("grid", GRIDS)
def test_evidence_decays_with_time_until_unknown(grid):
    tmap = TerrainMap(MapConfig(grid=grid, half_life_s=10.0, range_scale_m=0.0, min_evidence=0.01))
    p = pose(0.0, 0.0)
    pts = np.array([[5.05, 0.05]] * 4)
    tmap.add_observations(pts, np.full(4, SUPER_OBSTACLE), p, stamp_ns=0)

    def evidence():
        h, origin = tmap.histogram_grid(0.1, 20.0)
        return float(h[int((0.05 - origin[1]) / 0.1), int((5.05 - origin[0]) / 0.1)].sum())

    assert evidence() == pytest.approx(4.0)
    assert value_at(tmap.cost_grid(0.1, 20.0), 5.05, 0.05) == 100  # S = 2 * 4 / 5 > 1: lethal
    assert tmap.decay(10.0) == pytest.approx(0.5)
    assert evidence() == pytest.approx(2.0)
    # stamps drive the same forgetting: 20 s later -> a quarter, before the new points go in
    tmap.add_observations(np.empty((0, 2)), np.empty((0, 5)), p, stamp_ns=20_000_000_000)
    assert evidence() == pytest.approx(0.5)
    # S = 2 * 0.5 / 1.5 = 0.67: no longer lethal, cost 100 + 0.67 * 154 = 203 -> OccupancyGrid 79
    assert value_at(tmap.cost_grid(0.1, 20.0), 5.05, 0.05) == 79
    tmap.decay(100.0)  # 0.5 * 2^-10 < min_evidence: the cell is forgotten, unknown again
    assert evidence() == 0.0
    assert value_at(tmap.cost_grid(0.1, 20.0), 5.05, 0.05) == -1
    never = TerrainMap(MapConfig(grid=grid, half_life_s=0.0))
    never.add_observations(pts, np.full(4, SUPER_OBSTACLE), p)
    assert never.decay(1e5) == 1.0


@pytest.mark.parametrize("grid", GRIDS)
def test_a_drive_past_an_obstacle_keeps_it_where_it_is(grid):
    """Drive along x past a 2 m obstacle 3 m to the side of the path, seeing it only while it is ahead, then turn
    on the spot. It must stay at its world position: within two 0.2 m cells while it is 10 m behind, and within a
    cell or two of the (coarser) cells that hold it when it is 40 m behind. (An obstacle much smaller than a
    coarse cell is outvoted there by the ground around it: docs/mapping.md.)"""
    obstacle = (20.3, 3.4, 1.0)
    tmap = TerrainMap(MapConfig(grid=grid))

    def drive(x_from, x_to):
        for x in np.arange(x_from, x_to + 1e-9, 0.5):
            p = pose(float(x), 0.0)
            pts, labels = view(p, [obstacle])
            tmap.add_observations(pts, labels, p)

    def check(tolerance):
        g = tmap.cost_grid(0.1, 120.0)
        err, ex, ey = blob(g, obstacle[0], obstacle[1], 5.0, NET_OBSTACLE)
        assert err <= tolerance
        assert 1.0 < ex <= 2.0 + 2 * tolerance and 1.0 < ey <= 2.0 + 2 * tolerance  # a 2 m disc
        assert value_at(g, obstacle[0], obstacle[1]) > NET_OBSTACLE
        assert 0 <= value_at(g, 20.0, -2.0) < NET_OBSTACLE  # the ground across the path: cheaper than unexplored

    drive(0.0, 30.0)
    check(0.4)
    for yaw in (math.pi / 2, math.pi, -math.pi / 2):
        tmap.set_pose(pose(30.0, 0.0, yaw))
    check(0.4)
    drive(30.0, 60.0)
    tmap.set_pose(pose(60.0, 0.0, math.pi))
    cell = max(tmap.store.cell_size(40.0))
    check(max(0.4, 1.5 * cell))
    if grid == "polar":
        assert tmap.store.recentred >= 20  # it really was re-projected many times (every 2.5 m)


@pytest.mark.parametrize("grid", GRIDS)
def test_far_cells_are_coarser_but_right_at_100m(grid):
    """A 4 m obstacle 100 m ahead and a 1 m one 10 m ahead, seen from the start: both where they are; the far
    one in coarser cells."""
    far_obstacle, near_obstacle = (100.7, 1.3, 2.0), (10.0, -1.0, 0.5)
    tmap = TerrainMap(MapConfig(grid=grid))
    p = pose(0.0, 0.0)
    for near, far, n_r in ((2.0, 20.0, 200), (80.0, 120.0, 300)):
        pts, labels = view(p, [far_obstacle, near_obstacle], near=near, far=far, fov_deg=20, n_r=n_r, n_a=400)
        tmap.add_observations(pts, labels, p)
    g = tmap.cost_grid(0.1, 240.0)
    assert value_at(g, far_obstacle[0], far_obstacle[1]) > NET_OBSTACLE
    assert value_at(g, near_obstacle[0], near_obstacle[1]) > NET_OBSTACLE
    far_err, far_x, far_y = blob(g, far_obstacle[0], far_obstacle[1], 15.0, NET_OBSTACLE)
    near_err, near_x, near_y = blob(g, near_obstacle[0], near_obstacle[1], 3.0, NET_OBSTACLE)
    cell_x, cell_y = tmap.store.cell_size(100.0)
    assert far_err <= 0.5 * math.hypot(cell_x, cell_y) + 1.0  # within half a far cell
    assert near_err < 0.3
    assert far_x * far_y > 4 * near_x * near_y  # coarser far away
    assert far_x <= 4.0 + 2 * cell_x and far_y <= 4.0 + 2 * cell_y  # but not smeared beyond a cell each side
    assert value_at(g, 100.0, 12.0) < NET_OBSTACLE  # the ground 10 m beside it is not an obstacle


@pytest.mark.parametrize("grid", GRIDS)
def test_base_link_points_are_transformed_with_the_pose(grid):
    p = pose(5.0, -2.0, math.radians(120))
    rel = np.array([[10.0, 0.0], [20.0, 5.0], [7.0, -3.0]])
    yaw = math.radians(120)
    rot = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    a, b = TerrainMap(MapConfig(grid=grid)), TerrainMap(MapConfig(grid=grid))
    a.add_observations(rel, np.array([1, 4, 0]), p, frame="base_link")
    b.add_observations(rel @ rot.T + [5.0, -2.0], np.array([1, 4, 0]), p)
    np.testing.assert_allclose(a.histogram_grid(0.2, 60.0)[0], b.histogram_grid(0.2, 60.0)[0], atol=1e-5)
    assert np.array_equal(a.cost_grid(0.2, 60.0).data, b.cost_grid(0.2, 60.0).data)
    with pytest.raises(InputError, match="frame"):
        a.add_observations(rel, np.array([1, 4, 0]), p, frame="map")


@pytest.mark.parametrize("grid", GRIDS)
def test_bad_points_are_dropped_and_counted(grid):
    tmap = TerrainMap(MapConfig(grid=grid))
    p = pose(0.0, 0.0)
    pts = np.array([[5.0, 0.0], [np.nan, 1.0], [5.0, 1.0], [5.0, 2.0], [5.0, 3.0], [500.0, 0.0], [6.0, 0.0]])
    probs = np.tile(np.eye(5, dtype=np.float32)[1], (7, 1))
    probs[2, 0] = np.nan
    probs[3] = [-1, 2, 0, 0, 0]
    weights = np.array([1, 1, 1, 1, -1, 1, np.inf])
    st = tmap.add_observations(pts, probs, p, weights=weights)
    assert (st.n_input, st.n_added, st.n_dropped_nonfinite, st.n_out_of_range) == (7, 1, 5, 1)
    st = tmap.add_observations(pts[:3], np.array([1, 7, -1]), p)  # labels out of 0..4 are dropped
    assert st.n_added == 1 and st.n_dropped_nonfinite == 2
    with pytest.raises(InputError, match="points_xy"):
        tmap.add_observations(np.zeros((3, 4)), np.zeros((3, 5)), p)
    with pytest.raises(InputError, match="class_probs"):
        tmap.add_observations(np.zeros((3, 2)), np.zeros((3, 4)), p)
    with pytest.raises(InputError, match="weights"):
        tmap.add_observations(np.zeros((3, 2)), np.zeros((3, 5)), p, weights=[1, 2])
    with pytest.raises(InputError, match="confidence"):
        tmap.add_observations(np.zeros((3, 2)), np.zeros((3, 5)), p, confidence=1.5)
    with pytest.raises(InputError, match="frame"):
        tmap.set_pose(pose(0.0, 0.0, frame="map"))  # the map is in odom now


def test_class_grid_shows_the_most_likely_class():
    tmap = TerrainMap(MapConfig(range_scale_m=0.0))
    p = pose(0.0, 0.0)
    probs = np.array([[0.1, 0.2, 0.6, 0.1, 0.0], [0.0, 0.0, 0.0, 0.3, 0.7]], np.float32)
    tmap.add_observations(np.array([[3.05, 1.05], [8.05, -2.05]]), probs, p)
    g = tmap.class_grid(0.2, 20.0)  # the store's own 0.2 m cells
    assert value_at(g, 3.05, 1.05) == 2 and value_at(g, 8.05, -2.05) == 4
    assert np.count_nonzero(g.data >= 0) == 2


def test_polar_geometry_is_the_lagr_one():
    g = PolarGrid()
    edges = g.radial_edges
    assert len(edges) == 151 and g.n_angular == 400
    np.testing.assert_allclose(np.diff(edges[:76]), 0.2)  # 0.2 m cells to 15 m
    assert edges[75] == pytest.approx(15.0) and edges[-1] == pytest.approx(350.0)
    inv = 1.0 / edges[75:]
    np.testing.assert_allclose(np.diff(inv), np.diff(inv)[0])  # equal steps in 1/r
    assert g.cell_size(15.1)[0] == pytest.approx(0.19, abs=0.01)  # continuous at 15 m
    radial, angular = g.cell_size(100.0)
    assert 7.5 < radial < 9.5 and angular == pytest.approx(2 * math.pi * 100 / 400)
    r = np.linspace(0, 199.9, 5000)
    idx = g.radial_index(r)
    assert np.all(np.diff(idx) >= 0) and idx[0] == 0
    assert np.all(edges[idx] <= r + 1e-9) and np.all(r < edges[idx + 1] + 1e-9)
    assert g.radial_index(np.array([200.1, np.nan, np.inf])).tolist() == [-1, -1, -1]


def test_polar_recentring_moves_evidence_with_its_centroid():
    g = PolarGrid(recentre_distance=1.0)
    x = np.array([57.3, 57.9, -20.0])
    y = np.array([12.1, 12.3, 30.0])
    contrib = np.array([[0, 1, 0, 0, 0], [0, 0, 0, 0, 2], [1, 0, 0, 0, 0]], np.float32)
    g.add(x, y, contrib, contrib.sum(axis=1))
    mass = g.bins.sum()
    assert not g.move_to(0.5, 0.5)  # within the re-centring distance: nothing happens
    for k in range(1, 31):  # 30 re-centres along x, 1.5 m each
        assert g.move_to(1.5 * k, 0.0)
    assert g.bins.sum() == pytest.approx(mass, rel=1e-5)
    cx, cy = g.centroids()
    live = np.flatnonzero(g.bins.sum(axis=0) > 0)
    got = sorted(zip(cx[live].round(3), cy[live].round(3)))
    # the two near points merged (same cell) at their weighted centroid; the far one is exactly where it was
    assert got == [(-20.0, 30.0), (pytest.approx((57.3 + 2 * 57.9) / 3, abs=1e-3), pytest.approx(12.233, abs=1e-3))]
    g.move_to(400.0, 0.0)  # everything now beyond max_range: dropped, and counted
    assert g.bins.sum() == 0 and g.dropped_on_recentre == pytest.approx(mass, rel=1e-5)


def test_cartesian_windows_roll_without_loss():
    g = MultiResGrid(cells=(0.2, 1.0), sizes=(8.0, 40.0))
    contrib = np.array([[0, 1, 0, 0, 3]], np.float32)
    g.add(np.array([2.05]), np.array([1.05]), contrib)
    for x in np.arange(0.0, 3.0, 0.13):  # small moves: the fine window rolls cell by cell
        g.move_to(x, -0.7 * x)
    fine, coarse = g.lookup(np.array([2.05]), np.array([1.05]))
    np.testing.assert_allclose(fine[1][:, fine[0][0]], [0, 1, 0, 0, 3])
    np.testing.assert_allclose(coarse[1][:, coarse[0][0]], [0, 1, 0, 0, 3])
    assert fine[1].sum() == pytest.approx(4.0)  # nothing duplicated or smeared
    g.move_to(12.0, 0.0)  # the point left the 8 m fine window: forgotten there, kept in the coarse level
    fine, coarse = g.lookup(np.array([2.05]), np.array([1.05]))
    assert fine[0][0] == -1 and fine[1].sum() == 0
    assert coarse[1][:, coarse[0][0]].sum() == pytest.approx(4.0)
    g.move_to(500.0, 0.0)  # beyond every window
    assert g.total_mass() == 0.0


def test_config_is_validated():
    with pytest.raises(InputError, match="grid"):
        MapConfig(grid="hex")
    with pytest.raises(InputError, match="half_life_s"):
        MapConfig(half_life_s=-1.0)
    with pytest.raises(InputError, match="cartesian"):
        MapConfig(cartesian_cells_m=(1.0, 0.2), cartesian_sizes_m=(10.0, 100.0))
    with pytest.raises(InputError, match="ordered"):
        MapConfig(class_weights=(2, 1, 0, -1, -2))
    assert MapConfig.describe()["grid"]["choices"] == ("polar", "cartesian")


def test_config_tuples_are_checked_per_element_and_stored_as_float_tuples():
    cfg = MapConfig(cartesian_cells_m=[0.5, 2], cartesian_sizes_m=[20, 100], class_weights=[-2, -1, 0, 1, 2])
    assert cfg.cartesian_cells_m == (0.5, 2.0) and cfg.cartesian_sizes_m == (20.0, 100.0)
    assert cfg.class_weights == (-2.0, -1.0, 0.0, 1.0, 2.0)
    assert all(type(v) is float for v in cfg.class_weights)
    with pytest.raises(InputError, match="MapConfig.class_weights.*must have 5 elements"):
        MapConfig(class_weights=(-1.0, 1.0))
    with pytest.raises(InputError, match="MapConfig.cartesian_sizes_m.*element 1"):
        MapConfig(cartesian_sizes_m=(32.0, float("nan"), 416.0))
    with pytest.raises(InputError, match="MapConfig.cartesian_cells_m.*list of numbers"):
        MapConfig(cartesian_cells_m=0.2)
    with pytest.raises(InputError, match="MapConfig.max_range_m"):
        MapConfig(max_range_m=True)


def test_map_names_are_re_exported_from_the_package():
    import perception.mapping as mapping
    from perception.mapping import terrain_map

    for name in ("GRIDS", "MapConfig", "MapGrid", "ObservationStats", "TerrainMap", "pose_xy_yaw"):
        assert getattr(mapping, name) is getattr(terrain_map, name)
    assert set(mapping.__all__) >= {"MapConfig", "MapGrid", "TerrainMap"}
