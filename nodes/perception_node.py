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

import sys
import threading
import time
from collections import deque
from dataclasses import fields, is_dataclass, replace
from functools import lru_cache
from typing import Any

from perception import topics as T
from perception.errors import InputError, PerceptionError
from perception.frame import Header
from perception.io import messages as M
from perception.io.qos import RELIABLE_QOS
from perception.pipeline import Pipeline, PipelineConfig
from perception.pipeline.outputs import write_result
from perception.pipeline.overlap import overlapped
from perception.sources.sync import StereoSync
from perception_nodes import convert
from perception_nodes.diagnostics import NodeCounters
from perception_nodes.inputs import InputsMixin
from perception_nodes.outputs import (
    DETECTIONS_FALLBACK, DETECTIONS_TYPE, DIAGNOSTICS, GRID, OUTPUT_TYPES, REL_NAMESPACE, STAGE_NEEDED_BY,
    STAGE_OUTPUTS, RosWriter, output_qos,
)
from perception_nodes.params import OUTPUT_CHOICES, ParamSpec, all_specs, config_from_values, pipeline_specs

#: PipelineConfig sections the core reads on every frame (changed in place, nothing restarted)
LIVE_SECTIONS = {"disparity"}


@lru_cache(maxsize=1)
def node_class():
    """The PerceptionNode class, built on rclpy's Node when first asked for (importing this module needs no rclpy)."""
    from rclpy.node import Node

    return type("PerceptionNode", (_PerceptionNodeMixin, Node), {"__doc__": __doc__})


def create_node(name: str = "perception", default_outputs: tuple[str, ...] = ("all",), **node_kwargs):
    """The perception node (an rclpy Node); `default_outputs` is the `outputs` parameter's default."""
    return node_class()(name, default_outputs, **node_kwargs)


class _PerceptionNodeMixin(InputsMixin):
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
