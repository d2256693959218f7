"""`perception train detect`: train the detector."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("detect", help="train the detector [not built yet]", description="train the detector (not built yet)")
    parser.set_defaults(func=not_built("perception train detect", 8))
