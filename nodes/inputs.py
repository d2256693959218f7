"""The node's input side: sensor-data subscriptions, stereo pairing by stamp, camera_info and odometry lookup,
and the conversion of a paired event into a `perception.frame.Frame` (docs/ros.md). A mixin of the perception
node: it uses the attributes the node sets up (counters, sync, queues, locks).
"""
from __future__ import annotations

import bisect

import numpy as np

from perception import topics as T
from perception.errors import InputError
from perception.frame import Frame
from perception.io import messages as M
from perception.io.qos import SENSOR_QOS
from perception_nodes import convert
from perception_nodes.outputs import IMAGE

INFO = "sensor_msgs/msg/CameraInfo"
ODOM = "nav_msgs/msg/Odometry"
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


class InputsMixin:
    """Subscriptions and the frames they make; the perception node mixes it in (module docstring)."""

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


__all__ = ["INFO", "INFO_WAIT_S", "InputsMixin", "ODOM"]
