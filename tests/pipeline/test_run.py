"""`perception run`: live sources through the pipeline; a mono source gets scene parsing and detection."""
import json

import cv2
import numpy as np
from rosbags.highlevel import AnyReader

from perception.cli import main


def test_run_on_a_mono_image_folder_writes_scene_outputs(tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:04d}.png"), rng.integers(0, 255, (90, 120, 3), np.uint8))
    out = tmp_path / "out.mcap"
    assert main(["run", "--source", str(folder), "--no-viewer", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["used"] == 3 and set(summary["stages"]) == {"scene", "detect", "track"}
    with AnyReader([out]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        conn = next(c for c in reader.connections if c.topic == "/perception/scene/class_mask")
        _, _, raw = next(reader.messages(connections=[conn]))
        msg = reader.deserialize(raw, conn.msgtype)
    assert counts["/perception/image"] == 3 and counts["/perception/scene/class_mask"] == 3
    assert counts["/perception/detections"] == 3 and counts["/perception/warnings"] == 3  # empty arrays included
    assert (msg.width, msg.height) == (120, 90)  # the input's resolution, not the network's


def test_run_stops_after_frames(tmp_path, capsys):
    assert main(["run", "--source", "sim:seed=2,frames=10,size=160x120", "--frames", "2", "--no-viewer",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames_in"] == 2 and summary["used"] == 2 and "map" in summary["stages"]
