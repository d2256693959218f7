"""`perception bench engines`: benchmark fp32 vs int8 inference of a project model."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("engines", help="benchmark fp32 vs int8 inference of a project model [not built yet]", description="benchmark fp32 vs int8 inference of a project model (not built yet)")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of metrics")
    parser.set_defaults(func=not_built("perception bench engines", 2))
