"""The one interface every frame source implements, and the skip accounting they share.

A source is an iterable of `Frame`s. Bad input (a corrupt message, a wrong encoding, a pair too far apart)
never ends the iteration: the frame is skipped, counted under a reason, logged once per reason with the
detail, and the summary at the end says how many frames were used and skipped and why.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from perception.frame import Frame

log = logging.getLogger("perception.sources")


@dataclass
class SourceStats:
    frames_in: int = 0
    used: int = 0
    skipped: Counter = field(default_factory=Counter)

    def skip(self, reason: str, detail: str = "") -> None:
        """Count a skipped frame or message; the first of each reason is logged with its detail."""
        if self.skipped[reason] == 0:
            log.warning("skipping: %s%s (further ones are counted, see the summary)", reason, f": {detail}" if detail else "")
        self.skipped[reason] += 1

    def summary(self) -> str:
        text = f"{self.frames_in} frames in, {self.used} used, {sum(self.skipped.values())} skipped"
        if self.skipped:
            text += " (" + ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common()) + ")"
        return text


class FrameSource(ABC):
    """Iterate to get frames; use as a context manager (or call `close`) to release files and devices."""

    def __init__(self) -> None:
        self.stats = SourceStats()

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None:
        """Release files and devices. Safe to call twice."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
