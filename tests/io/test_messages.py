"""perception.io.messages: numpy/dataclasses <-> ROS 2 message objects, through real CDR bytes."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from perception.camera import CameraInfo
from perception.errors import InputError
from perception.frame import Header, Pose
from perception.io import messages as M

HDR = Header(1_700_000_000_123_456_789, "cam_left")
RNG = np.random.default_rng(7)


def cdr(msg):
    """Serialise and deserialise: what a bag or a topic does to the message."""
    return M.deserialize(M.serialize(msg), msg.__msgtype__)


def sample(encoding: str, h: int = 6, w: int = 8) -> np.ndarray:
    info = M.encoding_info(encoding)
    shape = (h, w) if info.channels == 1 else (h, w, info.channels)
    if info.dtype.kind == "f":
        return RNG.normal(size=shape).astype(info.dtype)
    return RNG.integers(0, np.iinfo(info.dtype).max, size=shape, endpoint=True).astype(info.dtype)


LOSSLESS = ["mono8", "mono16", "bgr8", "rgb8", "bgra8", "rgba8", "8UC1", "8UC3", "16UC1", "32FC1", "yuv422",
            "yuv422_yuy2", "bayer_rggb8"]


@pytest.mark.parametrize("encoding", LOSSLESS)
def test_image_round_trip_is_exact(encoding):
    image = sample(encoding)
    msg = cdr(M.image_to_msg(HDR, image, encoding))
    assert msg.encoding == encoding and msg.is_bigendian == 0
    assert msg.step * msg.height == len(msg.data)
    back = M.image_from_msg(msg, topic="/cam/image_raw")
    assert back.dtype == image.dtype and back.shape == image.shape
    assert np.array_equal(back, image)
    assert M.header_from_msg(msg.header) == HDR


@pytest.mark.parametrize(
    ("array", "encoding"),
    [
        (np.zeros((4, 6), np.uint8), "mono8"),
        (np.zeros((4, 6, 3), np.uint8), "bgr8"),
        (np.zeros((4, 6, 4), np.uint8), "bgra8"),
        (np.zeros((4, 6), np.uint16), "mono16"),
        (np.zeros((4, 6), np.float32), "32FC1"),
    ],
)
def test_encoding_is_inferred_from_the_array(array, encoding):
    assert M.image_to_msg(HDR, array).encoding == encoding


def test_pipeline_conversion_gives_bgr_or_mono():
    rgb = sample("rgb8")
    assert np.array_equal(M.to_pipeline(rgb, "rgb8"), rgb[:, :, ::-1])
    bgra = sample("bgra8")
    assert np.array_equal(M.to_pipeline(bgra, "bgra8"), bgra[:, :, :3])
    rgba = sample("rgba8")
    assert np.array_equal(M.to_pipeline(rgba, "rgba8"), rgba[:, :, 2::-1])
    mono = sample("mono8")
    assert M.to_pipeline(mono, "mono8") is mono or np.array_equal(M.to_pipeline(mono, "mono8"), mono)
    # 4:2:2 (BT.601, video range): a grey image (U = V = 128) decodes to grey BGR = (Y - 16) * 255 / 219;
    # UYVY has chroma first, YUYV luma first, so swapping them must change the result
    uyvy = np.zeros((4, 8, 2), np.uint8)
    uyvy[:, :, 0], uyvy[:, :, 1] = 128, 100
    bgr = M.to_pipeline(uyvy, "yuv422")
    assert bgr.shape == (4, 8, 3) and bgr.dtype == np.uint8
    assert np.all(np.abs(bgr.astype(int) - round((100 - 16) * 255 / 219)) <= 1)
    yuyv = np.zeros((4, 8, 2), np.uint8)
    yuyv[:, :, 0], yuyv[:, :, 1] = 50, 128
    assert np.all(np.abs(M.to_pipeline(yuyv, "yuv422_yuy2").astype(int) - round((50 - 16) * 255 / 219)) <= 1)
    assert not np.array_equal(M.to_pipeline(yuyv, "yuv422"), M.to_pipeline(yuyv, "yuv422_yuy2"))
    assert M.to_pipeline(sample("bayer_rggb8"), "bayer_rggb8").shape == (6, 8, 3)


def test_mono16_is_kept_unless_a_scale_is_given():
    image = np.array([[0, 256, 1000, 65535]], np.uint16)
    kept = M.to_pipeline(image, "mono16")
    assert kept.dtype == np.uint16 and np.array_equal(kept, image)
    scaled = M.to_pipeline(image, "mono16", mono16_scale=1 / 256)
    assert scaled.dtype == np.uint8 and scaled.tolist() == [[0, 1, 4, 255]]
    with pytest.raises(InputError, match="not a camera image"):
        M.to_pipeline(np.zeros((2, 2), np.float32), "32FC1", topic="/depth")


def test_big_endian_and_padded_rows_are_decoded():
    image = sample("mono16", 3, 5)
    msg = M.image_to_msg(HDR, image, "mono16")
    step = 5 * 2 + 6  # 6 padding bytes per row
    rows = np.zeros((3, step), np.uint8)
    rows[:, :10] = image.astype(">u2").view(np.uint8).reshape(3, 10)
    msg.data, msg.step, msg.is_bigendian = rows.reshape(-1), step, 1
    back = M.image_from_msg(cdr(msg))
    assert back.dtype == np.uint16 and np.array_equal(back, image)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"step": 7}, "step 7 is smaller than width 8"),
        ({"data": np.zeros(47, np.uint8)}, "data has 47 bytes but step 8 x height 6 = 48"),
        ({"encoding": "weird42"}, "unsupported image encoding 'weird42'"),
        ({"width": 0, "step": 0, "data": np.zeros(0, np.uint8)}, "empty image"),
        ({"is_bigendian": 7}, "is_bigendian is 7"),
    ],
)
def test_inconsistent_images_are_refused_with_the_topic(change, expected):
    msg = M.image_to_msg(HDR, sample("mono8"), "mono8")
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(InputError) as info:
        M.image_from_msg(msg, topic="/stereo/left/image_raw")
    assert expected in str(info.value) and "/stereo/left/image_raw" in str(info.value)


def test_odd_width_yuv422_is_refused():
    msg = M.image_to_msg(HDR, sample("yuv422", 2, 4), "yuv422")
    msg.width, msg.step, msg.data = 3, 6, np.zeros(12, np.uint8)
    with pytest.raises(InputError, match="odd width 3"):
        M.image_from_msg(msg, topic="/cam")


def test_array_that_does_not_fit_the_encoding_is_refused():
    with pytest.raises(InputError, match="does not fit rgb8"):
        M.image_to_msg(HDR, np.zeros((4, 4), np.uint8), "rgb8")
    with pytest.raises(InputError, match="dtype"):
        M.image_to_msg(HDR, np.zeros((4, 4), np.uint16), "mono8")
    with pytest.raises(InputError, match="cannot infer"):
        M.image_to_msg(HDR, np.zeros((4, 4, 5), np.uint8))


def test_compressed_images_decode_and_corrupt_data_is_refused():
    bgr = np.zeros((32, 48, 3), np.uint8)
    bgr[:, :, 2] = 200
    bgr[8:24, 12:36] = (10, 120, 30)
    png = cdr(M.compressed_to_msg(HDR, bgr, "png"))
    assert png.format == "bgr8; png compressed bgr8"
    assert np.array_equal(M.compressed_from_msg(png), bgr)
    jpg = cdr(M.compressed_to_msg(HDR, bgr, "jpeg", quality=95))
    decoded = M.compressed_from_msg(jpg)
    assert decoded.shape == bgr.shape and np.abs(decoded.astype(int) - bgr).mean() < 6
    mono16 = np.arange(32 * 48, dtype=np.uint16).reshape(32, 48) * 40
    assert np.array_equal(M.compressed_from_msg(cdr(M.compressed_to_msg(HDR, mono16, "png"))), mono16)
    jpg.data = jpg.data[: len(jpg.data) // 8].copy()
    jpg.data[:4] = 0
    with pytest.raises(InputError, match="could not be decoded") as info:
        M.compressed_from_msg(jpg, topic="/cam/image_raw/compressed")
    assert "/cam/image_raw/compressed" in str(info.value)


def test_camera_info_round_trip_and_nan_is_refused():
    info = CameraInfo(
        width=752, height=480, K=[[458.6, 0, 367.2], [0, 457.3, 248.4], [0, 0, 1]], D=[-0.28, 0.07, 0.0002, 1.8e-05, 0],
        R=np.eye(3), P=[[435.2, 0, 367.5, -47.9], [0, 435.2, 252.2, 0], [0, 0, 1, 0]], frame_id="cam1_optical",
    )
    msg = cdr(M.camera_info_to_msg(HDR, info))
    back = M.camera_info_from_msg(msg, topic="/stereo/right/camera_info")
    for name in ("K", "D", "R", "P"):
        assert np.array_equal(getattr(back, name), getattr(info, name)), name
    assert (back.width, back.height, back.distortion_model) == (752, 480, "plumb_bob")
    assert back.frame_id == HDR.frame_id  # the message header names the frame
    msg.k = msg.k.copy()
    msg.k[0] = math.nan
    with pytest.raises(InputError, match="NaN") as err:
        M.camera_info_from_msg(msg, topic="/stereo/right/camera_info")
    assert "/stereo/right/camera_info" in str(err.value)


def test_poses_from_pose_stamped_odometry_and_transforms():
    pose = Pose(np.array([1.0, -2.0, 0.5]), M.yaw_quaternion(0.7), frame="odom", child_frame="base_link")
    p = M.pose_from_msg(cdr(M.pose_to_msg(Header(5, "map"), pose)))
    assert p.frame == "map" and np.allclose(p.position, pose.position) and np.allclose(p.orientation, pose.orientation)
    o = M.pose_from_msg(cdr(M.odometry_to_msg(Header(5, "odom"), pose)))
    assert (o.frame, o.child_frame) == ("odom", "base_link") and np.allclose(o.matrix(), pose.matrix())
    tf = cdr(M.transforms_to_msg(Header(9, "ignored"), [pose, Pose(np.zeros(3), np.array([0, 0, 0, 1.0]), "base_link", "cam")]))
    back = M.transforms_from_msg(tf)
    assert [(t.frame, t.child_frame) for t in back] == [("odom", "base_link"), ("base_link", "cam")]
    assert M.stamp_ns(tf.transforms[0].header.stamp) == 9
    with pytest.raises(InputError, match="not a pose"):
        M.pose_from_msg(M.string_to_msg("x"), topic="/pose")


def test_occupancy_grid_round_trip_and_range_check():
    grid = RNG.integers(-1, 101, size=(5, 7)).astype(np.int8)
    msg = cdr(M.occupancy_grid_to_msg(HDR, grid, 0.2, (-3.0, 1.5, 0.4)))
    assert (msg.info.width, msg.info.height) == (7, 5)
    back = M.occupancy_grid_from_msg(msg)
    assert np.array_equal(back.data, grid) and back.resolution == pytest.approx(0.2)
    assert np.allclose(back.origin_xy_yaw, (-3.0, 1.5, 0.4))
    with pytest.raises(InputError, match="outside -1..100"):
        M.occupancy_grid_to_msg(HDR, np.full((2, 2), 101, np.int16), 0.2, (0, 0, 0))
    with pytest.raises(InputError, match="resolution"):
        M.occupancy_grid_to_msg(HDR, np.zeros((2, 2), np.int8), 0.0, (0, 0, 0))


def test_disparity_detections_diagnostics_round_trip():
    d = RNG.uniform(0, 64, size=(6, 9)).astype(np.float32)
    disp = M.disparity_from_msg(cdr(M.disparity_to_msg(HDR, d, 435.2, 0.11, 0.0, 64.0)))
    assert np.array_equal(disp.disparity, d) and (disp.f, disp.max_disparity) == (pytest.approx(435.2), 64.0)
    assert disp.baseline == pytest.approx(0.11)

    dets = [M.Detection2D(100.5, 50.0, 20.0, 40.0, "pedestrian", 0.87, track_id="7", position=(1.0, 0.2, 12.0)),
            M.Detection2D.from_corners(0, 0, 10, 20, "car", 0.5)]
    back = M.detections_from_msg(cdr(M.detections_to_msg(HDR, dets)))
    assert back == dets and back[0].range_m == pytest.approx(math.sqrt(1 + 0.04 + 144))
    duck = M.detections_from_msg(M.detections_to_msg(HDR, [{"box": (0, 0, 4, 2), "label": "cyclist", "score": 0.3}]))
    assert (duck[0].cx, duck[0].width, duck[0].class_id) == (2.0, 4.0, "cyclist")

    boxes = [M.Detection3D((1.0, 2.0, 3.0), (0.5, 0.6, 1.8), "pedestrian", 0.9, track_id="3")]
    assert M.detections3d_from_msg(cdr(M.detections3d_to_msg(HDR, boxes))) == boxes

    status = [M.DiagnosticStatus("perception: stereo", "WARN", "slow", "cam0", {"fps": 9.5})]
    diag = M.diagnostics_from_msg(cdr(M.diagnostics_to_msg(HDR, status)))
    assert (diag[0].level, diag[0].message, diag[0].values) == (1, "slow", {"fps": "9.5"})
    with pytest.raises(InputError, match="unknown diagnostic level"):
        M.diagnostics_to_msg(HDR, M.DiagnosticStatus("x", "LOUD"))
    assert cdr(M.string_to_msg("hello")).data == "hello"


def test_vision_msgs_are_registered_with_the_ros2_layout():
    fields = dict(M.typestore().fielddefs["vision_msgs/msg/BoundingBox2D"][1])
    assert fields["center"][1] == "vision_msgs/msg/Pose2D"
    pose2d = dict(M.typestore().fielddefs["vision_msgs/msg/Pose2D"][1])
    assert set(pose2d) == {"position", "theta"}


def test_jpeg_decoding_matches_opencv():
    img = (np.indices((16, 16)).sum(0) * 8).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    msg = M.msg_class("sensor_msgs/msg/CompressedImage")(header=M.header_msg(HDR), format="jpeg", data=buf.reshape(-1))
    assert np.array_equal(M.compressed_from_msg(cdr(msg)), cv2.imdecode(buf, cv2.IMREAD_UNCHANGED))
