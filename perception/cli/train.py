"""`perception train features|scene|detect`: offline training (needs the `train` extra: torch)."""
from perception.cli import train_features, train_scene, train_detect
from perception.cli.common import add_group


def register(sub) -> None:
    verbs = add_group(sub, "train", "offline training (needs the `train` extra: torch)")
    train_features.register(verbs)
    train_scene.register(verbs)
    train_detect.register(verbs)
