"""The synthetic world: deterministic, geometrically exact, complete ground truth, a change at change_frame."""
from __future__ import annotations

import json

import numpy as np
import pytest

from perception.frame import Frame
from perception.sim import TERRAIN_CLASSES, TERRAIN_NONE, SimConfig, SimWorld
from perception.sim import config as C


def _cam_points(frame: Frame, mask: np.ndarray) -> np.ndarray:
    """3D points (N, 3) in odom of the masked left pixels, from truth depth and the camera model alone."""
    info, depth = frame.left_info, frame.truth["depth"]
    v, u = np.nonzero(mask)
    z = depth[v, u].astype(np.float64)
    cam = np.stack([(u - info.cx) / info.fx * z, (v - info.cy) / info.fy * z, z, np.ones_like(z)])
    return (frame.truth["camera_pose"] @ cam)[:3].T


def test_same_seed_same_frames_and_another_seed_differs():
    cfg = dict(width=96, height=72, frames=6)
    a, b, c = SimWorld(SimConfig(seed=7, **cfg)), SimWorld(SimConfig(seed=7, **cfg)), SimWorld(SimConfig(seed=8, **cfg))
    fa, fb, fc = a.render(4), b.render(4), c.render(4)
    assert np.array_equal(fa.left, fb.left) and np.array_equal(fa.right, fb.right)
    for key in ("depth", "terrain_class", "semantic", "instance"):
        assert np.array_equal(fa.truth[key], fb.truth[key]), key
    assert json.dumps(fa.truth["objects"]) == json.dumps(fb.truth["objects"])
    assert fa.header == fb.header and np.allclose(fa.pose.position, fb.pose.position)
    assert not np.array_equal(fa.left, fc.left)
    assert not np.allclose(fa.pose.position, fc.pose.position)


def test_frames_are_independent_of_render_order_and_drive_length(small_world):
    first = small_world.render(7)
    small_world.render(30)
    again = small_world.render(7)
    assert np.array_equal(first.left, again.left) and np.array_equal(first.truth["depth"], again.truth["depth"])
    longer = SimWorld(SimConfig(seed=3, width=160, height=120, frames=80, change_frame=20))
    assert np.array_equal(longer.render(7).left, first.left)


def test_camera_models_are_a_rectified_pair(small_frame, small_world):
    left, right = small_frame.left_info, small_frame.right_info
    assert left.is_rectified and (left.width, left.height) == (160, 120)
    assert right.P[0, 3] == pytest.approx(-left.fx * small_world.cfg.baseline)
    assert np.degrees(2 * np.arctan(left.width / 2 / left.fx)) == pytest.approx(small_world.cfg.hfov_deg)
    assert small_frame.left.shape == (120, 160, 3) and small_frame.left.dtype == np.uint8
    assert small_frame.right.shape == small_frame.left.shape
    # the right camera is the left one moved by the baseline along its own x axis
    T_l, T_r = small_frame.truth["camera_pose"], small_frame.truth["camera_pose_right"]
    assert np.allclose(np.linalg.inv(T_l) @ T_r[:, 3], [small_world.cfg.baseline, 0, 0, 1], atol=1e-9)


def test_disparity_is_fx_baseline_over_depth(small_frame):
    t = small_frame.truth
    fxb = np.float32(small_frame.left_info.fx * 0.12)
    finite = np.isfinite(t["depth"])
    assert finite.any() and (~finite).any()
    assert t["disparity"].dtype == np.float32 and t["depth"].dtype == np.float32
    assert np.array_equal(t["disparity"][finite], fxb / t["depth"][finite])
    assert np.all(t["disparity"][~finite] == 0)
    assert np.all(t["depth"][finite] > 0.1)


def test_depth_puts_ground_pixels_on_the_ground(small_world, small_frame):
    ground = np.isfinite(small_frame.truth["depth"]) & (small_frame.truth["instance"] < 0)
    p = _cam_points(small_frame, ground)
    gap = p[:, 2] - small_world.terrain.height(p[:, 0].astype(np.float32), p[:, 1].astype(np.float32))
    near = np.linalg.norm(p[:, :2] - small_frame.pose.position[:2], axis=1) < 60
    assert np.median(np.abs(gap[near])) < 0.005
    assert np.percentile(np.abs(gap[near]), 99) < 0.05


