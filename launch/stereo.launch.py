"""The stereo stage alone: rectification + disparity (no terrain stage runs), publishing <namespace>/disparity.

    ros2 launch perception stereo.launch.py namespace:=stereo raw_input:=true

Same node as perception.launch.py with `outputs: [disparity]`; for everything, prefer perception.launch.py (one
process, no image copies between stages).
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
        DeclareLaunchArgument("namespace", default_value="stereo", description="camera namespace"),
        DeclareLaunchArgument("backend", default_value="auto", choices=["auto", "onnxruntime", "tensorrt"],
                              description="ConvNet engine backend"),
        DeclareLaunchArgument("raw_input", default_value="false", choices=["true", "false"],
                              description="subscribe to image_raw and rectify with the camera_info"),
        Node(
            package="perception",
            executable="stereo_node",
            name="stereo",
            namespace=LaunchConfiguration("namespace"),
            parameters=[
                LaunchConfiguration("params_file"),
                {"outputs": ["disparity"], "backend": LaunchConfiguration("backend"),
                 "raw_input": ParameterValue(LaunchConfiguration("raw_input"), value_type=bool)},
            ],
            output="screen",
            emulate_tty=True,
        ),
    ])
