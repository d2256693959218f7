"""The detection stage: pedestrians, cyclists and vehicles with stereo range, tracks and collision warnings (it
runs stereo itself; base_link positions assume a level camera, the full node takes the camera's tilt from the
ground plane).

    ros2 launch perception detect.launch.py namespace:=stereo raw_input:=true backend:=tensorrt

Publishes <namespace>/detections, warnings. Same node as perception.launch.py with only those outputs enabled.
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
            executable="detect_node",
            name="detect",
            namespace=LaunchConfiguration("namespace"),
            parameters=[
                LaunchConfiguration("params_file"),
                {"outputs": ["detections", "warnings"],
                 "backend": LaunchConfiguration("backend"),
                 "raw_input": ParameterValue(LaunchConfiguration("raw_input"), value_type=bool)},
            ],
            output="screen",
            emulate_tty=True,
        ),
    ])
