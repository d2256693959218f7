"""Configuration fields that carry their description and valid range, checked on creation (shared by every stage).

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class C:
    ...     k: int = param(3, "a count", 1, 9)
    ...     gains: tuple = param((0.5, 2.0), "one gain per axis", 0.0, 10.0, length=2)
    ...     def __post_init__(self): validate_config(self)
    >>> describe_config(C)["k"]["range"]
    (1, 9)
    >>> C(gains=[1, 3]).gains
    (1.0, 3.0)

Field kinds follow the default: bool, str (one of `choices`), int, float, and tuple. A tuple field holds numbers
(integers when every element of the default is an int, floats otherwise); `lo` / `hi` (and `choices`, when given)
apply to each element, `length`, when given, fixes the number of elements. Any sequence of numbers is accepted
(a ROS parameter arrives as a list) and stored as a tuple.
"""
from __future__ import annotations

from dataclasses import field, fields
from typing import Any

import numpy as np

from perception.errors import InputError


def param(default, help_text: str, lo=None, hi=None, choices=None, length: int | None = None):
    """A config field carrying its description and valid range (read by `describe` and `validate_config`).

    For a tuple default, `lo` / `hi` / `choices` bound every element and `length` fixes the element count."""
    if length is not None and not isinstance(default, tuple):
        raise TypeError(f"length= is only for tuple fields, default {default!r}")
    return field(default=default, metadata={"help": help_text, "range": (lo, hi), "choices": choices,
                                            "length": length})


def _check_number(value, *, integer: bool, lo, hi, choices, subject: str, help_text: str, what: str = ""):
    if integer:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise InputError(f"{what}must be an integer, got {value!r}", subject=subject)
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{what}must be a number, got {value!r}", subject=subject)
    if not np.isfinite(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InputError(f"{what}{value!r} is outside the valid range {lo} .. {hi}", subject=subject, hint=help_text)
    if choices is not None and value not in choices:
        raise InputError(f"{what}got {value!r}", subject=subject, hint=f"use one of {choices}")


def _check_tuple(value, default: tuple, meta, subject: str) -> tuple:
    """The value as a tuple of ints / floats, each element checked like a scalar field (module docstring)."""
    if not isinstance(value, (tuple, list, np.ndarray)) or (isinstance(value, np.ndarray) and value.ndim != 1):
        raise InputError(f"must be a list of numbers, got {value!r}", subject=subject)
    length = meta.get("length")
    if length is not None and len(value) != length:
        raise InputError(f"must have {length} elements, got {len(value)}: {tuple(value)!r}", subject=subject,
                         hint=meta["help"])
    integer = bool(default) and all(isinstance(v, int) and not isinstance(v, bool) for v in default)
    lo, hi = meta["range"]
    for i, v in enumerate(value):
        _check_number(v, integer=integer, lo=lo, hi=hi, choices=meta["choices"], subject=subject,
                      help_text=meta["help"], what=f"element {i}: ")
    return tuple(int(v) for v in value) if integer else tuple(float(v) for v in value)


def validate_config(cfg: Any) -> None:
    """Check every field of a dataclass made with `param` against its type, range and choices (InputError).

    Tuple fields are stored back as tuples (also on frozen dataclasses)."""
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
            if choices is None:
                if not isinstance(value, str):
                    raise InputError(f"must be text, got {value!r}", subject=subject)
            elif value not in choices:
                raise InputError(f"got {value!r}", subject=subject, hint=f"use one of {', '.join(choices)}")
            continue
        if isinstance(f.default, tuple):
            object.__setattr__(cfg, f.name, _check_tuple(value, f.default, f.metadata, subject))
            continue
        _check_number(value, integer=isinstance(f.default, int), lo=lo, hi=hi, choices=choices, subject=subject,
                      help_text=f.metadata["help"])


def describe_config(cls) -> dict[str, dict]:
    """{name: {default, help, range, choices}} for every parameter (ROS parameter declarations, docs).

    For tuple fields `range` and `choices` apply to each element."""
    return {f.name: {"default": f.default, "help": f.metadata["help"], "range": f.metadata["range"],
                     "choices": f.metadata["choices"]} for f in fields(cls)}
