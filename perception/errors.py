"""Error types with a message a user can act on: what went wrong, with which thing, and what to do.

Every stage raises a subclass of `PerceptionError`; the CLI and the nodes print `str(err)` and go on
with the next frame (or exit non-zero for a command that cannot continue).
"""
from __future__ import annotations


class PerceptionError(Exception):
    """Base class. `subject` names the file, topic or value at fault; `hint` says what to do."""

    def __init__(self, message: str, *, subject: str | None = None, hint: str | None = None):
        self.message = message
        self.subject = subject
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.subject}: {self.message}" if self.subject else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class ModelError(PerceptionError):
    """A model file is missing, corrupt, or not what it claims (metadata, shapes, operators)."""


class EngineError(PerceptionError):
    """An inference backend failed: unavailable, stale plan, or a run-time failure."""


class InputError(PerceptionError):
    """An input frame, message or array is malformed (encoding, size, dtype, NaN)."""


class CalibrationError(PerceptionError):
    """Camera calibration is missing, inconsistent or failed."""


class SourceError(PerceptionError):
    """A frame source (bag, video, folder) cannot be opened or read."""


class NotBuiltError(PerceptionError):
    """A capability the contract names but this release does not implement yet."""
