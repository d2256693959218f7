"""`perception calibrate stereo|int8`: camera calibration and INT8 quantization."""
from perception.cli import calibrate_stereo, calibrate_int8
from perception.cli.common import add_group


def register(sub) -> None:
    verbs = add_group(sub, "calibrate", "camera calibration and INT8 quantization")
    calibrate_stereo.register(verbs)
    calibrate_int8.register(verbs)
