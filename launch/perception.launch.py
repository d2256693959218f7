"""Every stage in ONE process (the default): images are never copied between processes.

    ros2 launch perception perception.launch.py namespace:=stereo raw_input:=true backend:=auto \
        params_file:=/path/to/my.yaml

Subscribes to <namespace>/left/image_rect, right/image_rect (or image_raw with raw_input:=true) and the two
camera_info topics; publishes <namespace>/disparity, terrain/*, map/costmap, overlay ... and /diagnostics
(docs/ros.md). The parameter file is in the `/**: ros__parameters:` form (launch/perception.yaml is the default).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument(
            "params_file", default_value=PathJoinSubstitution([FindPackageShare("perception"), "launch", "perception.yaml"]),
            description="ROS 2 parameters file (/**: ros__parameters:)"),
        DeclareLaunchArgument("namespace", default_value="stereo",
                              description="camera namespace: inputs <namespace>/left/image_rect ..., outputs beside them"),
        DeclareLaunchArgument("backend", default_value="auto", choices=["auto", "onnxruntime", "tensorrt"],
                              description="ConvNet engine backend"),
        DeclareLaunchArgument("raw_input", default_value="false", choices=["true", "false"],
                              description="subscribe to image_raw and rectify with the camera_info"),
        DeclareLaunchArgument("log_level", default_value="info", description="ROS log level"),
        Node(
            package="perception",
            executable="perception_node",
            name="perception",
            namespace=LaunchConfiguration("namespace"),
            parameters=[
                LaunchConfiguration("params_file"),
                {"backend": LaunchConfiguration("backend"),
                 "raw_input": ParameterValue(LaunchConfiguration("raw_input"), value_type=bool)},
            ],
            arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
            output="screen",
            emulate_tty=True,
        ),
    ])
