"""`perception calibrate stereo`: chessboard stereo calibration -> camera_info YAMLs."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("stereo", help="chessboard stereo calibration -> camera_info YAMLs [not built yet]", description="chessboard stereo calibration -> camera_info YAMLs (not built yet)")
    parser.set_defaults(func=not_built("perception calibrate stereo", 4))
