"""`perception train features`: train the terrain feature extractor without labels."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("features", help="train the terrain feature extractor without labels [not built yet]", description="train the terrain feature extractor without labels (not built yet)")
    parser.set_defaults(func=not_built("perception train features", 5))
