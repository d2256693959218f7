"""`perception bench pipeline`: benchmark the full pipeline."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("pipeline", help="benchmark the full pipeline [not built yet]", description="benchmark the full pipeline (not built yet)")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of metrics")
    parser.set_defaults(func=not_built("perception bench pipeline", 9))
