"""`perception run --source SPEC`: live from a camera, a video file, an image folder or a bag, with the viewer.

A stereo source (side-by-side video with calibration, a stereo folder, a bag) gets every stage; a mono one gets
scene parsing (stereo, terrain and the maps need a pair). Results go to a bag only when `--out` is given.
"""
from __future__ import annotations

import argparse
import sys

from perception.cli.common import print_json
from perception.errors import InputError
from perception.viewer.cli import add_viewer_arguments, hold, viewer_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "run", help="run live from a camera, video file, image folder or bag, with the live viewer",
        description="Run the pipeline live on a frame source: camera:N (or a device path), a video file or URL, an "
        "image folder, a ROS 2 bag, or sim:seed=S,frames=N,size=WxH. The live viewer is served by default; "
        "results are written to a bag with --out.")
    p.add_argument("--source", required=True, help="frame source spec (see the description)")
    p.add_argument("--out", help="also write the results to this bag folder (.mcap or .db3 suffix picks storage)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output bag")
    p.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: until the source ends)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="recorded sources: 0 as fast as possible (default), 1.0 at the recorded rate")
    p.add_argument("--params", help="parameter YAML (/**: ros__parameters:), as the nodes read it")
    add_viewer_arguments(p, hold=True, default_on=True)
    p.add_argument("--json", action="store_true", help="the last stdout line is the summary as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.frames < 0:
        raise InputError("must be >= 0", subject="--frames")
    if args.rate < 0:
        raise InputError("must be >= 0", subject="--rate")
    from itertools import islice

    from perception.pipeline.core import Pipeline
    from perception.pipeline.offline import run_offline
    from perception.sources import open_source

    from perception.pipeline.params_file import config_for_command

    config = config_for_command(args.params, "run")
    source = open_source(args.source)
    if args.frames:
        source = _Limited(source, args.frames, islice)
    with viewer_from_args(args, "run") as viewer:
        summary = run_offline(source, args.out, pipeline=Pipeline(config), overwrite=args.overwrite,
                              rate=args.rate, total=args.frames or None,
                              on_result=viewer.publish if viewer is not None else None)
        print(summary.text(), file=sys.stderr)
        if args.json:
            print_json(summary.to_dict())
        if args.viewer_hold:
            hold(viewer, "run")
    return 0 if summary.used else 1


class _Limited:
    """The first n frames of a source (stats and context management passed through)."""

    def __init__(self, source, n: int, islice) -> None:
        self.source, self.n, self._islice = source, n, islice

    @property
    def stats(self):
        return self.source.stats

    def __iter__(self):
        return self._islice(iter(self.source), self.n)

    def __enter__(self):
        self.source.__enter__()
        return self

    def __exit__(self, *exc):
        return self.source.__exit__(*exc)
