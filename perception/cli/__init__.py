"""The `perception` command: one sub-command module per verb, registered here in one place.

Each module exposes `register(subparsers)` that adds its parser and sets `func(args) -> int`.
Progress goes to stderr; with `--json`, the last line on stdout is one JSON object.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from perception import __version__
from perception.errors import PerceptionError

# The order here is the order in `perception --help`.
COMMANDS = (
    "demo",
    "replay",
    "run",
    "sim",
    "calibrate",
    "engines",
    "train",
    "eval",
    "bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perception",
        description="Camera perception for ground robots: terrain, scene parsing, detection, cost maps.",
    )
    parser.add_argument("--version", action="version", version=f"perception {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"perception.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except PerceptionError as err:
        print(f"perception: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"perception {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
