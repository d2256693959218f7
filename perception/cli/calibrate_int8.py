"""`perception calibrate int8`: float ONNX + calibration images -> Q/DQ INT8 ONNX."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("int8", help="float ONNX + calibration images -> Q/DQ INT8 ONNX [not built yet]", description="float ONNX + calibration images -> Q/DQ INT8 ONNX (not built yet)")
    parser.set_defaults(func=not_built("perception calibrate int8", 2))
