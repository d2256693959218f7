"""`perception train scene`: train the scene parser."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("scene", help="train the scene parser [not built yet]", description="train the scene parser (not built yet)")
    parser.set_defaults(func=not_built("perception train scene", 7))
