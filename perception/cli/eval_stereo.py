"""`perception eval stereo`: evaluate disparity, ground plane and near-range labels."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("stereo", help="evaluate disparity, ground plane and near-range labels [not built yet]", description="evaluate disparity, ground plane and near-range labels (not built yet)")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of metrics")
    parser.set_defaults(func=not_built("perception eval stereo", 4))