def test_right_depth_agrees_with_left_depth_through_the_disparity(small_frame):
    t = small_frame.truth
    v, u = np.nonzero(np.isfinite(t["depth"]) & (t["depth"] < 40) & (t["instance"] < 0))
    ur = u - t["disparity"][v, u]
    inside = ur >= 1
    v, u, ur = v[inside], u[inside], ur[inside]
    u0 = np.floor(ur).astype(int)
    w = ur - u0
    zr = (1 - w) * t["depth_right"][v, u0] + w * t["depth_right"][v, u0 + 1]
    rel = np.abs(zr - t["depth"][v, u]) / t["depth"][v, u]
    assert np.median(rel) < 2e-3 and np.mean(rel < 0.02) > 0.95


def test_opencv_sgbm_recovers_the_ground_truth_disparity(stereo_world):
    cv2 = pytest.importorskip("cv2")
    frame = stereo_world.render(6)
    gl, gr = (cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) for img in (frame.left, frame.right))
    sgbm = cv2.StereoSGBM_create(minDisparity=0, numDisparities=64, blockSize=5, P1=200, P2=800, uniquenessRatio=5,
                                 mode=cv2.STEREO_SGBM_MODE_HH)
    disp = sgbm.compute(gl, gr).astype(np.float32) / 16.0
    t = frame.truth
    near_ground = (t["semantic"] >= C.ROAD) & (t["semantic"] <= C.GROUND) & (t["depth"] < 12.0)
    near_ground[:, :70] = False  # no disparity search range at the left border
    valid = near_ground & (disp > 0)
    assert valid.sum() > 0.4 * near_ground.sum() > 1000
    err = np.abs(disp - t["disparity"])[valid]
    assert np.mean(err <= 1.0) > 0.9
    assert np.median(err) < 0.3


def test_class_maps_cover_the_image_with_sky_on_top(small_world):
    for i in (0, 25):
        t = small_world.render(i).truth
        terrain, sem, depth = t["terrain_class"], t["semantic"], t["depth"]
        assert terrain.dtype == np.uint8 and sem.dtype == np.uint8 and terrain.shape == depth.shape
        assert set(np.unique(terrain)) <= set(range(len(TERRAIN_CLASSES))) | {TERRAIN_NONE}
        assert set(np.unique(sem)) <= set(range(len(C.SEMANTIC_CLASSES)))
        sky = sem == C.SKY
        assert np.array_equal(sky, ~np.isfinite(depth))
        assert np.all(terrain[sky] == TERRAIN_NONE) and np.all(t["instance"][sky] == -1)
        assert np.array_equal(np.isnan(t["traversability"]), sky)
        assert sky[0].mean() > 0.5 and not sky[-1].any()
        assert np.isin(terrain[-10:], [C.PATH, C.GRASS, C.GRAVEL, C.MUD, C.TALL_GRASS, C.ROCKS]).mean() > 0.9
        assert np.nanmax(depth[np.isfinite(depth)]) > 300.0  # the ground goes on far beyond stereo range
        trav = np.asarray(C.TRAVERSABILITY, np.float32)
        ground = (terrain != TERRAIN_NONE)
        assert np.array_equal(t["traversability"][ground], trav[terrain[ground]])


def test_horizon_row_follows_camera_pitch_and_no_sky_below_it(small_world):
    info = small_world.left_info
    for i in (0, 11, 33):
        t = small_world.render(i).truth
        pitch = np.radians(small_world.cfg.pitch_deg) + t["pitch"]
        centre = int(round(info.cx))
        assert abs(t["roll"]) < np.radians(5)
        assert t["horizon_row"][centre] == pytest.approx(info.cy - info.fy * np.tan(pitch), abs=0.5)
        rows = np.arange(info.height)[:, None]
        below = rows > t["horizon_row"][None, :] + 1.0
        assert not (below & ~np.isfinite(t["depth"])).any()


