"""The perception node: a thin rclpy adapter around `perception.pipeline.Pipeline` (docs/ros.md).

Inputs (sensor-data QoS, overridable): `left/image_rect` + `right/image_rect` (or `.../image_raw` with
`raw_input: true`) and `left/camera_info` + `right/camera_info`; `image` + `camera_info` with `mono: true`;
optionally `odom` (nav_msgs/Odometry) for the robot pose. Left and right are paired by stamp
(`perception.sources.sync.StereoSync`, tolerance `sync_tolerance_ms`). Frames go to the pipeline worker through a
bounded queue (`frame_queue`, oldest dropped when full), so the callbacks never wait for the pipeline and a slow
frame costs fresh ones, not latency; the worker starts the next frame (rectify, disparity, networks) in a second
thread while it finishes the current one (`overlap`, perception.pipeline.overlap).

Outputs are what `perception.pipeline.outputs.write_result` writes for a replayed bag, published instead of
written (`RosWriter`); stamps and frame_id are the input frame's
(grids: the frame their origin is in, the pose's frame: odom). An output with no subscriber is not converted
(transient-local maps are always published); with `lazy: true` a frame no output wants is not processed at all.
`/diagnostics` carries per-stage timing, counts and drops by reason (`perception_nodes.diagnostics`).

All stages run in this one process by default (`perception_node`): images are never copied between processes.
`stereo_node`, `terrain_node` and `detect_node` are the same node with only that stage's outputs enabled.

Messages cross the rclpy boundary as CDR bytes converted by the core (`perception_nodes.convert`). A malformed
message (undecodable bytes, unknown encoding, truncated data, sizes that disagree) is counted under its reason
and the node goes on with the next frame.
"""
from __future__ import annotations

import bisect
import sys
import threading
import time
from collections import deque
from dataclasses import fields, is_dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from perception import topics as T
from perception.errors import InputError, PerceptionError
from perception.frame import Frame, Header
from perception.io import messages as M
from perception.io.qos import RELIABLE_QOS, SENSOR_QOS
from perception.pipeline import Pipeline, PipelineConfig
from perception.pipeline.outputs import write_result
from perception.pipeline.overlap import overlapped
from perception.sources.sync import StereoSync
from perception_nodes import convert
from perception_nodes.diagnostics import NodeCounters
from perception_nodes.outputs import (
    DETECTIONS_FALLBACK, DETECTIONS_TYPE, DIAGNOSTICS, GRID, IMAGE, OUTPUT_TYPES, REL_NAMESPACE, STAGE_NEEDED_BY,
    STAGE_OUTPUTS, RosWriter, output_qos,
)
from perception_nodes.params import OUTPUT_CHOICES, ParamSpec, all_specs, config_from_values, pipeline_specs

INFO = "sensor_msgs/msg/CameraInfo"
ODOM = "nav_msgs/msg/Odometry"
#: PipelineConfig sections the core reads on every frame (changed in place, nothing restarted)
LIVE_SECTIONS = {"disparity"}
INFO_WAIT_S = 1.0  # longest wait for a frame's first camera_info before the frame is dropped (counted)


class _InfoCache:
    """The converted CameraInfo of one side, re-used while the message does not change (so the rectifier, which
    caches its maps per camera model, is not rebuilt every frame)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.key: tuple | None = None
        self.info = None

    def get(self, msg):
        key = (int(msg.width), int(msg.height), str(msg.distortion_model), str(msg.header.frame_id),
               np.asarray(msg.d, dtype=np.float64).tobytes(), np.asarray(msg.k, dtype=np.float64).tobytes(),
               np.asarray(msg.r, dtype=np.float64).tobytes(), np.asarray(msg.p, dtype=np.float64).tobytes())
        if key != self.key:
            self.info = M.camera_info_from_msg(msg, topic=self.topic)
            self.key = key
        return self.info


@lru_cache(maxsize=1)
def node_class():
    """The PerceptionNode class, built on rclpy's Node when first asked for (importing this module needs no rclpy)."""
    from rclpy.node import Node

    return type("PerceptionNode", (_PerceptionNodeMixin, Node), {"__doc__": __doc__})


