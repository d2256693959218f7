"""`perception replay` on the real EuRoC bag: an output for every input pair, with the input's stamp and frame_id."""
from __future__ import annotations

import json

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from perception.cli import main
from perception.topics import (
    DETECTIONS, DISPARITY, LEFT_IMAGE, MAP_COSTMAP, OVERLAY, SCENE_CLASS_MASK, SCENE_COLOR_MASK, TERRAIN_CLASSES,
    TERRAIN_COSTMAP, TERRAIN_LABELS, WARNINGS, absolute,
)


def read_headers(bag, topic: str) -> list[tuple[int, str]]:
    with AnyReader([bag]) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        out = []
        for conn, _, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            out.append((msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec, msg.header.frame_id))
        return out


def test_replay_writes_disparity_for_every_euroc_pair(data_dir, tmp_path, capsys):
    bag_in = data_dir / "euroc_stereo_bag"
    out = tmp_path / "out.mcap"
    assert main(["replay", str(bag_in), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames_in"] == 20 and summary["used"] == 20 and summary["skipped"] == {}
    assert summary["stages"]["disparity"]["n"] == 20

    inputs = read_headers(bag_in, "/stereo/left/image_raw")
    disparities = read_headers(out, absolute(DISPARITY))
    assert disparities == inputs  # same stamps, same frame_id, same order
    assert len(read_headers(out, absolute(LEFT_IMAGE))) == 20

    with AnyReader([out]) as reader:
        conn = next(c for c in reader.connections if c.topic == absolute(DISPARITY))
        _, _, raw = next(reader.messages(connections=[conn]))
        msg = reader.deserialize(raw, conn.msgtype)
    d = np.frombuffer(msg.image.data, np.float32).reshape(msg.image.height, msg.image.width)
    assert (msg.image.width, msg.image.height) == (752, 480)
    assert msg.t == pytest.approx(0.110, abs=0.005)  # baseline from the bag's camera_info
    valid = d >= msg.min_disparity
    assert valid.mean() > 0.3 and np.all(d[valid] <= msg.max_disparity)


def test_replay_writes_terrain_outputs_for_every_euroc_pair(data_dir, tmp_path, capsys):
    bag_in = data_dir / "euroc_stereo_bag"
    out = tmp_path / "out.mcap"
    assert main(["replay", str(bag_in), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"ground", "labels", "map"} <= set(summary["stages"])
    inputs = read_headers(bag_in, "/stereo/left/image_raw")
    for topic in (TERRAIN_LABELS, TERRAIN_CLASSES, OVERLAY, SCENE_CLASS_MASK, SCENE_COLOR_MASK, DETECTIONS, WARNINGS):
        assert read_headers(out, absolute(topic)) == inputs, topic
    stamps = [s for s, _ in inputs]
    for topic in (TERRAIN_COSTMAP, MAP_COSTMAP):
        got = read_headers(out, absolute(topic))
        assert [s for s, _ in got] == stamps and {f for _, f in got} == {"odom"}, topic
    with AnyReader([out]) as reader:
        conn = next(c for c in reader.connections if c.topic == absolute(TERRAIN_CLASSES))
        codes = []
        for _, _, raw in reader.messages(connections=[conn]):
            msg = reader.deserialize(raw, conn.msgtype)
            assert (msg.width, msg.height, msg.encoding) == (752, 480, "mono8")
            codes.append(np.frombuffer(msg.data, np.uint8))
        grid_conn = next(c for c in reader.connections if c.topic == absolute(MAP_COSTMAP))
        _, _, raw = next(reader.messages(connections=[grid_conn]))
        grid = reader.deserialize(raw, grid_conn.msgtype)
    codes = np.concatenate(codes)
    assert codes.max() <= 5 and (codes > 0).mean() > 0.05  # classes where the ground plane was found
    data = np.asarray(grid.data, np.int8)
    assert grid.info.width * grid.info.height == data.size and ((data == -1) | ((data >= 0) & (data <= 100))).all()
    assert (data >= 0).any()


def test_replay_refuses_an_output_that_exists(data_dir, tmp_path):
    out = tmp_path / "out.mcap"
    out.mkdir()
    (out / "keep.txt").write_text("not a bag")
    assert main(["replay", str(data_dir / "euroc_stereo_bag"), "--out", str(out)]) == 2
    assert (out / "keep.txt").read_text() == "not a bag"


def test_replay_of_a_synthetic_drive_writes_ranged_detections_and_paints_them_into_the_fused_map(tmp_path, capsys):
    """The synthetic bag (with its odometry) through replay: detections with stereo range at every frame's
    stamp, warnings every frame, and their footprints in the fused map: lethal cells the terrain map lacks."""
    from perception.io import messages as M

    bag_in, out = tmp_path / "drive", tmp_path / "out.mcap"
    assert main(["sim", "record", "--out", str(bag_in), "--frames", "3", "--seed", "7"]) == 0
    params = tmp_path / "params.yaml"  # scene costs off: detections are then all the fused map adds
    params.write_text("/**:\n  ros__parameters:\n    scene:\n      to_map: false\n")
    assert main(["replay", str(bag_in), "--out", str(out), "--json", "--no-copy-inputs", "--params", str(params)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["used"] == 3 and {"detect", "track"} <= set(summary["stages"])
    inputs = read_headers(out, absolute(DISPARITY))
    assert len(inputs) == 3
    assert read_headers(out, absolute(DETECTIONS)) == inputs and read_headers(out, absolute(WARNINGS)) == inputs
    ranged, lethal_gain = 0, []
    with AnyReader([out]) as reader:
        conns = {c.topic: c for c in reader.connections}
        for _, _, raw in reader.messages(connections=[conns[absolute(DETECTIONS)]]):
            dets = M.detections_from_msg(reader.deserialize(raw, "vision_msgs/msg/Detection2DArray"))
            ranged += sum(d.range_m is not None and 1.0 < d.range_m < 100.0 for d in dets)
        grids = {}
        for topic in (TERRAIN_COSTMAP, MAP_COSTMAP):
            grids[topic] = [np.asarray(reader.deserialize(raw, "nav_msgs/msg/OccupancyGrid").data, np.int8)
                            for _, _, raw in reader.messages(connections=[conns[absolute(topic)]])]
    assert ranged >= 3  # the seed-7 drive has road users in view in every frame
    for terrain, fused in zip(grids[TERRAIN_COSTMAP], grids[MAP_COSTMAP]):
        lethal_gain.append(int(((fused == 100) & (terrain != 100)).sum()))
    assert max(lethal_gain) > 0, lethal_gain
