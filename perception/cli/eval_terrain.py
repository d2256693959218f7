"""`perception eval terrain`: evaluate near-to-far terrain classification."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("terrain", help="evaluate near-to-far terrain classification [not built yet]", description="evaluate near-to-far terrain classification (not built yet)")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of metrics")
    parser.set_defaults(func=not_built("perception eval terrain", 5))
