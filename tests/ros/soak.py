"""The soak THROUGH THE NODE (issue 9): many stereo frames over DDS into perception_node, with its memory and latency
curves. Run inside a private network namespace like tests/ros/checker.py (whose Checker, node command and helpers
it reuses); tests/ros/test_soak.py runs the reduced form.

    python -m tests.ros.soak --frames N --out RESULT.json [--plot PNG] [--size 320x240] [--every K]

What it does:

1. renders `--distinct` synthetic frames (rectified stereo pairs + camera_info, `perception.bench.frames`) once,
   before the node starts, and cycles them with fresh headers (stamps +100 ms a frame, `perception.bench.frames.cycle`)
   so that N frames cost no rendering; an `odom` message per frame moves the robot forward at `--speed` m/s, so the
   rolling maps scroll as on a drive;
2. starts perception_node (all outputs, `lazy: false`, inputs made reliable with the node's QoS overrides, as the
   other ROS tests do) and subscribes to EVERY output (a consumer per topic: every output is converted and
   published, the overlay composed) and to /diagnostics; waits (bounded) until both sides have discovered each other;
3. publishes the frames PACED BY THE NODE'S OUTPUTS: frame i+1 is sent when frame i's `--latency-topic` output
   (default `map/costmap`, the last product a planner gets) has arrived, or the node counted a drop, or
   `--frame-timeout` passed. A frame's latency is the wall time from publishing it to the arrival of that output with
   the same stamp (publish -> node: decode, sync, pipeline, convert, publish -> this process). `--period-ms` makes
   the sending no faster than that (a pacing wait, spinning);
4. samples the node's RSS (VmRSS of /proc/PID/status; also VmHWM, threads, open fds) every `--every` frames;
5. at the end, reads the node's last /diagnostics (frames_in / processed, dropped.<reason>), stops it with SIGINT
   and writes the JSON (and the PNG with `--plot`). The curve statistics (RSS slope after the warm-up, latency
   p50/p99 in the first and last tenth) are `perception.bench.soak.summarise`'s, the plot is drawn with
   `perception.bench.plot`: the same numbers as the replay soak (`perception bench soak`, docs/performance.md).

Accounting: every frame sent ends as `answered` (its latency-topic output arrived; `answered_late` when after its
deadline), counted by the node as dropped (`dropped_by_reason`, from /diagnostics), or `unanswered` (neither: lost
silently -- a failure). Every loop is bounded in count (N frames) and in time (`--budget-s` for the whole run,
`--frame-timeout` per frame); every wait waits on a message or a counter, with a deadline.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from tests.ros.checker import NS, REPO, Checker, default_sigint, node_command, report, stamp_of

MS = 1_000_000
PERIOD_NS = 100 * MS  # stamps: 10 Hz
INPUTS = ("left/image_rect", "right/image_rect", "left/camera_info", "right/camera_info")


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS / VmHWM (MB), Threads and open fds of process `pid` ({} when it is gone)."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) / 1024.0  # kB -> MB
                elif key == "Threads":
                    out[key] = int(value)
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError, IndexError):
        pass
    return out


class NodeRecorder:
    """What `perception.bench.soak.summarise` reads (the replay soak's Recorder, filled from DDS here): per-frame
    latency in preallocated arrays, `samples` (frames sent, node RSS MB, seconds, 0) every `every` frames."""

    def __init__(self, count: int, every: int) -> None:
        self.every = every
        self.latency_ms = np.full(count, np.nan, np.float32)
        self.pipeline_ms = np.full(count, np.nan, np.float32)  # not seen from outside the node (see node_frame_ms)
        self.t_pub = np.full(count, np.nan, np.float64)
        self.disparity = np.zeros(count, bool)
        self.samples: list[tuple[int, float, float, int]] = []
        self.extra: list[dict[str, float]] = []  # per sample: VmHWM, Threads, fds
        self.n = 0  # frames sent
        self.failed = 0
        self.t0 = time.perf_counter()


class Soak:
    def __init__(self, args) -> None:
        from perception import topics as T
        from perception.bench.frames import cycle, synthetic_frames
        from perception.io.qos import LATCHED_QOS, RELIABLE_QOS
        from perception_nodes import convert
        from perception_nodes.outputs import DETECTIONS_FALLBACK, DETECTIONS_TYPE, OUTPUT_TYPES

        self.args, self.T, self.convert = args, T, convert
        self.rec = NodeRecorder(args.frames, args.every)
        # frames first: the renderer is slow and must not compete with the node
        rendered = synthetic_frames(args.size, min(args.distinct, args.frames), seed=args.seed, progress=False)
        self.frames = cycle(rendered, args.frames, period_ns=PERIOD_NS)  # a generator: N frames cost no memory
        self.t0_stamp = rendered[0].header.stamp_ns
        self.templates = [self._templates(f) for f in rendered]

        tmp = Path(args.tmp)
        overrides = tmp / "soak_reliable_inputs.yaml"  # as tests/ros: a best-effort image is often lost
        overrides.write_text("/**:\n  ros__parameters:\n    qos_overrides:\n" + "".join(
            f"      {NS}/{t}:\n        subscription:\n          reliability: reliable\n" for t in INPUTS))
        self.log = open(args.node_log, "w")
        self.node = subprocess.Popen(
            node_command("--params-file", str(overrides), "-p", "lazy:=false", "-p", "frame_queue:=1",
                         "-p", f"diagnostics_period_s:={args.diagnostics_period}"),
            stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO, preexec_fn=default_sigint)
        self.c = Checker()
        self.c.deadline = time.monotonic() + args.budget_s  # the Checker's default budget is for short scenarios

        # consumers of every output: raw callbacks that only count (a soak of the PEER's memory is not the point)
        self.counts: dict[str, int] = {}
        self.subs = {}
        self.outputs = list(OUTPUT_TYPES)
        if args.latency_topic not in OUTPUT_TYPES:
            raise ValueError(f"--latency-topic must be one of {', '.join(OUTPUT_TYPES)}")
        for topic, msgtype in OUTPUT_TYPES.items():
            if msgtype == DETECTIONS_TYPE and not convert.has_msg_type(msgtype):
                msgtype = DETECTIONS_FALLBACK
            qos = LATCHED_QOS if msgtype == "nav_msgs/msg/OccupancyGrid" else RELIABLE_QOS
            self.counts[topic] = 0
            self.subs[topic] = self.c.node.create_subscription(
                convert.msg_type(msgtype), topic, self._output_callback(topic, msgtype), convert.qos_profile(qos),
                raw=True)
        self.diag: dict[str, str] = {}
        self.diag_count = 0
        self.diag_frame_ms: list[tuple[int, float]] = []  # (frames sent, node's last_frame_ms) per diagnostics msg
        self.subs["/diagnostics"] = self.c.node.create_subscription(
            convert.msg_type("diagnostic_msgs/msg/DiagnosticArray"), T.DIAGNOSTICS, self._diag_callback,
            convert.qos_profile(RELIABLE_QOS), raw=True)
        self.pubs = {
            "left_info": (T.LEFT_INFO, "sensor_msgs/msg/CameraInfo"),
            "right_info": (T.RIGHT_INFO, "sensor_msgs/msg/CameraInfo"),
            "left": (T.LEFT_IMAGE, "sensor_msgs/msg/Image"), "right": (T.RIGHT_IMAGE, "sensor_msgs/msg/Image"),
            "odom": ("odom", "nav_msgs/msg/Odometry"),
        }
        self.pubs = {k: self.c.node.create_publisher(convert.msg_type(t), topic, convert.qos_profile(RELIABLE_QOS))
                     for k, (topic, t) in self.pubs.items()}
        self.answered_late = 0

    @staticmethod
    def _templates(frame) -> dict:
        """The frame's messages, built once; each send only replaces the header."""
        from perception.io import messages as M

        h = frame.header
        return {"left": M.image_to_msg(h, frame.left), "right": M.image_to_msg(h, frame.right),
                "left_info": M.camera_info_to_msg(h, frame.left_info),
                "right_info": M.camera_info_to_msg(h, frame.right_info)}

    def _index(self, stamp: int) -> int:
        i, rem = divmod(stamp - self.t0_stamp, PERIOD_NS)
        return int(i) if rem == 0 and 0 <= i < self.rec.n else -1

    def _output_callback(self, topic: str, msgtype: str):
        timed = topic in (self.args.latency_topic, self.T.DISPARITY)

        def callback(raw: bytes) -> None:
            now = time.monotonic()
            self.counts[topic] += 1
            if not timed:
                return
            i = self._index(stamp_of(self.convert.decode(raw, msgtype)))
            if i < 0:
                return
            if topic == self.T.DISPARITY:
                self.rec.disparity[i] = True
            if topic == self.args.latency_topic and not np.isfinite(self.rec.latency_ms[i]):
                self.rec.latency_ms[i] = (now - self.rec.t_pub[i]) * 1e3
                if i < self.rec.n - 1:  # the sender had moved on: it came after the frame's deadline
                    self.answered_late += 1
        return callback

    def _diag_callback(self, raw: bytes) -> None:
        msg = self.convert.decode(raw, "diagnostic_msgs/msg/DiagnosticArray")
        for status in msg.status:
            if status.name.endswith(": pipeline"):
                self.diag = {kv.key: kv.value for kv in status.values}
                self.diag_count += 1
                if len(self.diag_frame_ms) < 200_000:  # bounded (one a diagnostics period)
                    self.diag_frame_ms.append((self.rec.n, float(self.diag.get("last_frame_ms", "nan"))))

    def dval(self, key: str) -> int:
        try:
            return int(float(self.diag.get(key, 0)))
        except ValueError:
            return 0

    def ready(self, timeout: float) -> bool:
        def ok() -> bool:
            return (bool(self.diag) and all(p.get_subscription_count() > 0 for p in self.pubs.values())
                    and all(self.dval(f"inputs.{NS}/{t}.publishers") > 0 for t in INPUTS)
                    and all(self.dval(f"outputs.{t}.subscribers") > 0 for t in self.outputs))
        return self.c.spin_until(ok, timeout)

    def sample(self) -> None:
        s = proc_status(self.node.pid)
        self.rec.samples.append((self.rec.n, s.get("VmRSS", float("nan")), time.perf_counter() - self.rec.t0, 0))
        self.rec.extra.append({k: s.get(k, float("nan")) for k in ("VmHWM", "Threads", "fds")})

    def send(self, frame) -> None:
        from perception.frame import Header, Pose
        from perception.io import messages as M

        i = self.rec.n
        hdr = M.header_msg(frame.header)
        t = self.templates[frame.index % len(self.templates)]
        x = self.args.speed * (frame.header.stamp_ns - self.t0_stamp) / 1e9  # straight ahead along odom x
        pose = Pose(position=np.array([x, 0.0, 0.0]), orientation=np.array([0.0, 0.0, 0.0, 1.0]))
        odom_header = Header(frame.header.stamp_ns, "odom")  # odom -> base_link (REP-105), at the frame's stamp
        data = {"odom": self.convert.encode(M.odometry_to_msg(odom_header, pose))}
        for kind in ("left_info", "right_info", "left", "right"):
            data[kind] = self.convert.encode(dataclasses.replace(t[kind], header=hdr))
        self.rec.t_pub[i] = time.monotonic()
        self.rec.n += 1
        for kind in ("odom", "left_info", "right_info", "left", "right"):
            self.pubs[kind].publish(data[kind])

    def run(self) -> dict:
        a, rec = self.args, self.rec
        out: dict = {"size": a.size, "frames": a.frames, "distinct_frames": len(self.templates),
                     "latency_topic": a.latency_topic, "speed_m_s": a.speed, "period_ms": a.period_ms,
                     "node_pid": self.node.pid, "timings_s": {}}
        t_start = time.monotonic()
        out["ready"] = self.ready(a.ready_timeout)
        out["timings_s"]["startup"] = round(time.monotonic() - t_start, 2)
        if not out["ready"]:
            out["error"] = f"the node and this peer did not discover each other within {a.ready_timeout} s"
            return out
        out["rss_before_frames_mb"] = round(proc_status(self.node.pid).get("VmRSS", float("nan")), 2)
        rec.t0 = time.perf_counter()
        stopped = None
        for frame in self.frames:  # N frames
            if time.monotonic() > self.c.deadline - a.frame_timeout - 15.0:
                stopped = f"run budget of {a.budget_s} s reached after {rec.n} frames"
                break
            if self.node.poll() is not None:
                stopped = f"the node exited ({self.node.returncode}) after {rec.n} frames"
                break
            i, dropped0 = rec.n, self.dval("dropped")
            self.send(frame)
            self.c.spin_until(lambda: np.isfinite(rec.latency_ms[i]) or self.dval("dropped") > dropped0,
                              a.frame_timeout)
            if a.period_ms > 0:  # pacing, not synchronisation: no faster than one frame per period (spinning)
                due = rec.t_pub[i] + a.period_ms / 1e3
                self.c.spin_until(lambda: False, due - time.monotonic())
            if rec.n % a.every == 0 or rec.n == a.frames:
                self.sample()
        if not rec.samples or rec.samples[-1][0] != rec.n:
            self.sample()
        out["stopped"] = stopped
        out["timings_s"]["frames"] = round(time.perf_counter() - rec.t0, 2)

        # the end: late answers, then a /diagnostics message that counts every frame the node was handed
        def settled() -> bool:
            answered = int(np.isfinite(rec.latency_ms[:rec.n]).sum())
            return answered + self.dval("dropped") >= rec.n
        self.c.spin_until(settled, 15.0)
        n_diag = self.diag_count
        self.c.spin_until(lambda: self.diag_count >= n_diag + 2, 4 * a.diagnostics_period + 5.0)  # a fresh period
        d = dict(self.diag)
        out["node_rss_final"] = proc_status(self.node.pid)
        self.node.send_signal(signal.SIGINT)
        try:
            out["node_exit_code"] = self.node.wait(timeout=20)
        except subprocess.TimeoutExpired:
            out["node_exit_code"] = None

        out.update(self.summary(d))
        if a.plot:
            out["plot"] = str(self.plot(a.plot, f"node soak {rec.n} frames at {a.size}"))
        return out

    def summary(self, d: dict) -> dict:
        from perception.bench.measure import cores, rss_mb
        from perception.bench.soak import summarise

        a, rec = self.args, self.rec
        n = rec.n
        warmup = max(n // 10, 2 * a.every) if a.warmup is None else a.warmup
        s = summarise(rec, min(warmup, max(n - 1, 0)))
        for key in ("pipeline_p50_first_ms", "pipeline_p50_last_ms", "bag_bytes_per_frame", "frames_failed",
                    "frames_done"):
            s.pop(key, None)
        answered = np.isfinite(rec.latency_ms[:n])
        dropped = {k[len("dropped."):]: int(v) for k, v in d.items() if k.startswith("dropped.")}
        n_dropped = int(sum(dropped.values()))
        tenth = max(1, n // 10)
        frame_ms = np.array([ms for k, ms in self.diag_frame_ms if k > 0], np.float64)
        frames_at = np.array([k for k, _ in self.diag_frame_ms if k > 0], np.int64)
        first_ms = frame_ms[frames_at <= tenth]
        last_ms = frame_ms[frames_at > n - tenth]
        s["curve"].update(
            vmhwm_mb=[round(e["VmHWM"], 2) for e in rec.extra], threads=[int(e["Threads"]) for e in rec.extra
                                                                          if np.isfinite(e["Threads"])],
            fds=[int(e["fds"]) for e in rec.extra if np.isfinite(e["fds"])])
        return {
            "frames_sent": n, "frames_answered": int(answered.sum()), "answered_late": self.answered_late,
            "frames_with_disparity": int(rec.disparity[:n].sum()),
            "frames_dropped": n_dropped, "dropped_by_reason": dropped,
            "frames_unanswered": max(0, n - int(answered.sum()) - n_dropped),
            "node": {k: d.get(k) for k in ("frames_in", "frames_processed", "frames_idle", "dropped", "fps")},
            "node_stage_p50_ms": {k.split(".")[1]: float(v) for k, v in d.items()
                                  if k.startswith("stage.") and k.endswith(".p50_ms")},
            "node_frame_ms_p50_first": round(float(np.median(first_ms)), 2) if first_ms.size else None,
            "node_frame_ms_p50_last": round(float(np.median(last_ms)), 2) if last_ms.size else None,
            "outputs_received": dict(self.counts),
            "threads_first_last": [s["curve"]["threads"][0], s["curve"]["threads"][-1]] if s["curve"]["threads"]
            else None,
            "fds_first_last": [s["curve"]["fds"][0], s["curve"]["fds"][-1]] if s["curve"]["fds"] else None,
            **s, "cores": cores(), "peer_rss_mb": round(rss_mb(), 1),
        }

    def plot(self, path: str, title: str) -> Path:
        from perception.bench.plot import line_chart, save_panels
        from perception.bench.soak import _p

        rec = self.rec
        frames = [s[0] for s in rec.samples]
        p50, p99, prev = [], [], 0
        for f in frames:  # latency over each sampling window
            p50.append(_p(rec.latency_ms[prev:f], 50))
            p99.append(_p(rec.latency_ms[prev:f], 99))
            prev = f
        return save_panels(path, [
            line_chart(frames, {"node RSS MB": [s[1] for s in rec.samples]}, title=f"{title}: node resident memory",
                       xlabel="frames", ylabel="MB", min_span=20.0),
            line_chart(frames, {"p50 ms": p50, "p99 ms": p99}, zero_based=True, xlabel="frames", ylabel="ms",
                       title=f"latency per frame (publish -> {self.args.latency_topic} received), per window"),
        ])

    def close(self) -> None:
        if self.node.poll() is None:
            self.node.kill()
            self.node.wait()
        self.c.close()
        self.log.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--plot", help="PNG of the RSS and latency curves")
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--every", type=int, default=100, help="sample the node's RSS every K frames")
    ap.add_argument("--warmup", type=int, help="frames left out of the RSS slope (default: a tenth, >= 2 samples)")
    ap.add_argument("--distinct", type=int, default=8, help="synthetic frames rendered and cycled")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed", type=float, default=1.0, help="robot speed along odom x, m/s (0: parked)")
    ap.add_argument("--latency-topic", default="map/costmap")
    ap.add_argument("--period-ms", type=float, default=0.0, help="send no faster than one frame per period")
    ap.add_argument("--frame-timeout", type=float, default=10.0, help="longest wait for one frame's answer, s")
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    ap.add_argument("--budget-s", type=float, help="the whole run, s (default: 120 + 3 s a frame)")
    ap.add_argument("--diagnostics-period", type=float, default=0.5)
    ap.add_argument("--node-log", help="the node's output (default: beside --out)")
    ap.add_argument("--tmp", default="/tmp")
    args = ap.parse_args()
    if args.frames < 2 or not 1 <= args.every <= args.frames:
        ap.error("--frames must be >= 2 and --every between 1 and --frames")
    args.budget_s = args.budget_s or 120.0 + 3.0 * args.frames
    args.node_log = args.node_log or str(Path(args.out).with_suffix(".node.log"))

    def run() -> dict:
        soak = Soak(args)
        try:
            return soak.run()
        finally:
            soak.close()

    return report(args.out, run)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
