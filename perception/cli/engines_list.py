"""`perception engines list`: list models and cached plans."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("list", help="list models and cached plans [not built yet]", description="list models and cached plans (not built yet)")
    parser.set_defaults(func=not_built("perception engines list", 2))
