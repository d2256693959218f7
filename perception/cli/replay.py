"""`perception replay IN_BAG --out OUT_BAG`: process a ROS 2 bag offline."""
from perception.cli.common import add_not_built


def register(sub) -> None:
    add_not_built(sub, "replay", "process a ROS 2 bag (.mcap or .db3) offline and write the outputs", issue=6)
