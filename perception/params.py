"""Configuration fields that carry their description and valid range, checked on creation (shared by every stage).

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class C:
    ...     k: int = param(3, "a count", 1, 9)
    ...     def __post_init__(self): validate_config(self)
    >>> describe_config(C)["k"]["range"]
    (1, 9)
"""
from __future__ import annotations

from dataclasses import field, fields
from typing import Any

import numpy as np

from perception.errors import InputError


def param(default, help_text: str, lo=None, hi=None, choices=None):
    """A config field carrying its description and valid range (read by `describe` and `validate_config`)."""
    return field(default=default, metadata={"help": help_text, "range": (lo, hi), "choices": choices})


def validate_config(cfg: Any) -> None:
    """Check every field of a dataclass made with `param` against its type, range and choices (InputError)."""
    name = type(cfg).__name__
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        lo, hi = f.metadata["range"]
        choices = f.metadata["choices"]
        subject = f"{name}.{f.name}"
        if isinstance(f.default, bool):
            if not isinstance(value, (bool, np.bool_)):
                raise InputError(f"must be true or false, got {value!r}", subject=subject)
            continue
        if isinstance(f.default, str):
            if value not in choices:
                raise InputError(f"got {value!r}", subject=subject, hint=f"use one of {', '.join(choices)}")
            continue
        if isinstance(f.default, int):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise InputError(f"must be an integer, got {value!r}", subject=subject)
        elif isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InputError(f"must be a number, got {value!r}", subject=subject)
        if not np.isfinite(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
            raise InputError(f"{value!r} is outside the valid range {lo} .. {hi}", subject=subject,
                             hint=f.metadata["help"])
        if choices is not None and value not in choices:
            raise InputError(f"got {value!r}", subject=subject, hint=f"use one of {choices}")


def describe_config(cls) -> dict[str, dict]:
    """{name: {default, help, range, choices}} for every parameter (ROS parameter declarations, docs)."""
    return {f.name: {"default": f.default, "help": f.metadata["help"], "range": f.metadata["range"],
                     "choices": f.metadata["choices"]} for f in fields(cls)}
