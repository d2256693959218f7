"""`perception sim record`: write a synthetic stereo drive with ground truth as a ROS 2 bag."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("record", help="write a synthetic stereo drive with ground truth as a ROS 2 bag [not built yet]", description="write a synthetic stereo drive with ground truth as a ROS 2 bag (not built yet)")
    parser.set_defaults(func=not_built("perception sim record", 3))
