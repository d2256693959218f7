"""Image folders, video files and open_source dispatch."""
from __future__ import annotations

import sys
import types

import cv2
import numpy as np
import pytest

from perception.camera import CameraInfo
from perception.errors import SourceError
from perception.frame import Header
from perception.io import BagWriter
from perception.sources import open_source, parse_kv
from perception.sources.bag import BagSource
from perception.sources.folder import FolderSource
from perception.sources.video import VideoSource

W, H = 40, 30


def img(i: int, color: bool = False) -> np.ndarray:
    base = np.full((H, W), 10 * i, np.uint8)
    base[i % H, :] = 255
    return cv2.merge([base, base // 2, 255 - base]) if color else base


# --- folders --------------------------------------------------------------------------------------------------
def test_mono_folder_with_nanosecond_names(tmp_path):
    stamps = [1403715273262142976 + k * 50_000_000 for k in (2, 0, 1)]  # written out of order
    for k, s in enumerate(stamps):
        cv2.imwrite(str(tmp_path / f"{s}.png"), img(k))
    (tmp_path / "notes.txt").write_text("ignored")
    with FolderSource(tmp_path) as source:
        frames = list(source)
    assert not source.is_stereo and len(frames) == 3
    assert [f.header.stamp_ns for f in frames] == sorted(stamps)  # stamps from the names, in stamp order
    assert np.array_equal(frames[0].left, img(1)) and frames[0].right is None and frames[0].left.dtype == np.uint8


def test_stereo_subfolders_match_by_name_and_count_orphans(tmp_path):
    (tmp_path / "left").mkdir()
    (tmp_path / "right").mkdir()
    for k in range(4):
        cv2.imwrite(str(tmp_path / "left" / f"frame{k:03d}.png"), img(k, color=True))
        if k != 2:
            cv2.imwrite(str(tmp_path / "right" / f"frame{k:03d}.png"), img(k + 1, color=True))
    (tmp_path / "left" / "frame004.png").write_bytes(b"not a png")  # unreadable
    (tmp_path / "right" / "frame004.png").write_bytes(b"not a png")
    cal = tmp_path / "left.yaml"
    CameraInfo.from_intrinsics(W, H, 30.0, 30.0, 20.0, 15.0).to_yaml(cal)
    with FolderSource(tmp_path, calibration=cal, fps=20.0, start_ns=1000) as source:
        frames = list(source)
    assert source.is_stereo and source.layout == "stereo folders left/ + right/"
    assert [f.header.stamp_ns for f in frames] == [1000, 1000 + 50_000_000, 1000 + 150_000_000]
    assert np.array_equal(frames[2].left, img(3, color=True)) and np.array_equal(frames[2].right, img(4, color=True))
    assert frames[0].left_info.fx == 30.0 and frames[0].rectified is True
    assert source.stats.summary() == (
        "5 frames in, 3 used, 2 skipped (1 left image without a right image, 1 unreadable image)"
    )


def test_left_right_files_in_one_folder(tmp_path):
    for k in (1, 2, 3):
        cv2.imwrite(str(tmp_path / f"left{k:02d}.jpg"), img(k))
        cv2.imwrite(str(tmp_path / f"right{k:02d}.jpg"), img(k))
    cv2.imwrite(str(tmp_path / "right04.jpg"), img(4))
    with FolderSource(tmp_path) as source:
        frames = list(source)
    assert [f.index for f in frames] == [0, 1, 2] and frames[0].right.shape == (H, W)
    assert dict(source.stats.skipped) == {"right image without a left image": 1}


def test_sixteen_bit_images_and_size_checks(tmp_path):
    deep = (np.arange(H * W, dtype=np.uint16).reshape(H, W) * 50)
    cv2.imwrite(str(tmp_path / "a.png"), deep)
    with FolderSource(tmp_path) as source:
        (frame,) = list(source)
    assert frame.left.dtype == np.uint16 and np.array_equal(frame.left, deep)
    with FolderSource(tmp_path, mono16_scale=1 / 256) as source:
        (frame,) = list(source)
    assert frame.left.dtype == np.uint8 and frame.left.max() == round(deep.max() / 256)
    wrong = CameraInfo.from_intrinsics(64, 48, 30.0, 30.0, 32.0, 24.0)
    with FolderSource(tmp_path, calibration=wrong) as source:
        assert list(source) == []
    assert "calibration size differs" in source.stats.summary()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="contains no images"):
        FolderSource(empty)


def test_euroc_folder_layout(data_dir):
    with FolderSource(data_dir / "euroc_micro") as source:
        first = next(iter(source))
        assert source.is_stereo and len(source) == 40 and "cam0" in source.layout
    assert first.left.shape == first.right.shape == (480, 752)
    assert first.header.stamp_ns > 1_400_000_000 * 10**9  # EuRoC nanosecond names


# --- video ----------------------------------------------------------------------------------------------------
def write_video(path, frames, fps=10.0):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()


def test_video_file_frames_and_stamps(tmp_path):
    path = tmp_path / "drive.avi"
    write_video(path, [img(k, color=True) for k in range(6)])
    with VideoSource(path) as source:
        frames = list(source)
    assert len(frames) == 6 and source.stats.summary() == "6 frames in, 6 used, 0 skipped"
    assert frames[3].left.shape == (H, W, 3) and frames[3].left.dtype == np.uint8
    originals = [img(k, color=True).astype(int) for k in range(6)]
    nearest = [int(np.argmin([np.abs(f.left - o).mean() for o in originals])) for f in frames]
    assert nearest == list(range(6))  # MJPG is lossy, but each frame is its own original, in order
    stamps = [f.header.stamp_ns for f in frames]
    assert stamps[0] == 0 and np.allclose(np.diff(stamps), 100_000_000, atol=2_000_000)
    with VideoSource(path, fps=20.0, start_ns=5, gray=True) as source:
        frames = list(source)
    assert [f.header.stamp_ns for f in frames][:2] == [5, 5 + 50_000_000] and frames[0].left.ndim == 2


def test_side_by_side_stereo_video(tmp_path):
    path = tmp_path / "sbs.avi"
    pairs = [np.hstack([img(k, True), np.zeros((H, W, 3), np.uint8)]) for k in range(3)]
    write_video(path, pairs)
    right = CameraInfo.from_intrinsics(W, H, 30.0, 30.0, 20.0, 15.0, baseline=0.06)
    with VideoSource(path, stereo="sbs", right_calibration=right) as source:
        frames = list(source)
    assert len(frames) == 3 and frames[0].is_stereo
    assert frames[0].left.shape == frames[0].right.shape == (H, W, 3)
    assert frames[1].right.mean() < 8 < frames[1].left.mean()
    assert frames[0].right_info is right
    wrong = CameraInfo.from_intrinsics(2 * W, H, 30.0, 30.0, 40.0, 15.0)
    with VideoSource(path, stereo="sbs", calibration=wrong) as source:
        assert list(source) == [] and source.stats.skipped["calibration size differs from the video"] == 3


def test_video_errors(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        VideoSource(tmp_path / "none.avi")
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError, match="cannot open"):
        VideoSource(bad)
    with pytest.raises(SourceError, match="stereo layout"):
        VideoSource(bad, stereo="quad")


# --- open_source ----------------------------------------------------------------------------------------------
def test_open_source_dispatch(tmp_path):
    bag = tmp_path / "drive.mcap"
    with BagWriter(bag) as w:
        w.write_image("/camera/image_raw", Header(1, "cam"), img(0))
    video = tmp_path / "v.avi"
    write_video(video, [img(0, True), img(1, True)])
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.png"), img(0))

    with open_source(str(bag)) as s:
        assert isinstance(s, BagSource) and len(list(s)) == 1
    with open_source(bag / "drive_0.mcap") as s:
        assert isinstance(s, BagSource)
    with open_source(str(video), stereo="sbs") as s:
        assert isinstance(s, VideoSource) and s.stereo == "sbs"
    with open_source(str(folder), calibration=None, fps=5.0) as s:
        assert isinstance(s, FolderSource) and s.fps == 5.0
    with pytest.raises(SourceError, match="not accepted by VideoSource") as err:
        open_source(str(video), left_topic="/x")
    assert "stereo" in str(err.value)  # names what is accepted
    with pytest.raises(SourceError, match="not found"):
        open_source(str(tmp_path / "nothing.mcap"))
    odd = tmp_path / "x.xyz"
    odd.write_text("?")
    with pytest.raises(SourceError, match="cannot tell"):
        open_source(str(odd))
    with pytest.raises(SourceError, match="camera: needs"):
        open_source("camera:")
    with pytest.raises(SourceError, match="camera device not found"):
        open_source("camera:/dev/no-such-camera")


def test_open_source_sim_delegates_and_reports_a_missing_module(monkeypatch):
    assert parse_kv("seed=3,frames=100,size=640x480,noise=0.5,gt=true") == {
        "seed": 3, "frames": 100, "size": "640x480", "noise": 0.5, "gt": True}
    with pytest.raises(SourceError, match="key=value"):
        parse_kv("seed")

    class FakeSynthetic:
        def __init__(self, seed: int = 0, frames: int = 10, size: str = "64x48"):
            self.args = (seed, frames, size)

    module = types.ModuleType("perception.sources.synthetic")
    module.SyntheticSource = FakeSynthetic
    monkeypatch.setitem(sys.modules, "perception.sources.synthetic", module)
    assert open_source("sim:seed=3,frames=100,size=640x480").args == (3, 100, "640x480")
    assert open_source("sim:", frames=7).args == (0, 7, "64x48")
    with pytest.raises(SourceError, match="not accepted by FakeSynthetic"):
        open_source("sim:colour=red")

    monkeypatch.setitem(sys.modules, "perception.sources.synthetic", None)  # import fails
    with pytest.raises(SourceError, match="synthetic world is not available"):
        open_source("sim:seed=1")
