"""`perception eval detect`: evaluate detection and stereo range."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("detect", help="evaluate detection and stereo range [not built yet]", description="evaluate detection and stereo range (not built yet)")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of metrics")
    parser.set_defaults(func=not_built("perception eval detect", 8))
