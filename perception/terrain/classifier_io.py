"""Save / load of `OnlineClassifier` (`OnlineClassifier.save` / `.load` call these).

File: one .npz, read with ``np.load(allow_pickle=False)`` so a file cannot run code, holding

- ``format``: ``perception.terrain.OnlineClassifier/1`` (`classifier.FILE_FORMAT`); ``class_names``;
- ``config``: the `ClassifierConfig` as JSON (validated again on load);
- ``weights`` 5 x F, ``bias`` 5, ``default_weights``, ``default_bias`` (the offline prior);
- ``confidence_state`` (numerator, denominator of the learning-confidence average), ``n_updates``;
- optionally the ring buffers, ``buf_<name>`` for each of `RingBuffers.ARRAYS`.

A missing, unreadable or inconsistent file raises ModelError.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from perception.errors import InputError, ModelError
from perception.terrain.classifier import CLASS_NAMES, FILE_FORMAT, ClassifierConfig, OnlineClassifier


def save_classifier(clf: OnlineClassifier, path, *, include_buffers: bool = True) -> Path:
    """Write weights, defaults, config, confidence state (and the buffers) as an .npz (no pickle)."""
    path = Path(path)
    b = clf._buffers
    arrays = {
        "format": np.array(FILE_FORMAT),
        "config": np.array(json.dumps(asdict(clf.config))),
        "class_names": np.array(CLASS_NAMES),
        "weights": clf.weights, "bias": clf.bias,
        "default_weights": clf.default_weights, "default_bias": clf.default_bias,
        "confidence_state": np.array([clf._conf_num, clf._conf_den], np.float64),
        "n_updates": np.array(clf.n_updates, np.int64),
    }
    if include_buffers:
        arrays.update({f"buf_{name}": getattr(b, name) for name in b.ARRAYS})
    with open(path, "wb") as fh:  # np.savez would append .npz to a name without it
        np.savez(fh, **arrays)
    return path


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an .npz, never unpickling (np.load with allow_pickle=False); bad files raise ModelError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise ModelError("no such file", subject=str(path)) from None
    except Exception as err:  # noqa: BLE001 - zip/format errors come in many types
        raise ModelError(f"not a readable .npz ({err})", subject=str(path)) from None


def load_classifier(cls: type[OnlineClassifier], path) -> OnlineClassifier:
    """Read a file written by `save_classifier` into a new `cls`."""
    path = Path(path)
    arrays = read_npz(path)
    fmt = str(arrays.get("format", ""))
    if fmt != FILE_FORMAT:
        raise ModelError(f"format {fmt!r}, expected {FILE_FORMAT!r}", subject=str(path),
                         hint="write it with OnlineClassifier.save")
    if tuple(str(n) for n in arrays["class_names"]) != CLASS_NAMES:
        raise ModelError(f"classes {list(arrays['class_names'])}, expected {list(CLASS_NAMES)}",
                         subject=str(path))
    try:
        config = ClassifierConfig(**json.loads(str(arrays["config"])))
        clf = cls(config, arrays["default_weights"], arrays["default_bias"])
        clf.weights = clf._param_array(arrays["weights"], clf.weights.shape, "weights")
        clf.bias = clf._param_array(arrays["bias"], clf.bias.shape, "bias")
    except (InputError, TypeError, KeyError) as err:
        raise ModelError(f"inconsistent contents ({err})", subject=str(path)) from None
    clf._conf_num, clf._conf_den = (float(v) for v in arrays["confidence_state"])
    clf.n_updates = int(arrays["n_updates"])
    if "buf_x" in arrays:
        b = clf._buffers
        for name in b.ARRAYS:
            src = arrays[f"buf_{name}"]
            dst = getattr(b, name)
            if src.shape != dst.shape:
                raise ModelError(f"buffer {name} has shape {src.shape}, expected {dst.shape}", subject=str(path))
            dst[...] = src
    return clf
