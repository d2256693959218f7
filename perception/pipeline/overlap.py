"""A bounded two-stage pipeline across frames: `Pipeline.start` of the next frames in a worker thread while
`Pipeline.finish` (and whatever the caller does with the result) runs on the current one.

`start` holds the stateless, GIL-releasing work (OpenCV's SGBM, the scene and detection networks in ONNX
Runtime, reading and decoding the source); `finish` the stateful stages in frame order (ground, labels,
tracking, the terrain learning, maps). On a 2-core machine the two overlap; `depth` bounds how many frames are
started ahead (memory, and latency: a result is at most `depth` + 1 frames behind its input).

    for result in overlapped(pipeline, source, depth=1):
        write(result)

`depth=0` processes frame by frame in the caller's thread (no worker). Results come in input order, one per
frame; an exception raised by the source or a stage (not a `PerceptionError`, which the pipeline turns into a
skipped frame) is re-raised in the caller, and closing the generator stops the worker.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

from perception.frame import Frame
from perception.pipeline.core import FrameResult, Pipeline

_DONE = object()
_POLL_S = 0.1  # how often a blocked worker looks whether the consumer has gone


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def overlapped(pipeline: Pipeline, frames: Iterable[Frame], depth: int = 1) -> Iterator[FrameResult]:
    """Results of `pipeline` for `frames`, in order (module docstring)."""
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    if depth == 0:
        for frame in frames:
            yield pipeline.process(frame)
        return
    started: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                started.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for frame in frames:
                if not put(pipeline.start(frame)):
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(_Failed(err))
            return
        put(_DONE)

    worker = threading.Thread(target=work, name="perception-start", daemon=True)
    worker.start()
    try:
        while True:
            item = started.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield pipeline.finish(item)
    finally:
        stop.set()
        worker.join()


__all__ = ["overlapped"]
