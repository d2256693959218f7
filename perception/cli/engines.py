"""`perception engines build|list|verify`: ONNX models and the TensorRT plan cache."""
from perception.cli import engines_build, engines_list, engines_verify
from perception.cli.common import add_group


def register(sub) -> None:
    verbs = add_group(sub, "engines", "ONNX models and the TensorRT plan cache")
    engines_build.register(verbs)
    engines_list.register(verbs)
    engines_verify.register(verbs)
