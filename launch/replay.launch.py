"""A recorded bag played into the perception node: `ros2 bag play` + perception_node (all stages, one process).

    ros2 launch perception replay.launch.py bag:=/data/euroc_stereo_bag namespace:=stereo raw_input:=true rate:=0.5

The bag's camera topics must be <namespace>/left/image_raw (or image_rect), right/..., left/camera_info,
right/camera_info (the shipped test bag uses /stereo/...). `perception replay IN --out OUT` does the same offline,
without ROS, as fast as the CPU allows.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    bag, rate = LaunchConfiguration("bag"), LaunchConfiguration("rate")
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="the bag to play (rosbag2 directory, .mcap or .db3)"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate (the pipeline drops frames "
                              "it cannot keep up with; lower the rate to process them all)"),
        DeclareLaunchArgument("loop", default_value="false", choices=["true", "false"], description="play in a loop"),
        DeclareLaunchArgument(
            "params_file", default_value=PathJoinSubstitution([FindPackageShare("perception"), "launch", "perception.yaml"]),
            description="ROS 2 parameters file (/**: ros__parameters:)"),
        DeclareLaunchArgument("namespace", default_value="stereo", description="camera namespace of the bag's topics"),
        DeclareLaunchArgument("backend", default_value="auto", choices=["auto", "onnxruntime", "tensorrt"],
                              description="ConvNet engine backend"),
        DeclareLaunchArgument("raw_input", default_value="true", choices=["true", "false"],
                              description="the bag holds image_raw (rectified by the node) rather than image_rect"),
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
            output="screen",
            emulate_tty=True,
        ),
        ExecuteProcess(cmd=["ros2", "bag", "play", bag, "--rate", rate], output="screen",
                       condition=UnlessCondition(LaunchConfiguration("loop"))),
        ExecuteProcess(cmd=["ros2", "bag", "play", bag, "--rate", rate, "--loop"], output="screen",
                       condition=IfCondition(LaunchConfiguration("loop"))),
    ])
