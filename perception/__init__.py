"""ROS-free perception core: numpy, OpenCV and ONNX Runtime (TensorRT + cuda-python when present).

Nothing in this package imports rclpy or ROS message types; the ROS layer lives in `perception_nodes`.
"""
__version__ = "0.1.0"
