"""perception.viewer.overlay: each layer changes the pixels where it has content and nowhere else."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pytest

from perception.errors import InputError
from perception.frame import Frame, Header
from perception.io.detections import Detection2D
from perception.mapping import MapGrid
from perception.pipeline.core import FrameResult
from perception.stereo.windows import LABEL_COLORS
from perception.viewer import overlay as O


@dataclass
class Scene:
    """The scene stage's output as the viewer expects it (issue 7): class per pixel + BGR colour per class."""

    class_mask: np.ndarray
    colors: np.ndarray


@dataclass
class Detections:
    """The detect stage's output as the viewer expects it (issue 8): detections + warnings."""

    detections: list
    warnings: list = field(default_factory=list)


@dataclass
class Warning_:
    track_id: str
    time_to_collision_s: float


def bare_result(h=120, w=160, mono=False) -> FrameResult:
    rng = np.random.default_rng(0)
    left = rng.integers(0, 255, (h, w) if mono else (h, w, 3), dtype=np.uint8)
    header = Header(1_000_000_000, "camera")
    return FrameResult(header=header, frame=Frame(header, left))


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.any(a != b, axis=-1)


def test_compose_without_any_layer_content_is_the_image():
    r = bare_result()
    assert np.array_equal(O.compose(r, layers=O.LAYERS), r.frame.left)
    assert O.layers_of(r) == {}


def test_mono_image_becomes_bgr_at_input_resolution():
    r = bare_result(mono=True)
    out = O.compose(r)
    assert out.shape == (120, 160, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], r.frame.left) and np.array_equal(out[..., 2], r.frame.left)


def test_stereo_labels_change_only_labelled_pixels(drive_results):
    r = drive_results[-1]
    labels = r.near.labels.image
    assert (labels > 0).mean() > 0.05  # the drive has labelled near range
    base = O.base_image(r)
    out = O.compose(r, layers=("labels",), opacity=1.0)
    assert out.shape == base.shape
    diff = changed(out, base)
    assert not diff[labels == 0].any()  # unknown is transparent
    # at full opacity a labelled pixel takes its label's colour exactly
    for code in np.unique(labels[labels > 0]):
        assert np.all(out[labels == code] == LABEL_COLORS[code])


def test_terrain_classes_change_only_classified_pixels(drive_results):
    r = drive_results[-1]
    classes = r.terrain.classes
    assert (classes > 0).mean() > 0.1
    base = O.base_image(r)
    out = O.compose(r, layers=("terrain",), opacity=0.5)
    diff = changed(out, base)
    assert not diff[classes == 0].any()
    assert diff[classes > 0].mean() > 0.9  # a few pixels may already have (nearly) the class colour


def test_opacity_zero_and_per_layer_opacity(drive_results):
    r = drive_results[-1]
    base = O.base_image(r)
    assert np.array_equal(O.compose(r, opacity=0.0), base)
    half = O.compose(r, layers=("labels",), opacity={"labels": 0.5})
    full = O.compose(r, layers=("labels",), opacity={"labels": 1.0})
    m = r.near.labels.image > 0
    err_half = np.abs(half[m].astype(int) - full[m].astype(int)).mean()
    assert err_half > 5  # half-way blend differs from the pure colour
    with pytest.raises(InputError, match="outside 0..1"):
        O.compose(r, layers=("labels",), opacity=1.5)


def test_unknown_layer_is_refused_with_the_choices():
    with pytest.raises(InputError, match="unknown layer.*choose from labels"):
        O.compose(bare_result(), layers=("labelz",))


def test_scene_layer_colours_every_pixel_by_class():
    r = bare_result()
    mask = np.zeros((120, 160), np.uint8)
    mask[:, 80:] = 1
    colors = np.array([[10, 20, 30], [200, 100, 0]], np.uint8)  # RGB, as scene models' metadata gives them
    r.scene = Scene(mask, colors)
    out = O.compose(r, layers=("scene",), opacity=1.0)
    assert np.all(out[:, :80] == (30, 20, 10)) and np.all(out[:, 80:] == (0, 100, 200))
    # a scene mask at another resolution is brought to the input resolution (nearest neighbour)
    r.scene = Scene(mask[::2, ::2].copy(), colors)
    assert O.scene_layer(r).bgr.shape == (120, 160, 3)


