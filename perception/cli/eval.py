"""`perception eval stereo|terrain|scene|detect|pipeline`: accuracy against ground truth, with the named baseline in the same run."""
from perception.cli import eval_stereo, eval_terrain, eval_scene, eval_detect, eval_pipeline
from perception.cli.common import add_group


def register(sub) -> None:
    verbs = add_group(sub, "eval", "accuracy against ground truth, with the named baseline in the same run")
    eval_stereo.register(verbs)
    eval_terrain.register(verbs)
    eval_scene.register(verbs)
    eval_detect.register(verbs)
    eval_pipeline.register(verbs)
