"""The other side of the ROS tests: run inside a private network namespace (`unshare -n`) by tests/ros/test_nodes.py.

    python -m tests.ros.checker pipeline --bag BAG --frames N --out RESULT.json
    python -m tests.ros.checker startup --out RESULT.json

It starts the perception node as its own process, plays the part of a camera driver and of the node's consumers
in THIS process (another DDS participant: real messages over the loopback interface), and writes what it saw as
JSON for the test to judge. Every wait is bounded and waits on messages (or the ROS graph), never on time alone.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NS = "/stereo"
BUDGET_S = 170.0  # a whole scenario, so that a hung node still gives a report before the test's timeout
NODE = f"{NS}/perception"



def default_sigint() -> None:
    """In the child: SIGINT back to its default. A shell that starts a job in the background hands SIGINT down
    ignored, and the tests stop nodes with it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)

def node_command(*ros_args: str) -> list[str]:
    return [sys.executable, "-m", "perception_nodes.perception_node", "--ros-args", "-r", f"__ns:={NS}",
            "--params-file", str(REPO / "launch" / "perception.yaml"), *ros_args]


class Checker:
    def __init__(self) -> None:
        import rclpy
        from rclpy.node import Node

        self.rclpy = rclpy
        rclpy.init()
        self.node = Node("checker", namespace=NS)
        self.received: dict[str, list] = {}
        self.subscriptions: dict[str, object] = {}
        self.deadline = time.monotonic() + BUDGET_S

    def spin_until(self, predicate, timeout: float) -> bool:
        """Spin until predicate() holds, for at most `timeout` s and never past the run's overall budget."""
        deadline = min(time.monotonic() + timeout, self.deadline)
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.rclpy.spin_once(self.node, timeout_sec=0.05)
        return bool(predicate())

    def subscribe(self, topic: str, msgtype: str, qos, key: str | None = None) -> None:
        from perception_nodes import convert

        key = key or topic
        self.received.setdefault(key, [])

        def callback(raw: bytes) -> None:
            self.received[key].append((time.monotonic(), convert.decode(raw, msgtype)))

        self.subscriptions[key] = self.node.create_subscription(convert.msg_type(msgtype), topic, callback,
                                                               convert.qos_profile(qos), raw=True)

    def close(self) -> None:
        self.node.destroy_node()
        self.rclpy.shutdown()


def stamp_of(msg) -> int:
    """The header stamp of an output message (detections as JSON carry theirs inside)."""
    from perception.io import messages as M

    if msg.__msgtype__ == "std_msgs/msg/String":
        return int(json.loads(msg.data)["stamp_ns"])
    return M.stamp_ns(msg.header.stamp)


def _summary(topic: str, msg) -> dict:
    from perception.io import messages as M

    kind = msg.__msgtype__
    if kind == "std_msgs/msg/String":  # detections as JSON where vision_msgs is not installed (docs/ros.md)
        data = json.loads(msg.data)
        return {"stamp_ns": int(data["stamp_ns"]), "frame_id": str(data["frame_id"]), "count": len(data["detections"])}
    out = {"stamp_ns": M.stamp_ns(msg.header.stamp), "frame_id": str(msg.header.frame_id)}
    if kind == "diagnostic_msgs/msg/DiagnosticArray":
        out["count"] = len(msg.status)
    elif kind == "vision_msgs/msg/Detection2DArray":
        out["count"] = len(msg.detections)
    if kind == "sensor_msgs/msg/Image":
        out.update(width=int(msg.width), height=int(msg.height), encoding=str(msg.encoding), bytes=len(msg.data))
    elif kind == "stereo_msgs/msg/DisparityImage":
        d = M.disparity_from_msg(msg)
        out.update(width=int(msg.image.width), height=int(msg.image.height), encoding=str(msg.image.encoding),
                   f=d.f, baseline=d.baseline, min_d=d.min_disparity, max_d=d.max_disparity,
                   image_stamp_ns=M.stamp_ns(msg.image.header.stamp), image_frame_id=str(msg.image.header.frame_id))
    elif kind == "nav_msgs/msg/OccupancyGrid":
        out.update(width=int(msg.info.width), height=int(msg.info.height), cells=len(msg.data),
                   resolution=float(msg.info.resolution), min=int(min(msg.data)), max=int(max(msg.data)))
    return out


def _qos(info) -> dict:
    q = info.qos_profile
    return {"node": info.node_name, "reliability": q.reliability.name.lower(), "durability": q.durability.name.lower(),
            "depth": int(q.depth)}