def test_horizon_tilts_with_roll():
    from perception.sim.truth import horizon_row

    world = SimWorld(SimConfig(seed=5, width=160, height=120, frames=60, bumps=3.0))
    slopes, rolls = [], []
    for i in range(0, 60, 6):
        state = world.drive.state(i)
        h = horizon_row(world.drive.cameras(state)[0], world.left_info)
        slopes.append((h[-1] - h[0]) / (len(h) - 1))
        rolls.append(state.roll)
    assert np.ptp(rolls) > np.radians(1.0)
    # rolling left side up (positive roll, REP-103) turns the image clockwise: the horizon rises to the right
    assert np.corrcoef(slopes, rolls)[0, 1] < -0.99
    assert np.allclose(slopes, -np.tan(rolls), atol=0.01)
    assert np.array_equal(world.render(6).truth["horizon_row"], horizon_row(world.drive.cameras(world.drive.state(6))[0],
                                                                          world.left_info))


def test_object_list_is_consistent_with_geometry_and_pixels(small_world):
    seen_actor = False
    for i in range(0, 40, 4):
        f = small_world.render(i)
        T = f.truth["camera_pose"]
        info = f.left_info
        for ob in f.truth["objects"]:
            pw, pc = np.array(ob["position_world"]), np.array(ob["position_camera"])
            assert np.allclose(np.linalg.inv(T) @ np.r_[pw, 1], np.r_[pc, 1], atol=2e-3)
            assert ob["distance"] == pytest.approx(np.linalg.norm(pc), abs=2e-3)
            x0, y0, x1, y1 = ob["box2d"]
            assert 0 <= x0 <= x1 <= info.width - 1 and 0 <= y0 <= y1 <= info.height - 1
            pix = f.truth["instance"] == ob["id"]
            assert pix.sum() == ob["pixels_visible"] <= ob["pixels_unoccluded"]
            assert 0.0 <= ob["occlusion"] <= 1.0 and 0.0 <= ob["truncation"] <= 1.0
            if ob["pixels_visible"]:
                bx0, by0, bx1, by1 = ob["box2d_visible"]
                assert x0 - 1 <= bx0 and y0 - 1 <= by0 and bx1 <= x1 + 1 and by1 <= y1 + 1
            if ob["truncation"] == 0.0 and pc[2] > 1.0:
                u, v = info.cx + info.fx * pc[0] / pc[2], info.cy + info.fy * pc[1] / pc[2]
                assert x0 - 1 <= u <= x1 + 1 and y0 - 1 <= v <= y1 + 1
            if ob["cls"] in C.ACTOR_CLASSES:
                seen_actor = True
                assert np.all(f.truth["terrain_class"][pix] == TERRAIN_NONE)
                assert np.all(f.truth["semantic"][pix] == C.OBJECT_SEMANTIC[ob["cls"]])
    assert seen_actor


def test_moving_actors_move_with_their_velocity(small_world):
    a, b = small_world.render(10), small_world.render(12)
    dt = 2 / small_world.cfg.fps
    before = {o["id"]: o for o in a.truth["objects"] if o["dynamic"]}
    moved = 0
    for o in b.truth["objects"]:
        if o["id"] in before:
            p0, p1 = np.array(before[o["id"]]["position_world"]), np.array(o["position_world"])
            v = np.array(before[o["id"]]["velocity_world"])
            assert np.linalg.norm(v) > 0.3
            assert np.linalg.norm((p1 - p0)[:2] - v[:2] * dt) < 0.15 * np.linalg.norm(v) * dt + 0.05
            moved += 1
    assert moved > 0


def test_new_terrain_class_appears_at_change_frame():
    world = SimWorld(SimConfig(seed=2, width=96, height=72, frames=10, change="new_class", change_class=C.MUD,
                               change_frame=4))
    before, after = world.render(3), world.render(4)
    assert not before.truth["change"]["active"] and after.truth["change"]["active"]
    assert before.truth["change_frame"] == after.truth["change_frame"] == 4
    assert not (before.truth["terrain_class"] == C.MUD).any()
    assert not (before.truth["map"]["terrain_class"] == C.MUD).any()
    assert (after.truth["map"]["terrain_class"] == C.MUD).mean() > 0.01
    assert world.traversability_map(9) is after.truth["map"]


