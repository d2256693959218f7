"""`perception eval scene`: evaluate scene parsing on CamVid."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("scene", help="evaluate scene parsing on CamVid [not built yet]", description="evaluate scene parsing on CamVid (not built yet)")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of metrics")
    parser.set_defaults(func=not_built("perception eval scene", 7))
