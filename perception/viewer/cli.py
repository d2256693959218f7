"""The viewer's command-line flags, shared by `perception demo`, `perception replay` (and later `perception run`)."""
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager

DEFAULT_PORT = 8080


def add_viewer_arguments(parser: argparse.ArgumentParser, *, hold: bool = False, default_on: bool = False) -> None:
    """--viewer (or --no-viewer when `default_on`), --viewer-host, --viewer-port (and --viewer-hold when `hold`)."""
    if default_on:
        parser.add_argument("--no-viewer", dest="viewer", action="store_false",
                            help="do not serve the live overlay viewer (served by default; the URL is printed to "
                            "stderr; when the default port is taken, another free port is used)")
    else:
        parser.add_argument("--viewer", action="store_true",
                            help="serve the live overlay viewer (camera image with overlays, cost map, timing) "
                            "while running; the URL is printed to stderr")
    parser.add_argument("--viewer-host", default="127.0.0.1", metavar="ADDR",
                        help="address the viewer binds (default 127.0.0.1, this machine only; 0.0.0.0 exposes it "
                        "to the network without authentication)")
    parser.add_argument("--viewer-port", type=int, default=None, metavar="PORT",
                        help=f"viewer TCP port (default {DEFAULT_PORT}; 0 picks any free port)")
    if hold:
        parser.add_argument("--viewer-hold", action="store_true",
                            help="keep the viewer up after the run, showing the last frame, until Ctrl-C")


@contextmanager
def viewer_from_args(args: argparse.Namespace, title: str):
    """A started Viewer (or None without --viewer); stopped on exit. Prints the URL to stderr."""
    if not getattr(args, "viewer", False):
        yield None
        return
    from perception.viewer.server import Viewer, ViewerError, _is_loopback

    port = DEFAULT_PORT if args.viewer_port is None else args.viewer_port
    try:
        viewer = Viewer(host=args.viewer_host, port=port, title=title).start()
    except ViewerError:
        if args.viewer_port is not None:
            raise  # a port the user asked for: say so
        viewer = Viewer(host=args.viewer_host, port=0, title=title).start()  # the default is taken: any free one
    print(f"perception {title}: live viewer on {viewer.url}", file=sys.stderr)
    if not _is_loopback(args.viewer_host):
        print(f"perception {title}: warning: the viewer listens on {args.viewer_host}, reachable from other "
              "machines, without authentication", file=sys.stderr)
    try:
        yield viewer
    finally:
        viewer.stop()


def hold(viewer, title: str) -> None:
    """Keep serving (the last frame) until Ctrl-C, which ends the hold normally."""
    if viewer is None:
        print(f"perception {title}: --viewer-hold has no effect without --viewer", file=sys.stderr)
        return
    try:  # from the print on: a Ctrl-C right after the message can surface in the print's flush
        print(f"perception {title}: viewer stays up on {viewer.url}; Ctrl-C to stop", file=sys.stderr)
        while not viewer.wait(1.0):
            pass
    except KeyboardInterrupt:
        print(f"perception {title}: viewer stopped", file=sys.stderr)
