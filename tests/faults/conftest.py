"""Fixtures of the fault tests: the ROS machinery of tests/ros (real rclpy in a private network namespace), reused."""
from __future__ import annotations

from tests.ros.conftest import namespace_runner, rclpy_available  # noqa: F401 - fixtures, shared not copied
