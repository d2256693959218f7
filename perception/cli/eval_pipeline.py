"""`perception eval pipeline`: evaluate the whole pipeline."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("pipeline", help="evaluate the whole pipeline [not built yet]", description="evaluate the whole pipeline (not built yet)")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of metrics")
    parser.set_defaults(func=not_built("perception eval pipeline", 9))
