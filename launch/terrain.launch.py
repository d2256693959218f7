"""The terrain stage: stereo labels, long-range classes and the terrain cost map (it runs stereo itself).

    ros2 launch perception terrain.launch.py namespace:=stereo raw_input:=true backend:=tensorrt

Publishes <namespace>/terrain/labels, terrain/classes, terrain/costmap. Same node as perception.launch.py with
only those outputs enabled.
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
            executable="terrain_node",
            name="terrain",
            namespace=LaunchConfiguration("namespace"),
            parameters=[
                LaunchConfiguration("params_file"),
                {"outputs": ["terrain/labels", "terrain/classes", "terrain/costmap"],
                 "backend": LaunchConfiguration("backend"),
                 "raw_input": ParameterValue(LaunchConfiguration("raw_input"), value_type=bool)},
            ],
            output="screen",
            emulate_tty=True,
        ),
    ])
