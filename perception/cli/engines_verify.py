"""`perception engines verify`: check models and cached plans."""
from perception.cli.common import not_built


def register(verbs) -> None:
    parser = verbs.add_parser("verify", help="check models and cached plans [not built yet]", description="check models and cached plans (not built yet)")
    parser.set_defaults(func=not_built("perception engines verify", 2))
