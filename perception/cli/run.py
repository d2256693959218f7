"""`perception run --source SPEC`: live from a camera, video or image folder."""
from perception.cli.common import add_not_built


def register(sub) -> None:
    add_not_built(sub, "run", "run live from a camera, video file or image folder", issue=6)
