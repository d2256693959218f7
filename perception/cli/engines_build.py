"""`perception engines build`: build TensorRT plans from ONNX models."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("build", help="build TensorRT plans from ONNX models [not built yet]", description="build TensorRT plans from ONNX models (not built yet)")
    parser.set_defaults(func=not_built("perception engines build", 2))
