"""rclpy nodes: thin adapters (parameters, QoS, message <-> numpy) around `perception.pipeline`.

Installed as the Python package `perception_nodes`. Nothing in `perception` imports from here.
"""