def test_appearance_of_a_class_changes_at_change_frame():
    cfg = dict(seed=4, width=128, height=96, frames=10, change="appearance", change_class=C.GRASS)
    old = SimWorld(SimConfig(change_frame=100, **cfg)).render(2)
    new = SimWorld(SimConfig(change_frame=2, **cfg)).render(2)
    assert np.array_equal(old.truth["terrain_class"], new.truth["terrain_class"])
    cls = old.truth["terrain_class"]
    grass, road = cls == C.GRASS, cls == C.PATH
    assert grass.sum() > 200 and road.sum() > 200
    diff = np.abs(old.left.astype(int) - new.left.astype(int)).sum(axis=2)
    assert diff[grass].mean() > 40 and diff[road].mean() < 3


def test_header_pose_and_static_transform(small_world):
    f = small_world.render(9)
    cfg = small_world.cfg
    assert f.header.frame_id == "left_camera_optical_frame" and f.index == 9
    assert f.header.stamp_ns == cfg.epoch_ns + int(round(9 * 1e9 / cfg.fps))
    assert f.pose.frame == "odom" and f.pose.child_frame == "base_link"
    assert np.linalg.norm(f.pose.orientation) == pytest.approx(1.0)
    assert np.allclose(f.pose.matrix() @ f.truth["T_base_camera"], f.truth["camera_pose"], atol=1e-9)
    cam_in_base = f.truth["T_base_camera"][:3, 3]
    assert cam_in_base[2] == pytest.approx(cfg.camera_height) and cam_in_base[1] == pytest.approx(cfg.baseline / 2)
    # the optical z axis looks forward and pitch_deg down in base_link
    z_axis = f.truth["T_base_camera"][:3, 2]
    assert z_axis[0] > 0.9 and np.degrees(np.arcsin(-z_axis[2])) == pytest.approx(cfg.pitch_deg)
    assert small_world.render(0).pose.position == pytest.approx([0.0, 0.0, 0.0], abs=0.05)


def test_top_down_map_covers_the_drive_and_the_road_is_under_the_vehicle(small_world):
    m = small_world.traversability_map()
    assert m["traversability"].shape == (m["height"], m["width"]) == m["terrain_class"].shape
    assert m["traversability"].dtype == np.float32 and 0 <= m["traversability"].min() <= m["traversability"].max() <= 1
    assert m["frame_id"] == "odom" and m["resolution"] > 0
    res, (x0, y0) = m["resolution"], m["origin"]
    for i in range(0, 40, 5):
        p = small_world.render(i).pose.position if i == 0 else small_world.drive.state(i).position
        col, row = int((p[0] - x0) / res), int((p[1] - y0) / res)
        assert 0 <= row < m["height"] and 0 <= col < m["width"]
        assert m["terrain_class"][row, col] == C.PATH
    present = set(np.unique(m["terrain_class"]))
    assert {C.PATH, C.GRASS, C.TREES} <= present
    assert m["width"] * res > 200 and m["height"] * res > 200


def test_config_rejects_nonsense(small_world):
    with pytest.raises(ValueError):
        SimConfig(change="flood")
    with pytest.raises(ValueError):
        SimConfig(change_class=C.TREES)
    with pytest.raises(ValueError):
        SimConfig.with_size("640by480")
    assert (SimConfig.with_size("320x240").width, SimConfig.with_size((320, 240)).height) == (320, 240)
    with pytest.raises(IndexError):
        small_world.render(small_world.cfg.frames)


def test_lighting_and_exposure_change_along_the_drive(small_world):
    light = [small_world.render(i).truth["lighting"] for i in (0, 13, 26, 39)]
    suns = [lt["sun"] for lt in light]
    assert max(suns) - min(suns) > 0.05
    assert all(0.4 <= lt["sun"] <= 1.6 and 0.5 <= lt["exposure"] <= 2.0 for lt in light)
    flat = SimWorld(SimConfig(seed=3, width=160, height=120, frames=40, change_frame=20, exposure_variation=0.0))
    assert {flat.render(i).truth["lighting"]["sun"] for i in (0, 39)} == {1.0}
