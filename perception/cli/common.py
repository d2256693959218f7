"""Helpers shared by the sub-command modules: JSON result lines and honest 'not built yet' verbs."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from perception.errors import NotBuiltError


def print_json(result: dict[str, Any]) -> None:
    """Print `result` as the last line of stdout (the `--json` contract)."""
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


def not_built(what: str, issue: int):
    """A `func` for a verb that the contract names but this release does not implement yet."""

    def run(args: argparse.Namespace) -> int:
        raise NotBuiltError(
            "not implemented yet in this release",
            subject=what,
            hint=f"tracked in issue {issue}; nothing was run",
        )

    run.not_built = True  # lets tests and `perception --help` tell built verbs from placeholders
    return run


def add_not_built(sub, name: str, help_text: str, issue: int) -> argparse.ArgumentParser:
    """Register a verb that exits non-zero with a clear 'not implemented yet' message."""
    parser = sub.add_parser(name, help=f"{help_text} [not built yet]", description=f"{help_text} (not built yet)")
    parser.set_defaults(func=not_built(f"perception {name}", issue))
    return parser


def add_group(sub, name: str, help_text: str) -> argparse._SubParsersAction:
    """Register a verb with sub-verbs (`perception engines build`); returns the sub-verb registry."""
    parser = sub.add_parser(name, help=help_text, description=help_text)
    return parser.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", required=True)
