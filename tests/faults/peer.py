"""The test peer of the fault tests over DDS; run in a private network namespace like tests/ros/checker.py, whose
Checker, node command and helpers it reuses.

    python -m tests.faults.peer sync --bag BAG --out RESULT.json --node-log LOG --tmp DIR
    python -m tests.faults.peer restart --bag BAG --out RESULT.json --node-log LOG --tmp DIR

The node runs with `outputs: [disparity]` (only the stages that output needs): these faults are about message
delivery, pairing and process life, not about the stages. Every wait is on a message or a counter, with a deadline.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.ros.checker import NS, REPO, Checker, _restamped, default_sigint, node_command, report

TOPICS = {"left": "left/image_raw", "right": "right/image_raw", "left_info": "left/camera_info",
          "right_info": "right/camera_info"}


class Session:
    """This process as camera driver + disparity consumer, and the perception node(s) it starts."""

    def __init__(self, args) -> None:
        from perception import topics as T
        from perception.io.qos import RELIABLE_QOS
        from perception_nodes import convert

        self.args, self.T, self.convert = args, T, convert
        self.log = open(args.node_log, "w")
        overrides = Path(args.tmp) / "reliable_inputs.yaml"  # as tests/ros: a best-effort 360 kB image is often lost
        overrides.write_text("/**:\n  ros__parameters:\n    qos_overrides:\n" + "".join(
            f"      {NS}/{t}:\n        subscription:\n          reliability: reliable\n" for t in TOPICS.values()))
        self.overrides = overrides
        self.c = Checker()
        self.c.subscribe(T.DISPARITY, "stereo_msgs/msg/DisparityImage", RELIABLE_QOS)
        self.c.subscribe(T.DIAGNOSTICS, "diagnostic_msgs/msg/DiagnosticArray", RELIABLE_QOS)
        self.pubs = {k: self.c.node.create_publisher(
            convert.msg_type("sensor_msgs/msg/CameraInfo" if "info" in k else "sensor_msgs/msg/Image"),
            f"{NS}/{t}", convert.qos_profile(RELIABLE_QOS)) for k, t in TOPICS.items()}
        self.frames = self._frames(args.bag)
        self.nodes: list[subprocess.Popen] = []

    @staticmethod
    def _frames(bag_path) -> list[dict[str, bytes]]:
        from perception.io import messages as M
        from perception.sources.bag_reader import open_bag
        from perception_nodes import convert

        bag = open_bag(bag_path)
        frames: dict[int, dict[str, bytes]] = {}
        names = {f"/stereo/{t}": k for k, t in TOPICS.items()}
        for topic, msgtype, _, raw in bag.messages(set(names)):
            frames.setdefault(M.stamp_ns(convert.decode(raw, msgtype).header.stamp), {})[names[topic]] = raw
        bag.close()
        return [frames[s] for s in sorted(frames) if len(frames[s]) == 4][:4]

    def start_node(self) -> subprocess.Popen:
        node = subprocess.Popen(node_command("--params-file", str(self.overrides), "-p", "raw_input:=true",
                                             "-p", "lazy:=false", "-p", "outputs:=[disparity]",
                                             "-p", "diagnostics_period_s:=0.2"),
                                stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO, preexec_fn=default_sigint)
        self.nodes.append(node)
        return node

    def diag(self, after: int = 0) -> dict:
        """The values of the newest /diagnostics message among those received after the first `after`."""
        msgs = self.c.received[self.T.DIAGNOSTICS][after:]
        return {kv.key: kv.value for kv in msgs[-1][1].status[0].values} if msgs else {}

    def ready(self, after: int = 0, timeout: float = 60.0) -> bool:
        """The (newest) node's inputs see our publishers and its disparity output sees our subscription."""
        def ok() -> bool:
            d = self.diag(after)
            return bool(d) and all(int(d.get(f"inputs.{NS}/{t}.publishers", 0)) > 0 for t in TOPICS.values()) \
                and int(d.get(f"outputs.{self.T.DISPARITY}.subscribers", 0)) > 0
        return self.c.spin_until(ok, timeout)

    def msg(self, kind: str, stamp: int, frame: int = 0, **changes) -> bytes:
        msgtype = "sensor_msgs/msg/CameraInfo" if "info" in kind else "sensor_msgs/msg/Image"
        return self.convert.encode(_restamped(self.frames[frame][kind], msgtype, stamp, **changes))

    def send(self, stamp: int, kinds=("left_info", "right_info", "left", "right"), frame: int = 0) -> None:
        for kind in kinds:
            self.pubs[kind].publish(self.msg(kind, stamp, frame))

    def disparity_stamps(self) -> list[int]:
        from perception.io import messages as M
        return [M.stamp_ns(m.header.stamp) for _, m in self.c.received[self.T.DISPARITY]]

    def got(self, stamp: int, timeout: float) -> bool:
        return self.c.spin_until(lambda: stamp in self.disparity_stamps(), timeout)

    def dropped(self, reason_part: str) -> int:
        return sum(int(v) for k, v in self.diag().items() if k.startswith("dropped.") and reason_part in k)

    def wait_dropped(self, reason_part: str, before: int, timeout: float = 15.0) -> bool:
        return self.c.spin_until(lambda: self.dropped(reason_part) > before, timeout)

    def send_until_out(self, stamp: int, frame: int = 0, attempts: int = 3, wait: float = 12.0) -> int:
        """Publish a complete frame until its disparity arrives (reliable delivery may need a heartbeat to repair a
        burst); returns the attempts used, 0 if it never came."""
        for attempt in range(1, attempts + 1):
            self.send(stamp, frame=frame)
            if self.got(stamp, wait):
                return attempt
        return 0

    def close(self) -> None:
        for node in self.nodes:
            if node.poll() is None:
                node.send_signal(signal.SIGINT)
                try:
                    node.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    node.kill()
                    node.wait()
        self.c.close()
        self.log.close()


