"""`perception sim record`: synthetic stereo world with ground truth."""
from perception.cli import sim_record
from perception.cli.common import add_group


def register(sub) -> None:
    verbs = add_group(sub, "sim", "synthetic stereo world with ground truth")
    sim_record.register(verbs)