def create_node(name: str = "perception", default_outputs: tuple[str, ...] = ("all",), **node_kwargs):
    """The perception node (an rclpy Node); `default_outputs` is the `outputs` parameter's default."""
    return node_class()(name, default_outputs, **node_kwargs)


class _PerceptionNodeMixin:
    def __init__(self, name: str, default_outputs: tuple[str, ...], **node_kwargs) -> None:
        super().__init__(name, **node_kwargs)
        self.counters = NodeCounters()
        self._specs: dict[str, ParamSpec] = {}
        for spec in all_specs(default_outputs):
            self._specs[spec.name] = spec
            self.declare_parameter(spec.name, spec.ros_default, spec.descriptor())
        self._pipeline_names = {s.name for s in pipeline_specs()}
        p = self.get_parameter
        self.raw_input = bool(p("raw_input").value)
        self.mono = bool(p("mono").value)
        self.lazy = bool(p("lazy").value)
        self.backend = str(p("backend").value)
        self._odom_max_dt_ns = int(float(p("odom_max_dt_ms").value) * 1e6)
        self.outputs = self._check_outputs(list(p("outputs").value))
        self.config = config_from_values({n: p(n).value for n in self._pipeline_names})
        self._check_choice("backend", self.backend)
        self.pipeline = self._make_pipeline(self.config)
        self._pending_config: PipelineConfig | None = None
        self._stage_summary: dict[str, dict[str, float]] = {}
        self._resets: dict[str, int] = {}
        self.add_on_set_parameters_callback(self._on_set_parameters)

        tolerance_ns = int(float(p("sync_tolerance_ms").value) * 1e6)
        self.sync = StereoSync(tolerance_ns, int(p("sync_queue_size").value), stereo=not self.mono)
        self._sync_lock = threading.Lock()
        self._info_arrived = threading.Condition(self._sync_lock)
        self._queue: deque = deque()
        self._queue_size = int(p("frame_queue").value)
        self._cv = threading.Condition()
        self._stop = False
        self._overlap = int(p("overlap").value)
        self._started_at: dict[int, float] = {}  # frame index -> when its conversion began (latency)
        self._index = 0
        self._odom: list[tuple[int, Any]] = []
        self._odom_lock = threading.Lock()

        self._out_pubs: dict[str, Any] = {}
        self._out_types: dict[str, str] = {}
        for topic in OUTPUT_CHOICES:
            if topic != "all" and topic in OUTPUT_TYPES and self._enabled(topic):
                self._create_publisher(topic, OUTPUT_TYPES[topic])
        self._diag_pub = self.create_publisher(convert.msg_type(DIAGNOSTICS),
                                               T.DIAGNOSTICS, convert.qos_profile(RELIABLE_QOS))
        self._subscribe_inputs()
        self._worker = threading.Thread(target=self._work, name="perception-pipeline", daemon=True)
        self._worker.start()
        self.create_timer(float(p("diagnostics_period_s").value), self.publish_diagnostics)
        self.get_logger().info(
            f"perception node: {'mono' if self.mono else 'stereo'} {'raw' if self.raw_input else 'rectified'} "
            f"input, outputs {', '.join(sorted(self._out_pubs))}")

    # --- parameters --------------------------------------------------------------------------------------------
    def _check_choice(self, name: str, value: Any) -> None:
        choices = self._specs[name].choices
        if choices and value not in choices:
            raise InputError(f"got {value!r}", subject=f"parameter {name}", hint=f"use one of {', '.join(choices)}")

    def _check_outputs(self, outputs: list[str]) -> set[str]:
        for o in outputs:
            self._check_choice("outputs", o)
        return set(OUTPUT_CHOICES[1:]) if "all" in outputs else set(outputs)

    def _enabled(self, topic: str) -> bool:
        return topic in self.outputs

    def _make_pipeline(self, config: PipelineConfig) -> Pipeline:
        """The core pipeline with only the stages the enabled outputs need (`stereo_node`: rectify + disparity),
        and the node's `backend` (unless auto) given to every section that has a `backend` field."""
        changes: dict[str, Any] = {}
        for f in fields(config):
            section = getattr(config, f.name)
            if not is_dataclass(section):
                continue
            names = {g.name for g in fields(section)}
            update: dict[str, Any] = {}
            if self.backend != "auto" and "backend" in names:
                update["backend"] = self.backend
            if f.name in STAGE_NEEDED_BY and "enabled" in names and not self.outputs & STAGE_NEEDED_BY[f.name]:
                update["enabled"] = False
            if update:
                changes[f.name] = replace(section, **update)
        config = replace(config, **changes) if changes else config
        return Pipeline(config, terrain=bool(self.outputs & STAGE_NEEDED_BY["terrain"]))

    def _on_set_parameters(self, params):
        from rcl_interfaces.msg import SetParametersResult

        values, node_values = {}, {}
        for prm in params:  # (rclpy has checked types and ranges before calling this)
            if prm.name in self._specs and self._specs[prm.name].read_only:
                return SetParametersResult(successful=False, reason=f"{prm.name} is read-only (set it at start)")
            if prm.name in self._pipeline_names:
                values[prm.name] = prm.value
            elif prm.name in self._specs:
                node_values[prm.name] = prm.value
        config = None
        if values:
            try:
                config = config_from_values(values, self._pending_config or self.config)
            except (PerceptionError, ValueError, TypeError) as err:
                return SetParametersResult(successful=False, reason=str(err))
        with self._cv:
            if config is not None:
                self._pending_config = config
            self._apply_node_values(node_values)
        return SetParametersResult(successful=True)

    def _apply_node_values(self, v: dict[str, Any]) -> None:
        """Node parameters changed at run time (the read-only ones are refused before)."""
        if "lazy" in v:
            self.lazy = bool(v["lazy"])
        if "frame_queue" in v:
            self._queue_size = int(v["frame_queue"])
        if "odom_max_dt_ms" in v:
            self._odom_max_dt_ns = int(float(v["odom_max_dt_ms"]) * 1e6)
        if "sync_tolerance_ms" in v or "sync_queue_size" in v:
            p = self.get_parameter
            tolerance = float(v.get("sync_tolerance_ms", p("sync_tolerance_ms").value))
            size = int(v.get("sync_queue_size", p("sync_queue_size").value))
            with self._sync_lock:  # images waiting for a partner are let go
                self.sync = StereoSync(int(tolerance * 1e6), size, stereo=not self.mono)

    # --- inputs ------------------------------------------------------------------------------------------------
    def _subscribe_inputs(self) -> None:
        """One fresh QoS profile per subscription: rclpy applies qos_overrides to the profile object in place."""
        from rclpy.event_handler import SubscriptionEventCallbacks
        from rclpy.qos_overriding_options import QoSOverridingOptions

        if self.mono:
            streams = [("left", T.MONO_IMAGE, IMAGE), ("left_info", T.MONO_INFO, INFO)]
        else:
            left, right = (T.LEFT_IMAGE_RAW, T.RIGHT_IMAGE_RAW) if self.raw_input else (T.LEFT_IMAGE, T.RIGHT_IMAGE)
            streams = [("left", left, IMAGE), ("right", right, IMAGE), ("left_info", T.LEFT_INFO, INFO),
                       ("right_info", T.RIGHT_INFO, INFO)]
        self.input_topics = {kind: topic for kind, topic, _ in streams}
        self._info_cache = {"left": _InfoCache(self.input_topics["left_info"]),
                            "right": _InfoCache(self.input_topics.get("right_info", ""))}
        self._in_subs = []
        for kind, topic, msgtype in streams:
            events = SubscriptionEventCallbacks(message_lost=self._lost_callback(topic))
            try:
                sub = self.create_subscription(
                    convert.msg_type(msgtype), topic, self._input_callback(kind, topic, msgtype),
                    convert.qos_profile(SENSOR_QOS), raw=True,
                    qos_overriding_options=QoSOverridingOptions.with_default_policies(), event_callbacks=events)
            except Exception:  # noqa: BLE001 - an RMW without message-lost events: subscribe without them
                sub = self.create_subscription(
                    convert.msg_type(msgtype), topic, self._input_callback(kind, topic, msgtype),
                    convert.qos_profile(SENSOR_QOS), raw=True,
                    qos_overriding_options=QoSOverridingOptions.with_default_policies())
            self._in_subs.append(sub)
        self._in_subs.append(self.create_subscription(convert.msg_type(ODOM), "odom", self._on_odom,
                                                      convert.qos_profile(SENSOR_QOS), raw=True))

    def _lost_callback(self, topic: str):
        def lost(info) -> None:
            n = int(getattr(info, "total_count_change", 0))
            if 0 < n < 1_000_000:  # Fast DDS reports a meaningless huge gap for a writer first seen mid-stream
                self.counters.drop(f"message lost ({topic})", n)
        return lost

    def _input_callback(self, kind: str, topic: str, msgtype: str):
        def callback(raw: bytes) -> None:
            try:
                msg = convert.decode(raw, msgtype)
                stamp = M.stamp_ns(msg.header.stamp)
            except Exception as err:  # noqa: BLE001 - any undecodable bytes: count and go on
                self.counters.drop("undecodable message")
                self.get_logger().warning(f"{topic}: undecodable {msgtype} ({type(err).__name__}: {err})",
                                          throttle_duration_sec=5.0)
                return
            with self._sync_lock:
                events = self.sync.add(kind, stamp, (topic, msg))
                if kind.endswith("_info"):
                    self._info_arrived.notify_all()
            for event in events:
                if event.ok:
                    self._enqueue(event)
                else:
                    self.counters.drop(event.reason)
        return callback

    def _on_odom(self, raw: bytes) -> None:
        try:
            msg = convert.decode(raw, ODOM)
            pose = M.pose_from_msg(msg, topic="odom")
        except Exception:  # noqa: BLE001
            self.counters.drop("bad odometry")
            return
        with self._odom_lock:
            self._odom.append((M.stamp_ns(msg.header.stamp), pose))
            del self._odom[:-200]

    def _pose_at(self, stamp_ns: int):
        """The odom -> base_link pose nearest in time to the frame (within `odom_max_dt_ms`), or None."""
        max_dt_ns = self._odom_max_dt_ns
        with self._odom_lock:
            if not self._odom:
                return None
            stamps = [s for s, _ in self._odom]
            i = bisect.bisect_left(stamps, stamp_ns)
            cands = [c for c in (i - 1, i) if 0 <= c < len(stamps)]
            best = min(cands, key=lambda c: abs(stamps[c] - stamp_ns))
            return self._odom[best][1] if abs(stamps[best] - stamp_ns) <= max_dt_ns else None

    def _enqueue(self, event) -> None:
        with self._cv:
            self.counters.add("frames_in")
            self._queue.append(event)
            while len(self._queue) > self._queue_size:
                self._queue.popleft()
                self.counters.drop("pipeline busy")
            self._cv.notify()

    # --- the pipeline worker -----------------------------------------------------------------------------------
    def _work(self) -> None:
        """Frames from the queue through the pipeline, `overlap` frames started ahead in a second thread
        (`perception.pipeline.overlap`). A parameter change ends the current run once the frames in flight are
        done, so the pipeline is reconfigured (or rebuilt) with nothing in it."""
        while not self._stop:
            with self._cv:
                config, self._pending_config = self._pending_config, None
            if config is not None:
                self._apply_config(config)
            try:
                for result in overlapped(self.pipeline, self._frames(), depth=self._overlap):
                    self._publish(result)
            except Exception as err:  # noqa: BLE001 - never let one frame end the node: count it, go on
                self.counters.drop(f"internal error ({type(err).__name__})")
                self.get_logger().error(f"pipeline: {type(err).__name__}: {err}", throttle_duration_sec=5.0)

    def _frames(self):
        """Frames of the queued stereo events, until the node stops or a parameter change is pending."""
        while True:
            with self._cv:
                while not self._queue and not self._stop and self._pending_config is None:
                    self._cv.wait(timeout=0.5)
                if self._stop or self._pending_config is not None:
                    return
                event = self._queue.popleft()
            if self.lazy and not any(pub.get_subscription_count() > 0 for pub in self._out_pubs.values()):
                self.counters.add("frames_idle")
                continue
            t0 = time.perf_counter()
            try:
                frame = self._frame(event)
            except PerceptionError as err:
                self.counters.drop(_reason(err))
                self.get_logger().warning(str(err), throttle_duration_sec=5.0)
                continue
            with self._cv:
                self._started_at[frame.index] = t0
            yield frame

    def _apply_config(self, config: PipelineConfig) -> None:
        """Sections the core reads every frame change in place; others rebuild the pipeline (which restarts the
        terrain learning and the map: logged)."""
        changed = {f.name for f in fields(config) if getattr(config, f.name) != getattr(self.config, f.name)}
        reconfigure = getattr(self.pipeline, "reconfigure", None)
        if callable(reconfigure):
            reconfigure(config)
        elif changed <= LIVE_SECTIONS:
            self.pipeline.config = config
        else:
            old = self.pipeline
            self.pipeline = self._make_pipeline(config)
            getattr(old, "close", lambda: None)()
            self.get_logger().warning(f"parameters of {', '.join(sorted(changed))} changed: pipeline rebuilt, "
                                      "terrain learning and map restarted")
        self.config = config
        self.get_logger().info(f"parameters applied ({', '.join(sorted(changed)) or 'no change'})")

    def _info(self, event, side: str):
        """The camera_info message of one side of a pair: the synchroniser's, else (the info callback ran after
        the images') the one stored for that stamp, waiting up to INFO_WAIT_S for it: camera_info and the image
        come from separate writers, so the very first image may arrive before any camera_info."""
        found = getattr(event, f"{side}_info")
        if found is None:
            stamp = getattr(event, f"{side}_stamp_ns") or event.stamp_ns
            with self._info_arrived:
                self._info_arrived.wait_for(lambda: self.sync.infos[side].lookup(stamp) is not None or self._stop,
                                            timeout=INFO_WAIT_S)
                found = self.sync.infos[side].lookup(stamp)
        if found is None:
            raise InputError("no camera_info received yet", subject=self.input_topics[f"{side}_info"])
        return found[1]

    def _frame(self, event) -> Frame:
        ltopic, lmsg = event.left
        left = M.to_pipeline(M.image_from_msg(lmsg, topic=ltopic), str(lmsg.encoding), topic=ltopic)
        right = right_info = None
        left_info = self._info_cache["left"].get(self._info(event, "left"))
        if event.right is not None:
            rtopic, rmsg = event.right
            right = M.to_pipeline(M.image_from_msg(rmsg, topic=rtopic), str(rmsg.encoding), topic=rtopic)
            right_info = self._info_cache["right"].get(self._info(event, "right"))
        header = M.header_from_msg(lmsg.header)
        self._index += 1
        return Frame(header=header, left=left, right=right, left_info=left_info, right_info=right_info,
                     rectified=not self.raw_input, pose=self._pose_at(header.stamp_ns), index=self._index)

    def _publish(self, result) -> None:
        with self._cv:
            t0 = self._started_at.pop(result.frame.index, None)
        if not result.ok:
            self.counters.drop(_reason_text(result.error))
            self.get_logger().warning(f"frame {result.header.stamp_ns} skipped: {result.error}",
                                      throttle_duration_sec=5.0)
            return
        write_result(RosWriter(self), result, namespace=REL_NAMESPACE, copy_inputs=False,
                     overlay=self.wants(T.OVERLAY))  # the overlay is composed only for a subscriber
        self.counters.frame_done(result.timings_ms, (time.perf_counter() - (t0 or time.perf_counter())) * 1e3)
        self._stage_summary = self.pipeline.times.summary()
        self._resets = self.pipeline.resets()

    # --- outputs -----------------------------------------------------------------------------------------------
    def _create_publisher(self, topic: str, msgtype: str):
        from rclpy.qos_overriding_options import QoSOverridingOptions

        if msgtype == DETECTIONS_TYPE and not convert.has_msg_type(msgtype):
            self.get_logger().info("vision_msgs is not installed: detections go out as JSON in std_msgs/String")
            msgtype = DETECTIONS_FALLBACK
        pub = self.create_publisher(convert.msg_type(msgtype), topic, convert.qos_profile(output_qos(topic, msgtype)),
                                    qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self._out_pubs[topic] = pub
        self._out_types[topic] = msgtype
        return pub

    def wants(self, topic: str) -> bool:
        """Whether `topic` is worth converting now: enabled, and subscribed (or transient local)."""
        pub = self._out_pubs.get(topic)
        if pub is None:
            if not self._enabled(topic):
                return False
            return True  # created on first publish
        if self._out_types[topic] == GRID:
            return True
        return pub.get_subscription_count() > 0

    def publish(self, topic: str, msg: Any) -> None:
        if not self._enabled(topic):
            return
        pub = self._out_pubs.get(topic)
        if pub is None:
            if not convert.has_msg_type(msg.__msgtype__):
                self.counters.drop(f"no message type for {topic} ({msg.__msgtype__})")
                return
            pub = self._create_publisher(topic, msg.__msgtype__)
        if self._out_types[topic] == DETECTIONS_FALLBACK and msg.__msgtype__ == DETECTIONS_TYPE:
            msg = M.string_to_msg(convert.detections_json(msg))
        pub.publish(convert.encode(msg))
        self.counters.output(topic, True)

    def publish_diagnostics(self) -> None:
        try:
            self._publish_diagnostics()
        except Exception as err:  # noqa: BLE001 - an exception in a timer callback would end rclpy.spin
            self.get_logger().error(f"diagnostics: {type(err).__name__}: {err}", throttle_duration_sec=10.0)

    def _publish_diagnostics(self) -> None:
        now = self.get_clock().now().nanoseconds
        subscribers = {t: pub.get_subscription_count() for t, pub in self._out_pubs.items()}
        publishers = {sub.topic_name: sub.get_publisher_count() for sub in self._in_subs}
        statuses = self.counters.statuses(self.get_fully_qualified_name(), self._stage_summary,
                                          hardware_id=self.backend, subscribers=subscribers, publishers=publishers,
                                          resets=self._resets)
        self._diag_pub.publish(convert.encode(M.diagnostics_to_msg(Header(now, ""), statuses)))

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._worker.join(timeout=5.0)


def _reason(err: PerceptionError) -> str:
    return f"{type(err).__name__}: {err.message}"[:120]


def _reason_text(text: str) -> str:
    return text.split(" (")[0][:120]


def run(name: str, default_outputs: tuple[str, ...], args: list[str] | None = None) -> int:
    import rclpy
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
    from rclpy.executors import ExternalShutdownException

    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = create_node(name, default_outputs)
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (PerceptionError, InvalidParameterValueException, InvalidParameterTypeException) as err:
        print(f"{name}: refusing to start: {err}", file=sys.stderr, flush=True)
        code = 2
    # Ctrl-C: rclpy's handler shuts the context down (ending spin) and then raises KeyboardInterrupt wherever
    # Python is; each cleanup step still runs.
    steps = [] if node is None else [node.stop, lambda: getattr(node.pipeline, "close", lambda: None)(),
                                     node.destroy_node]
    for step in [*steps, rclpy.try_shutdown]:
        try:
            step()
        except KeyboardInterrupt:
            pass
    return code


def _interruptible(fn, *args) -> int:
    try:
        return fn(*args)
    except KeyboardInterrupt:  # a Ctrl-C that arrives while the node is already stopping
        return 0


def main(args: list[str] | None = None) -> int:
    """`perception_node`: every stage in one process (the default)."""
    return _interruptible(run, "perception", ("all",), args)


def stereo_main(args: list[str] | None = None) -> int:
    """`stereo_node`: the same node publishing only the stereo stage's outputs (disparity)."""
    return _interruptible(run, "stereo", STAGE_OUTPUTS["stereo"], args)


def terrain_main(args: list[str] | None = None) -> int:
    """`terrain_node`: the same node publishing only the terrain stage's outputs."""
    return _interruptible(run, "terrain", STAGE_OUTPUTS["terrain"], args)


def detect_main(args: list[str] | None = None) -> int:
    """`detect_node`: the same node publishing only the detection stage's outputs (detections, warnings)."""
    return _interruptible(run, "detect", STAGE_OUTPUTS["detect"], args)


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["create_node", "detect_main", "main", "node_class", "run", "stereo_main", "terrain_main"]