def test_detections_draw_boxes_with_range_and_warning_colour():
    r = bare_result(240, 320)
    r.frame.left[:] = 0
    safe = Detection2D.from_corners(20, 40, 100, 200, "person", 0.9, track_id="1", position=(1.0, 0.0, 12.0))
    danger = Detection2D.from_corners(180, 60, 300, 220, "car", 0.8, track_id="2", position=(0.0, 0.0, 4.0))
    r.detections = Detections([safe, danger], [Warning_("2", 1.2)])
    layer = O.detections_layer(r)
    diff = layer.alpha > 0
    # nothing is drawn between the boxes below the text labels (which sit just above a box and may be wider)
    assert diff[:40, :].any()
    assert not diff[45:, 110:170].any()
    assert not diff[230:, :].any()
    # box edges: green for the safe one, red for the warned one
    assert tuple(layer.bgr[120, 20]) == O.DETECTION_BGR
    assert tuple(layer.bgr[140, 180]) == O.WARNING_BGR
    # inside the boxes, below the text, is untouched
    assert not diff[150:190, 40:90].any()
    out = O.compose(r, layers=("detections",))
    assert not changed(out, r.frame.left)[~diff].any()


def test_detections_accept_plain_lists_and_mappings_and_skip_bad_boxes():
    r = bare_result()
    r.detections = [{"box": (10, 10, 50, 50), "class_name": "cyclist", "score": 0.5, "range_m": 7.5, "warning": True},
                    {"box": (float("nan"), 0, 5, 5), "class_name": "bad", "score": 0.1}]
    layer = O.detections_layer(r)
    assert tuple(layer.bgr[30, 10]) == O.WARNING_BGR
    assert O.detections_and_warnings(r)[0][0]["class_name"] == "cyclist"
    r.detections = []
    assert O.detections_layer(r).alpha.max() == 0  # an empty list draws nothing


def test_disparity_layer_is_transparent_where_invalid(drive_results):
    r = drive_results[-1]
    d = r.disparity.disparity
    layer = O.disparity_layer(r)
    valid = np.isfinite(d) & (d > 0)
    assert np.array_equal(layer.alpha > 0, valid)
    out = O.compose(r, layers=("disparity",), opacity=1.0)
    assert not changed(out, O.base_image(r))[~valid].any()


def test_every_layer_tolerates_none_fields(drive_results):
    r = dataclasses.replace(drive_results[-1], disparity=None, near=None, terrain=None, scene=None, detections=None,
                            terrain_map=None, fused_map=None)
    assert O.layers_of(r) == {}
    assert np.array_equal(O.compose(r, layers=O.LAYERS), O.base_image(r))
    assert O.result_map_image(r).shape == (400, 400, 3)
    # a long-range result without classes (no ground plane this frame)
    from perception.terrain.long_range import LongRangeResult

    r.terrain = LongRangeResult(reason="no ground plane")
    assert O.terrain_layer(r) is None


def test_map_image_draws_costs_and_the_robot():
    data = np.full((100, 100), -1, np.int8)
    data[:, 50:] = 0  # free to the east
    data[60:70, 80:90] = 100  # lethal block north-east
    grid = MapGrid(data, 0.5, (-25.0, -25.0, 0.0))
    img = O.map_image(grid, (0.0, 0.0, 0.0), pixels=200, ring_m=0)
    assert img.shape == (200, 200, 3)
    # 2 px per cell; row = y up: cell row 65 (y = 7.75 m) is picture row 200 - 131
    lethal = img[200 - 131, 2 * 85]
    free = img[200 - 20, 2 * 75]
    unknown = img[200 - 20, 2 * 10]
    assert lethal[2] > 200 and lethal[1] < 50
    assert free[1] > 150 and free[2] < 50
    assert tuple(unknown) == (55, 55, 55)
    # the robot: white at the centre, its triangle points east (yaw 0)
    assert tuple(img[100, 100]) == O.ROBOT_BGR
    assert tuple(img[100, 104]) == O.ROBOT_BGR and tuple(img[100, 94]) != O.ROBOT_BGR
    north = O.map_image(grid, (0.0, 0.0, np.pi / 2), pixels=200, ring_m=0)
    assert tuple(north[96, 100]) == O.ROBOT_BGR and tuple(north[100, 104]) != O.ROBOT_BGR


def test_map_of_the_drive_and_robot_pose(drive_results):
    r = drive_results[-1]
    img = O.result_map_image(r, pixels=300)
    assert img.shape == (300, 300, 3)
    x, y, yaw = O.robot_xy_yaw(r.frame.pose)
    assert abs(yaw) < 0.1 and x > 0  # the drive goes along +x
    assert (img != 30).any() and len(np.unique(img.reshape(-1, 3), axis=0)) > 3


def test_legend_has_the_five_classes():
    names = [item["name"] for item in O.legend()]
    assert names == ["super_ground", "ground", "footline", "obstacle", "super_obstacle"]
    assert O.legend()[0]["color"] == "#00a000"
