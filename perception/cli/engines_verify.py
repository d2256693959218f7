"""`perception engines verify`: load each model with its metadata checks, run it once, check cached plans."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from perception.cli.common import print_json
from perception.cli.engines_list import CACHE_HELP


def register(verbs) -> None:
    parser = verbs.add_parser(
        "verify", help="check models (load + one ONNX Runtime run) and cached TensorRT plans",
        description="Load each model with its metadata checks, run it once in ONNX Runtime on random input of "
                    "the declared shape, check the outputs are finite and of the declared shapes, and check "
                    "that cached TensorRT plans for these models are current. Exits 1 listing failures.")
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="model files, folders of models, or shipped model names (default: all shipped)")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object")
    parser.add_argument("--cache-dir", type=Path, default=None, help=CACHE_HELP)
    parser.set_defaults(func=run)


def verify_model(path: Path, seed: int = 0) -> dict[str, Any]:
    """{"file", "name", "ok", "problems": [...], ...} for one model; never raises for a bad model."""
    import numpy as np

    from perception.engines.base import sample_feeds
    from perception.engines.model_file import load_model
    from perception.engines.onnxrt import OnnxRuntimeEngine
    from perception.errors import PerceptionError

    row: dict[str, Any] = {"file": str(path), "name": path.stem, "problems": []}
    try:
        model = load_model(path)
        row.update(name=model.metadata.name, task=model.metadata.task, sha256=model.sha256)
        with OnnxRuntimeEngine(model, backend_reason="verify") as engine:
            row["precision"] = engine.precision
            started = time.perf_counter()
            outputs = engine.infer(sample_feeds(engine.inputs, seed))
            row["ms"] = round((time.perf_counter() - started) * 1000, 3)
            for spec in engine.outputs:
                value = outputs[spec.name]
                if not spec.accepts_shape(value.shape):
                    row["problems"].append(f"output '{spec.name}' has shape {list(value.shape)}, "
                                           f"metadata declares {list(spec.shape)}")
                if value.dtype.kind == "f" and not np.isfinite(value).all():
                    row["problems"].append(f"output '{spec.name}' has NaN/inf values on valid input")
    except PerceptionError as err:
        row["problems"].append(str(err))
    row["ok"] = not row["problems"]
    return row


def check_plans(cache_dir: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cached plans belonging to the verified models (by hash, name, or file name) and their state."""
    from perception.engines.cache import list_plans
    from perception.engines.catalog import current_machine

    shas = {r["sha256"] for r in rows if "sha256" in r}
    names = {r["name"] for r in rows}
    found = []
    for plan in list_plans(cache_dir, current_machine()):
        header = plan.header
        mine = (header is not None and (header.key.model_sha256 in shas or header.model_name in names)) or \
               (header is None and any(plan.path.name.startswith(f"{n}-") for n in names))
        if mine:
            found.append(plan.to_dict())
    return found


def run(args: argparse.Namespace) -> int:
    from perception.engines.cache import default_cache_dir
    from perception.engines.catalog import resolve_models

    paths = resolve_models(args.models)
    rows = [verify_model(p) for p in paths]
    cache_dir = args.cache_dir or default_cache_dir()
    plans = check_plans(cache_dir, rows)
    failures = [f"{r['file']}: {p}" for r in rows for p in r["problems"]]
    failures += [f"{p['path']}: {p['reason']}" for p in plans if p["current"] is False]
    result = {"models": rows, "plans": plans, "cache_dir": str(cache_dir), "failures": failures,
              "ok": not failures, "checked": len(rows)}
    if args.json:
        print_json(result)
    else:
        for r in rows:
            print(f"  {'ok  ' if r['ok'] else 'FAIL'} {r['name']:<20} {r['file']}"
                  + (f"  ({r.get('precision')}, {r['ms']} ms)" if r["ok"] else ""))
            for problem in r["problems"]:
                print(f"       {problem}")
        for p in plans:
            state = {True: "ok  ", False: "FAIL", None: "?   "}[p["current"]]
            print(f"  {state} plan {Path(p['path']).name}: {p['reason']}")
        print(f"verified {len(rows)} models, {len(plans)} plans: "
              + ("all good" if not failures else f"{len(failures)} failures"))
    return 1 if failures else 0
