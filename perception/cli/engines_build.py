"""`perception engines build`: build (or refresh) cached TensorRT plans from ONNX models.

This is an explicit request for TensorRT plans, so unlike `open_engine` there is no ONNX Runtime fallback:
without TensorRT it exits non-zero saying what is missing and how to get it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from perception.cli.common import print_json
from perception.cli.engines_list import CACHE_HELP

PRECISION_CHOICES = ("fp32", "fp16", "int8")


def register(verbs) -> None:
    parser = verbs.add_parser(
        "build", help="build TensorRT plans from ONNX models (needs TensorRT and a GPU)",
        description="Build TensorRT plans for ONNX models into the plan cache, with progress on stderr. "
                    "A current cached plan is kept unless --force. INT8 needs a Q/DQ model "
                    "(`perception calibrate int8`); a float model asked for int8 is built at fp16/fp32.")
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="model files, folders of models, or shipped model names (default: all shipped)")
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32",
                        help="requested precision (default fp32, the same default as the runtime)")
    parser.add_argument("--force", action="store_true", help="rebuild even when a current plan is cached")
    parser.add_argument("--workspace-mb", type=int, default=1024, help="TensorRT builder workspace limit (MiB)")
    parser.add_argument("--cache-dir", type=Path, default=None, help=CACHE_HELP)
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from perception.engines.cache import default_cache_dir
    from perception.engines.catalog import resolve_models
    from perception.engines.cuda import INSTALL_HINT
    from perception.engines.factory import tensorrt_status
    from perception.engines.model_file import load_model
    from perception.engines.trt_build import ensure_plan
    from perception.errors import EngineError, PerceptionError

    status = tensorrt_status()
    if not status.available:
        raise EngineError(f"needs TensorRT, but {status.reason}; nothing was built", subject="perception engines build",
                          hint=f"{INSTALL_HINT} and a CUDA GPU; ONNX Runtime needs no build step")
    cache_dir = args.cache_dir or default_cache_dir()
    rows, failures = [], []
    for path in resolve_models(args.models):
        try:
            model = load_model(path)
            slot = ensure_plan(model, precision=args.precision, cache_dir=cache_dir, force=args.force,
                               workspace_mb=args.workspace_mb)
        except PerceptionError as err:
            failures.append(str(err))
            rows.append({"file": str(path), "ok": False, "error": str(err)})
            continue
        built = slot.decision.action == "build"
        rows.append({"file": str(path), "ok": True, "plan": str(slot.path), "precision": slot.choice.precision,
                     "built": built, "reason": slot.decision.reason})
        if not args.json:
            print(f"{path.name}: {slot.choice.precision} plan {'built' if built else 'up to date'}: {slot.path}")
    if args.json:
        print_json({"backend": status.reason, "cache_dir": str(cache_dir), "plans": rows, "failures": failures,
                    "ok": not failures})
    else:
        for failure in failures:
            print(f"FAIL {failure}")
    return 1 if failures else 0
