"""`perception train features|classifier|scene|detect`: offline training (torch for all but `classifier`)."""
from perception.cli import train_classifier, train_detect, train_features, train_scene
from perception.cli.common import add_group


def register(sub) -> None:
    verbs = add_group(sub, "train", "offline training (needs the `train` extra: torch)")
    train_features.register(verbs)
    train_classifier.register(verbs)
    train_scene.register(verbs)
    train_detect.register(verbs)
