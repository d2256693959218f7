"""perception_nodes.convert: core messages <-> rclpy messages through CDR bytes, QoS profiles and parameter
descriptors. Needs rclpy (no DDS traffic)."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ros


@pytest.fixture(autouse=True)
def _rclpy(rclpy_available):
    pass


def test_image_round_trips_through_rclpy():
    from perception.frame import Header
    from perception.io import messages as M
    from perception_nodes import convert

    img = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    msg = convert.to_rclpy(M.image_to_msg(Header(1_700_000_000_123_456_789, "cam"), img))
    assert type(msg).__name__ == "Image" and msg.encoding == "bgr8" and (msg.width, msg.height) == (8, 6)
    assert msg.header.stamp.sec == 1_700_000_000 and msg.header.stamp.nanosec == 123_456_789
    back = convert.from_rclpy(msg)
    assert np.array_equal(M.image_from_msg(back), img)
    assert M.header_from_msg(back.header) == Header(1_700_000_000_123_456_789, "cam")


def test_grid_disparity_and_diagnostics_round_trip():
    from perception.frame import Header
    from perception.io import messages as M
    from perception_nodes import convert

    h = Header(5, "odom")
    grid = np.array([[0, 50], [100, -1]], dtype=np.int8)
    g = convert.from_rclpy(convert.to_rclpy(M.occupancy_grid_to_msg(h, grid, 0.5, (1.0, 2.0, 0.0))))
    assert np.array_equal(M.occupancy_grid_from_msg(g).data, grid)
    d = np.full((4, 5), 3.5, np.float32)
    dm = convert.to_rclpy(M.disparity_to_msg(h, d, f=400.0, baseline=0.1, min_d=0, max_d=64))
    assert dm.image.encoding == "32FC1" and dm.f == 400.0
    assert np.array_equal(M.disparity_from_msg(convert.from_rclpy(dm)).disparity, d)
    diag = convert.to_rclpy(M.diagnostics_to_msg(h, M.DiagnosticStatus("x", 1, "m", values={"a": 1})))
    assert diag.status[0].values[0].key == "a"


def test_qos_profiles_come_from_the_named_core_profiles():
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    from perception.io.qos import LATCHED_QOS, SENSOR_QOS
    from perception_nodes import convert

    s = convert.qos_profile(SENSOR_QOS)
    assert s.reliability == ReliabilityPolicy.BEST_EFFORT and s.durability == DurabilityPolicy.VOLATILE
    m = convert.qos_profile(LATCHED_QOS)
    assert m.reliability == ReliabilityPolicy.RELIABLE and m.durability == DurabilityPolicy.TRANSIENT_LOCAL


def test_every_parameter_gets_a_descriptor_with_its_range():
    from perception_nodes.params import all_specs

    for spec in all_specs():
        d = spec.descriptor()
        assert d.description == spec.description
        if isinstance(spec.default, bool):
            continue
        if isinstance(spec.default, int) and spec.lo is not None and spec.hi is not None:
            assert (d.integer_range[0].from_value, d.integer_range[0].to_value) == (spec.lo, spec.hi)
        if isinstance(spec.default, float) and spec.lo is not None and spec.hi is not None:
            assert (d.floating_point_range[0].from_value, d.floating_point_range[0].to_value) == (spec.lo, spec.hi)
        if spec.choices:
            assert all(str(c) in d.additional_constraints for c in spec.choices)
