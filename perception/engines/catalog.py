"""Where shipped models are, and how `perception engines ...` turns its MODEL arguments into files.

Shipped models: `$PERCEPTION_ENGINES` if set; else `<repo>/engines` for a source or editable install; else
`<prefix>/share/perception/engines` for an installed one (setup.py puts engines/*.onnx there), trying
`sys.prefix` and every `$AMENT_PREFIX_PATH` entry (colcon installs).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from perception.engines.cache import Machine
from perception.errors import ModelError

ENGINES_ENV = "PERCEPTION_ENGINES"


def shipped_models_dir() -> Path | None:
    """The folder of shipped models, or None when no candidate exists."""
    explicit = os.environ.get(ENGINES_ENV)
    if explicit:
        return Path(explicit).expanduser()
    package = Path(__file__).resolve().parents[1]  # .../perception
    repo = package.parent
    if (repo / "setup.py").is_file() and (repo / "engines").is_dir():
        return repo / "engines"
    prefixes = [sys.prefix, *filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep))]
    for prefix in prefixes:
        candidate = Path(prefix) / "share" / "perception" / "engines"
        if candidate.is_dir():
            return candidate
    return None


def shipped_models() -> list[Path]:
    folder = shipped_models_dir()
    return sorted(folder.glob("*.onnx")) if folder is not None and folder.is_dir() else []


def resolve_models(names: list[str]) -> list[Path]:
    """MODEL arguments -> files: a path to a .onnx, a folder of them, or a shipped model's name.

    No arguments: every shipped model (ModelError when there are none, saying where it looked).
    """
    if not names:
        models = shipped_models()
        if not models:
            folder = shipped_models_dir()
            where = str(folder) if folder else "nowhere (no engines/ folder found)"
            raise ModelError(f"no .onnx models found in {where}", subject="shipped models",
                             hint=f"pass MODEL paths, or set {ENGINES_ENV} to a folder of models")
        return models
    found = []
    for name in names:
        path = Path(name).expanduser()
        if path.is_dir():
            found.extend(sorted(path.glob("*.onnx")))
        elif path.suffix or path.exists():
            found.append(path)  # a missing file is reported by load_model, with the path
        else:
            found.append(_shipped(name))
    return found


def _shipped(name: str) -> Path:
    folder = shipped_models_dir()
    candidate = (folder / f"{name}.onnx") if folder else Path(f"{name}.onnx")
    if not candidate.is_file():
        known = [p.stem for p in shipped_models()]
        raise ModelError("is neither a file nor a shipped model", subject=name,
                         hint=f"shipped models: {', '.join(known) or 'none'}")
    return candidate


def current_machine() -> Machine:
    """TensorRT version and GPU of this machine, as far as they can be known (None where not)."""
    from perception.engines.cuda import gpu_info
    from perception.engines.trt_build import import_tensorrt
    from perception.errors import EngineError

    try:
        trt_version = str(import_tensorrt().__version__)
    except EngineError:
        trt_version = None
    try:
        gpu = gpu_info(0)
    except EngineError:
        return Machine(trt_version=trt_version)
    return Machine(trt_version=trt_version, compute_capability=gpu.compute_capability, gpu_name=gpu.name)