BASE = 1_500_000_000 * 1_000_000_000
MS = 1_000_000


def run_sync(s: Session) -> dict:
    out: dict = {}
    node = s.start_node()
    out["ready"] = s.ready()
    if not out["ready"]:
        return {**out, "error": "the node did not discover the peer within 60 s"}
    # 1. camera_info late: images with no camera_info ever received -> counted; with the info the next one works
    before = s.dropped("camera_info")
    s.send(BASE, kinds=("left", "right"))
    out["no_info_counted"] = s.wait_dropped("camera_info", before)
    out["no_info_output"] = BASE in s.disparity_stamps()
    out["after_info_attempts"] = s.send_until_out(BASE + 100 * MS)
    # 2. reordered: the right image before the left one (and the infos last) -> still one pair
    t = BASE + 200 * MS
    s.send(t, kinds=("right", "left", "left_info", "right_info"), frame=1)
    out["reordered_paired"] = s.got(t, 15.0) or s.send_until_out(t, frame=1) > 0
    # 3. one side missing: a left image whose right never comes -> dropped with its reason once the right stream
    #    moves past it; the next complete frame goes through
    before = s.dropped("no right image")
    lonely = BASE + 300 * MS
    s.send(lonely, kinds=("left_info", "right_info", "left"), frame=2)
    out["after_missing_attempts"] = s.send_until_out(BASE + 400 * MS, frame=3)
    out["missing_counted"] = s.wait_dropped("no right image", before)
    out["missing_output"] = lonely in s.disparity_stamps()
    # 4. left and right too far apart (a dropped frame on one side and a late partner): counted, next is fine
    before = s.dropped("stamps too far apart")
    far = BASE + 500 * MS
    for kind, stamp in (("left_info", far), ("right_info", far), ("left", far), ("right", far + 30 * MS)):
        s.pubs[kind].publish(s.msg(kind, stamp))
    out["after_far_attempts"] = s.send_until_out(BASE + 600 * MS, frame=1)
    out["far_counted"] = s.wait_dropped("stamps too far apart", before)
    # 5. the clock jumps back (a sim-time reset): frames stamped from 1 s on are paired and processed again
    out["after_jump_attempts"] = s.send_until_out(1_000_000_000, frame=2)
    out["after_jump_attempts_2"] = s.send_until_out(1_100_000_000, frame=3)
    s.c.spin_until(lambda: int(s.diag().get("frames_processed", 0)) >= 6, 5.0)  # the next diagnostics period
    out["diagnostics"] = s.diag()
    out["node_alive"] = node.poll() is None
    return out


def run_restart(s: Session) -> dict:
    out: dict = {"sent": [], "timings_s": {}}
    t0 = time.monotonic()
    first = s.start_node()
    out["ready_1"] = s.ready()
    if not out["ready_1"]:
        return {**out, "error": "the first node did not discover the peer within 60 s"}
    # the very first frame with its camera_info published after the images (separate writers: any order):
    # processed, not dropped (the node waits for the first camera_info, INFO_WAIT_S)
    s.send(BASE, kinds=("left", "right"))
    s.c.spin_until(lambda: False, 0.3)  # the scenario: camera_info 0.3 s after its images (not synchronisation)
    s.send(BASE, kinds=("left_info", "right_info"))
    out["first_frame_info_after_images"] = s.got(BASE, 15.0)
    out["before_kill_attempts"] = 1 if out["first_frame_info_after_images"] else s.send_until_out(BASE)
    out["sent"].append(BASE)
    first.send_signal(signal.SIGKILL)  # mid-stream: no shutdown, no goodbye to DDS
    out["killed_exit"] = first.wait(timeout=15)
    # the camera driver carries on while nobody listens: publishing must not fail
    for i in range(1, 3):
        s.send(BASE + i * 100 * MS, frame=i)
    out["publisher_alive_while_down"] = True
    n_diag = len(s.c.received[s.T.DIAGNOSTICS])  # a dead node sends none: newer ones are the new node's
    t1 = time.monotonic()
    second = s.start_node()
    out["ready_2"] = s.ready(after=n_diag)
    out["timings_s"]["restart"] = round(time.monotonic() - t1, 2)
    after = [BASE + 1000 * MS + i * 100 * MS for i in range(3)]
    out["after_restart"] = {}
    for i, stamp in enumerate(after):
        out["after_restart"][str(stamp)] = s.send_until_out(stamp, frame=i % 4)
    out["sent"] += after
    out["received"] = s.disparity_stamps()
    s.c.spin_until(lambda: int(s.diag(n_diag).get("frames_processed", 0)) >= len(after), 5.0)  # next period
    out["diagnostics_2"] = s.diag(after=n_diag)
    out["second_alive"] = second.poll() is None
    out["timings_s"]["total"] = round(time.monotonic() - t0, 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=("sync", "restart"))
    ap.add_argument("--bag", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--node-log", required=True)
    ap.add_argument("--tmp", default="/tmp")
    args = ap.parse_args()

    def run() -> dict:
        session = Session(args)
        try:
            return (run_sync if args.scenario == "sync" else run_restart)(session)
        finally:
            session.close()

    return report(args.out, run)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
