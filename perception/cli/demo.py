"""`perception demo`: the full pipeline on the embedded default drive, with the live viewer."""
from perception.cli.common import add_not_built


def register(sub) -> None:
    add_not_built(sub, "demo", "run the full pipeline on a synthetic stereo drive with the live viewer", issue=6)
