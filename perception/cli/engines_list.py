"""`perception engines list`: shipped models (task, input, classes, hash) and cached TensorRT plans."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from perception.cli.common import print_json

CACHE_HELP = "TensorRT plan cache (default: $PERCEPTION_ENGINE_CACHE or ~/.cache/perception/engines)"


def register(verbs) -> None:
    parser = verbs.add_parser(
        "list", help="list shipped models and cached TensorRT plans",
        description="List the shipped models ($PERCEPTION_ENGINES, else the package's engines/ folder) with "
                    "task, input, classes and sha256, and the cached TensorRT plans with their header and "
                    "whether each is current for this machine.")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object")
    parser.add_argument("--cache-dir", type=Path, default=None, help=CACHE_HELP)
    parser.set_defaults(func=run)


def describe_model(path: Path) -> dict[str, Any]:
    """One shipped model as a row; a model that does not load is listed with its error."""
    from perception.engines.model_file import load_model
    from perception.engines.precision import graph_op_types, model_precision
    from perception.errors import PerceptionError

    try:
        model = load_model(path)
        precision = model_precision(model.metadata, graph_op_types(path))
    except PerceptionError as err:
        return {"file": str(path), "name": path.stem, "error": str(err)}
    meta = model.metadata
    first = meta.inputs[0]
    return {"file": str(path), "name": meta.name, "task": meta.task, "precision": precision,
            "input": {"name": first.name, "shape": first.shape, "dtype": first.dtype, "layout": first.layout},
            "outputs": [t.name for t in meta.outputs], "classes": meta.class_names,
            "sha256": model.sha256[:12], "bytes": path.stat().st_size}


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from perception.engines.cache import default_cache_dir, list_plans
    from perception.engines.catalog import current_machine, shipped_models, shipped_models_dir

    folder = shipped_models_dir()
    models = [describe_model(p) for p in shipped_models()]
    machine = current_machine()
    cache_dir = args.cache_dir or default_cache_dir()
    plans = list_plans(cache_dir, machine)
    result = {"models_dir": str(folder) if folder else None, "models": models, "cache_dir": str(cache_dir),
              "machine": asdict(machine), "plans": [p.to_dict() for p in plans]}
    if args.json:
        print_json(result)
        return 0
    print(f"models in {folder or '(no engines folder found; set PERCEPTION_ENGINES)'}: {len(models)}")
    for row in models:
        if "error" in row:
            print(f"  {row['name']:<20} ERROR {row['error']}")
            continue
        inp = row["input"]
        names = row["classes"]
        classes = f"{len(names)} classes ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})" if names else "no classes"
        print(f"  {row['name']:<20} {row['task']:<16} {inp['name']} {inp['shape']} {inp['dtype']} "
              f"{row['precision']:<5} {classes}  sha256 {row['sha256']}")
    gpu = f"{machine.gpu_name} ({machine.compute_capability})" if machine.gpu_name else "none"
    here = f"TensorRT {machine.trt_version or 'missing'}, GPU {gpu}"
    print(f"plans in {cache_dir}: {len(plans)}  [this machine: {here}]")
    for plan in plans:
        state = {True: "current", False: "STALE", None: "unknown"}[plan.current]
        if plan.header is None:
            print(f"  {plan.path.name}  {state}: {plan.reason}")
            continue
        key = plan.header.key
        print(f"  {plan.path.name}  {plan.header.model_name} {key.precision} {key.compute_capability} "
              f"TensorRT {key.trt_version} on {plan.header.gpu_name}, built {plan.header.built_at}  "
              f"{state}{'' if plan.current else ': ' + plan.reason}")
    return 0