def _restamped(raw: bytes, msgtype: str, stamp_ns: int, **changes):
    from perception.io import messages as M
    from perception_nodes import convert

    msg = convert.decode(raw, msgtype)
    header = dataclasses.replace(msg.header, stamp=M.time_msg(stamp_ns))
    return dataclasses.replace(msg, header=header, **changes)


def run_pipeline(args) -> dict:
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient

    from perception import topics as T
    from perception.io import messages as M
    from perception.io.qos import LATCHED_QOS, RELIABLE_QOS
    from perception.sources.bag_reader import open_bag
    from perception_nodes import convert
    from perception_nodes.outputs import DETECTIONS_FALLBACK, DETECTIONS_TYPE, OUTPUT_TYPES

    out: dict = {"timings_s": {}}
    t_start = time.monotonic()
    log = open(args.node_log, "w")
    # Inputs are sensor-data QoS (best effort) by default; a best-effort 360 kB image is lost whenever one UDP
    # fragment is (routinely, on 2 busy cores), so this test makes them reliable with the node's QoS overrides.
    overrides = Path(args.tmp) / "reliable_inputs.yaml"
    overrides.write_text("/**:\n  ros__parameters:\n    qos_overrides:\n" + "".join(
        f"      {NS}/{t}:\n        subscription:\n          reliability: reliable\n"
        for t in ("left/image_raw", "right/image_raw", "left/camera_info", "right/camera_info")))
    node = subprocess.Popen(node_command("--params-file", str(overrides), "-p", "raw_input:=true", "-p", "lazy:=false",
                                         "-p", "diagnostics_period_s:=0.3"),
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                            preexec_fn=default_sigint)
    c = Checker()
    try:
        # consumers: every output (map/costmap also gets a LATE subscriber below: transient local)
        for topic, msgtype in OUTPUT_TYPES.items():
            if msgtype == DETECTIONS_TYPE and not convert.has_msg_type(msgtype):
                msgtype = DETECTIONS_FALLBACK
            c.subscribe(topic, msgtype, LATCHED_QOS if msgtype == "nav_msgs/msg/OccupancyGrid" else RELIABLE_QOS)
        c.subscribe(T.DIAGNOSTICS, "diagnostic_msgs/msg/DiagnosticArray", RELIABLE_QOS)

        def diag(key: str) -> int:
            msgs = c.received[T.DIAGNOSTICS]
            if not msgs:
                return -1
            return int({kv.key: kv.value for kv in msgs[-1][1].status[0].values}.get(key, 0))

        # the camera driver
        topics = {"left": T.LEFT_IMAGE_RAW, "right": T.RIGHT_IMAGE_RAW, "left_info": T.LEFT_INFO,
                  "right_info": T.RIGHT_INFO}
        pubs = {k: c.node.create_publisher(convert.msg_type("sensor_msgs/msg/CameraInfo" if "info" in k else
                                                            "sensor_msgs/msg/Image"), t, convert.qos_profile(RELIABLE_QOS))
                for k, t in topics.items()}
        outputs = [t for t in OUTPUT_TYPES]
        # discovery, seen from both sides: the node's input subscriptions match our publishers, and the node's
        # output publishers match our subscriptions (it reports its subscriber counts on /diagnostics)
        ok = c.spin_until(lambda: all(p.get_subscription_count() > 0 for p in pubs.values())
                          and all(s.get_publisher_count() > 0 for s in c.subscriptions.values())
                          and all(diag(f"inputs.{NS}/{t}.publishers") > 0 for t in topics.values())
                          and all(diag(f"outputs.{t}.subscribers") > 0 for t in outputs), 30.0)
        out["discovered"] = ok
        out["timings_s"]["startup"] = round(time.monotonic() - t_start, 2)
        if not ok:
            out["error"] = "the node's subscriptions / publishers were not discovered within 30 s"
            return out

        # --- frames from the bag ---------------------------------------------------------------------------------
        bag = open_bag(args.bag)
        frames: dict[int, dict[str, bytes]] = {}
        names = {f"/stereo/{t}": k for k, t in topics.items()}
        for topic, msgtype, _, raw in bag.messages(set(names)):
            stamp = M.stamp_ns(convert.decode(raw, msgtype).header.stamp)
            frames.setdefault(stamp, {})[names[topic]] = raw
        bag.close()
        stamps = sorted(s for s, f in frames.items() if len(f) == 4)
        used = stamps[: args.frames]
        out["input"] = []
        t0 = time.monotonic()
        retries = 0
        for stamp in used:
            f = frames[stamp]
            left = convert.decode(f["left"], "sensor_msgs/msg/Image")
            out["input"].append({"stamp_ns": stamp, "frame_id": str(left.header.frame_id), "width": int(left.width),
                                 "height": int(left.height)})
            got = lambda s=stamp: any(M.stamp_ns(m.header.stamp) == s for _, m in c.received[T.DISPARITY])  # noqa: E731
            # Published again when the node did not get the pair or dropped it (a burst of two 360 kB images can
            # overflow a DDS buffer; reliable delivery repairs it at the writer's next heartbeat, ~3 s later, so
            # attempts are >= 4 s apart). While the node is processing the pair, nothing is sent again.
            for attempt in range(4):
                n_in, d0, t_pub = diag("frames_in"), diag("dropped"), time.monotonic()
                for kind in ("left_info", "right_info", "left", "right"):
                    pubs[kind].publish(f[kind])
                c.spin_until(lambda n=n_in, d=d0: got() or diag("dropped") > d or diag("frames_in") > n, 8.0)
                if diag("frames_in") > n_in and diag("dropped") == d0:
                    c.spin_until(lambda d=d0: got() or diag("dropped") > d, 60.0)
                if got() or c.spin_until(got, 4.0 - (time.monotonic() - t_pub)):
                    break
                retries += 1
        out["retries"] = retries
        # every output of every frame, on each topic that got any (reliable delivery may repair a lost sample
        # a moment later; the test judges which topics must have them)
        def complete() -> bool:
            return all({stamp_of(m) for _, m in msgs} >= set(used)
                       for t, msgs in c.received.items() if msgs and t != T.DIAGNOSTICS)
        out["complete"] = c.spin_until(complete, 15.0)
        out["timings_s"]["frames"] = round(time.monotonic() - t0, 2)
        t0 = time.monotonic()

        # --- QoS, as the ROS graph reports it --------------------------------------------------------------------
        out["qos"] = {
            "map/costmap": [_qos(i) for i in c.node.get_publishers_info_by_topic(f"{NS}/{T.MAP_COSTMAP}")],
            "terrain/costmap": [_qos(i) for i in c.node.get_publishers_info_by_topic(f"{NS}/{T.TERRAIN_COSTMAP}")],
            "disparity": [_qos(i) for i in c.node.get_publishers_info_by_topic(f"{NS}/{T.DISPARITY}")],
            "left/image_raw": [_qos(i) for i in c.node.get_subscriptions_info_by_topic(f"{NS}/{T.LEFT_IMAGE_RAW}")
                               if i.node_name == "perception"],
            "diagnostics": [_qos(i) for i in c.node.get_publishers_info_by_topic(T.DIAGNOSTICS)
                            if i.node_name == "perception"],
        }
        # --- transient local: a subscriber that comes late still gets the last map -------------------------------
        c.subscribe(T.MAP_COSTMAP, "nav_msgs/msg/OccupancyGrid", LATCHED_QOS, key="map/costmap (late)")
        c.spin_until(lambda: c.received["map/costmap (late)"], 3.0)

        # --- parameters ------------------------------------------------------------------------------------------
        client = AsyncParameterClient(c.node, NODE)
        client.wait_for_services(timeout_sec=10.0)
        out["params"] = {}
        cases = {
            "num_disparities_out_of_range": [Parameter("disparity.num_disparities", value=5000)],
            "p1_out_of_range": [Parameter("disparity.p1", value=100.0)],
            "p2_below_p1": [Parameter("disparity.p2", value=4.0)],
            "mode_not_a_choice": [Parameter("disparity.mode", value="fast")],
            "read_only_raw_input": [Parameter("raw_input", value=False)],
            "num_disparities_valid": [Parameter("disparity.num_disparities", value=64)],
        }
        for case, params in cases.items():
            future = client.set_parameters(params)
            c.spin_until(future.done, 10.0)
            r = future.result().results[0] if future.done() and future.result() else None
            out["params"][case] = None if r is None else {"successful": bool(r.successful), "reason": r.reason}
        future = client.get_parameters(["disparity.num_disparities", "disparity.p1"])
        c.spin_until(future.done, 10.0)
        if future.done():
            out["params"]["values_after"] = [v.integer_value or v.double_value for v in future.result().values]
        future = client.describe_parameters(["disparity.num_disparities", "disparity.p1", "disparity.mode"])
        c.spin_until(future.done, 10.0)
        if future.done():
            out["params"]["descriptors"] = [
                {"name": d.name, "description": d.description, "constraints": d.additional_constraints,
                 "integer_range": [[r.from_value, r.to_value] for r in d.integer_range],
                 "floating_point_range": [[r.from_value, r.to_value] for r in d.floating_point_range]}
                for d in future.result().descriptors]

        out["timings_s"]["qos_and_parameters"] = round(time.monotonic() - t0, 2)
        t0 = time.monotonic()
        # --- malformed input: counted, and the node goes on ------------------------------------------------------
        base = used[-1] + 1_000_000_000
        f0 = frames[used[0]]
        left0 = convert.decode(f0["left"], "sensor_msgs/msg/Image")
        w, h = int(left0.width), int(left0.height)

        def send(stamp, left=None, right=None, raw_left: bytes | None = None):
            for kind in ("left_info", "right_info"):
                pubs[kind].publish(convert.encode(_restamped(f0[kind], "sensor_msgs/msg/CameraInfo", stamp)))
            if raw_left is not None:
                pubs["left"].publish(raw_left)
            if left is not None:
                pubs["left"].publish(convert.encode(left))
            if right is not None:
                pubs["right"].publish(convert.encode(right))

        img = lambda raw, s, **kw: _restamped(raw, "sensor_msgs/msg/Image", s, **kw)  # noqa: E731
        import numpy as np
        half = np.frombuffer(bytes(left0.data), np.uint8)[: w * h // 2].copy()  # step * height says twice that
        small = np.ascontiguousarray(np.frombuffer(bytes(left0.data), np.uint8).reshape(h, w)[::2, ::2])
        bad = [
            ("undecodable bytes", dict(raw_left=b"\x00\x01\x00\x00 this is not an image")),
            ("unknown encoding", dict(left=img(f0["left"], base + 1, encoding="foo8"),
                                      right=img(f0["right"], base + 1, encoding="foo8"))),
            ("truncated data", dict(left=img(f0["left"], base + 2, data=half), right=img(f0["right"], base + 2))),
            ("mismatched stereo sizes", dict(left=img(f0["left"], base + 3),
                                             right=img(f0["right"], base + 3, width=w // 2, height=h // 2, step=w // 2,
                                                       data=small.reshape(-1).copy()))),
        ]

        def dropped() -> int:
            return diag("dropped")

        out["malformed"] = []
        c.spin_until(lambda: dropped() >= 0, 5.0)
        for i, (what, kw) in enumerate(bad):
            before = dropped()
            send(base + i, **kw)
            seen = c.spin_until(lambda b=before: dropped() > b, 10.0)
            out["malformed"].append({"case": what, "counted": seen, "node_alive": node.poll() is None})
        good = base + 10
        send(good, left=img(frames[used[-1]]["left"], good), right=img(frames[used[-1]]["right"], good))
        out["good_after_malformed"] = c.spin_until(
            lambda: any(M.stamp_ns(m.header.stamp) == good for _, m in c.received[T.DISPARITY]), 60.0)
        out["good_stamp_ns"] = good
        out["timings_s"]["malformed"] = round(time.monotonic() - t0, 2)

        # --- diagnostics after everything ------------------------------------------------------------------------
        c.spin_until(lambda: diag("frames_processed") >= len(used) + 1, 10.0)
        last = c.received[T.DIAGNOSTICS][-1][1] if c.received[T.DIAGNOSTICS] else None
        if last is not None:
            out["diagnostics"] = [{"name": s.name, "level": int(s.level[0] if isinstance(s.level, bytes) else s.level),
                                   "message": s.message, "hardware_id": s.hardware_id,
                                   "values": {kv.key: kv.value for kv in s.values}} for s in last.status]
        out["node_alive"] = node.poll() is None
        out["received"] = {t: [_summary(t, m) for _, m in msgs] for t, msgs in c.received.items()
                           if t != T.DIAGNOSTICS}
        out["late_map_received_before_good_frame"] = len(c.received["map/costmap (late)"])
        # --- clean shutdown on SIGINT ----------------------------------------------------------------------------
        node.send_signal(signal.SIGINT)
        try:
            out["exit_code"] = node.wait(timeout=15)
        except subprocess.TimeoutExpired:
            out["exit_code"] = None
        out["timings_s"]["total"] = round(time.monotonic() - t_start, 2)
        return out
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        c.close()
        log.close()


def run_startup(args) -> dict:
    """A parameter file with an out-of-range value stops the node at start; a QoS override takes effect."""
    out: dict = {}
    bad = Path(args.tmp) / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    disparity:\n      num_disparities: 4096\n")
    r = subprocess.run(node_command("--params-file", str(bad)), capture_output=True, text=True, timeout=60, cwd=REPO)
    out["bad_file"] = {"exit_code": r.returncode, "output": (r.stdout + r.stderr)[-2000:]}

    override = Path(args.tmp) / "qos.yaml"
    override.write_text("/**:\n  ros__parameters:\n    qos_overrides:\n      /stereo/left/image_rect:\n"
                        "        subscription:\n          reliability: reliable\n          depth: 2\n")
    log = open(args.node_log, "w")
    node = subprocess.Popen(node_command("--params-file", str(override), "-p", "diagnostics_period_s:=0.3"),
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                            preexec_fn=default_sigint)
    c = Checker()
    try:
        def infos(topic):
            return [_qos(i) for i in c.node.get_subscriptions_info_by_topic(topic) if i.node_name == "perception"]
        c.spin_until(lambda: infos(f"{NS}/left/image_rect") and infos(f"{NS}/right/image_rect"), 30.0)
        out["left"] = infos(f"{NS}/left/image_rect")
        out["right"] = infos(f"{NS}/right/image_rect")
        out["lazy"] = _lazy(c, args)
        node.send_signal(signal.SIGINT)
        out["exit_code"] = node.wait(timeout=15)
        # a per-stage executable: the same node with only its stage's outputs
        stereo = subprocess.Popen(
            [sys.executable, "-c", "from perception_nodes.perception_node import stereo_main; stereo_main()",
             "--ros-args", "-r", f"__ns:={NS}"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                            preexec_fn=default_sigint)
        try:
            def topics():
                try:
                    return sorted(n for n, _ in c.node.get_publisher_names_and_types_by_node("stereo", NS))
                except Exception:  # noqa: BLE001 - not discovered yet
                    return []
            c.spin_until(lambda: {f"{NS}/disparity", "/diagnostics"} <= set(topics()), 30.0)
            out["stereo_node_publishes"] = topics()
            stereo.send_signal(signal.SIGINT)
            out["stereo_exit_code"] = stereo.wait(timeout=15)
        finally:
            if stereo.poll() is None:
                stereo.kill()
                stereo.wait()
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        c.close()
        log.close()
    return out


def _lazy(c: Checker, args) -> dict:
    """With nobody subscribed to any output, a frame is not processed (`lazy`, on by default)."""
    from perception import topics as T
    from perception.io.qos import RELIABLE_QOS
    from perception.sources.bag_reader import open_bag
    from perception_nodes import convert

    c.subscribe(T.DIAGNOSTICS, "diagnostic_msgs/msg/DiagnosticArray", RELIABLE_QOS)
    kinds = {"left": (T.LEFT_IMAGE, "sensor_msgs/msg/Image"), "right": (T.RIGHT_IMAGE, "sensor_msgs/msg/Image"),
             "left_info": (T.LEFT_INFO, "sensor_msgs/msg/CameraInfo"),
             "right_info": (T.RIGHT_INFO, "sensor_msgs/msg/CameraInfo")}
    pubs = {k: c.node.create_publisher(convert.msg_type(t), topic, convert.qos_profile(RELIABLE_QOS))
            for k, (topic, t) in kinds.items()}
    bag = open_bag(args.bag)
    first: dict[str, bytes] = {}
    names = {"/stereo/left/image_raw": "left", "/stereo/right/image_raw": "right",
             "/stereo/left/camera_info": "left_info", "/stereo/right/camera_info": "right_info"}
    for topic, _, _, raw in bag.messages(set(names)):
        first.setdefault(names[topic], raw)
        if len(first) == 4:
            break
    bag.close()
    c.spin_until(lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), 20.0)

    def values() -> dict:
        msgs = c.received[T.DIAGNOSTICS]
        return {kv.key: kv.value for kv in msgs[-1][1].status[0].values} if msgs else {}

    for _ in range(5):  # the right input is best effort: publish again if the pair was lost
        for kind in ("left_info", "right_info", "left", "right"):
            pubs[kind].publish(first[kind])
        if c.spin_until(lambda: int(values().get("frames_idle", 0)) > 0, 4.0):
            break
    return values()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=("pipeline", "startup"))
    ap.add_argument("--bag")
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--out", required=True)
    ap.add_argument("--node-log", required=True)
    ap.add_argument("--tmp", default="/tmp")
    args = ap.parse_args()
    return report(args.out, lambda: run_pipeline(args) if args.scenario == "pipeline" else run_startup(args))


def report(out_path, run) -> int:
    """`run()`'s result, or its traceback as {"error": ...}, written as JSON to `out_path`: what a peer program
    hands to its test (tests.ros.conftest.run_peer)."""
    try:
        result = run()
    except Exception:  # noqa: BLE001 - reported to the test as data
        result = {"error": traceback.format_exc()}
    Path(out_path).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
