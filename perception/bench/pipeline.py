"""`perception bench`: the full pipeline, timed per frame and per stage, at several sizes and on real frames.

Per size, a few distinct synthetic frames are rendered first (never timed) and cycled with fresh headers
(`perception.bench.frames`). Three pipelines run interleaved on the same frames (`measure.time_variants`):

- the full pipeline, `Pipeline(PipelineConfig())`: every stage on, networks in fp32 (their shipped precision);
- the baseline, the stereo front end only (rectify + disparity: `terrain=False`, scene and detection off);
- at the main size only, the same full pipeline with Q/DQ INT8 copies of its networks (`perception.bench.int8`).

Then, per size, the full pipeline once more as the product runs it, overlapped (`overlap` frames started ahead in
a second thread, `measure.time_stream`): `fps_<width>` and the latencies are that stream's; the frame-by-frame
numbers stay under `sizes.<size>.sequential`, and `stages_ms` are the frame-by-frame stage times (where the time
goes, without the other thread's share of the cores). A second stream runs the long range on every `far_every`-th
frame only (`terrain.every_n_frames`; same accuracy, docs/terrain.md): `long_range_every_n.fps_<width>`.

Then the full pipeline and the baseline on the real EuRoC stereo bag (raw 752x480 mono8, so rectification runs),
when $PERCEPTION_DATA has it. Every pipeline gets `warmup` untimed frames first.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from perception.bench.frames import cycle, euroc_frames, parse_size, synthetic_frames
from perception.bench.int8 import int8_pipeline_kwargs, pipeline_int8_models
from perception.bench.measure import cores, peak_rss_mb, rss_mb, time_stream, time_variants
from perception.errors import InputError

DEFAULT_SIZES = ("320x240", "640x480")
MAIN_SIZE = "640x480"
BASELINE_NAME = "stereo front end only (rectify + disparity; terrain, scene and detection off)"


def with_threads(config, threads: int | None):
    if threads is None:
        return config
    import cv2

    cv2.setNumThreads(threads)
    changes = {}
    for name in ("scene", "terrain", "detect"):
        part = getattr(config, name, None)
        if part is not None and hasattr(part, "threads"):
            changes[name] = dataclasses.replace(part, threads=threads)
    return dataclasses.replace(config, **changes)


def baseline_config(config):
    """`config` with every optional stage that has an `enabled` switch (scene, detection) turned off."""
    changes = {f.name: dataclasses.replace(getattr(config, f.name), enabled=False)
               for f in dataclasses.fields(config)
               if dataclasses.is_dataclass(getattr(config, f.name)) and hasattr(getattr(config, f.name), "enabled")}
    return dataclasses.replace(config, **changes)


def engines_of(pipeline) -> dict:
    """{stage: open Engine} of the networks `pipeline` runs."""
    out = {}
    terrain = getattr(pipeline, "terrain", None)
    if terrain is not None and terrain.long_range is not None:
        out["features"] = terrain.long_range.engine
    if getattr(pipeline, "scene", None) is not None:
        out["scene"] = pipeline.scene.engine
    detect = getattr(pipeline, "detect", None)
    if detect is not None and getattr(detect, "detector", None) is not None:
        out["detect"] = detect.detector.engine
    return out


def describe_engines(pipeline) -> dict:
    return {stage: {"backend": e.backend, "precision": e.precision, "model": e.path.name}
            for stage, e in engines_of(pipeline).items()}


def _one(values) -> str:
    values = sorted(set(values))
    return values[0] if len(values) == 1 else "+".join(values) if values else "none"


def _run_size(frames, n, warmup, pipelines, desc, progress) -> dict:
    stream = cycle(frames, n + warmup)
    timings = time_variants(pipelines, stream, warmup=warmup, total=n + warmup, desc=desc, progress=progress)
    return {name: t.summary() for name, t in timings.items()}


def _stream(config, rendered, frames: int, warmup: int, overlap: int, desc: str, progress: bool) -> dict:
    from perception.pipeline import Pipeline

    pipeline = Pipeline(config)
    try:
        return time_stream(pipeline, cycle(rendered, frames + warmup), warmup=warmup, depth=overlap,
                           total=frames + warmup, desc=desc, progress=progress)
    finally:
        pipeline.close()


def _key(size: str) -> str:
    return f"fps_{parse_size(size)[0]}"


def bench_pipeline(*, frames: int = 50, warmup: int = 5, sizes=DEFAULT_SIZES, distinct: int = 8,
                   threads: int | None = None, euroc: bool = True, int8: bool = True, seed: int = 0,
                   overlap: int = 1, far_every: int = 2, progress: bool = True) -> dict:
    """Run the benchmark; a JSON-ready dict (see docs/performance.md for every key)."""
    from perception.pipeline import Pipeline, PipelineConfig

    if frames < 1:
        raise InputError("must be at least 1", subject="--frames")
    if warmup < 0:
        raise InputError("must not be negative", subject="--warmup")
    if distinct < 1:
        raise InputError("must be at least 1", subject="--distinct")
    sizes = list(dict.fromkeys(sizes))
    if not sizes:
        raise InputError("no size given", subject="--sizes", hint="e.g. --sizes 320x240,640x480")
    for size in sizes:
        parse_size(size)
    main = MAIN_SIZE if MAIN_SIZE in sizes else sizes[-1]
    config = with_threads(PipelineConfig(), threads)
    base_config = baseline_config(config)
    far_config = dataclasses.replace(config, terrain=dataclasses.replace(config.terrain, every_n_frames=far_every))
    out: dict = {"frames": frames, "warmup": warmup, "distinct_frames": distinct, "sizes": {}, "main_size": main,
                 "threads": threads if threads is not None else 0, "cores": cores(), "overlap": overlap,
                 "baseline": {"name": BASELINE_NAME, "sizes": {}},
                 "long_range_every_n": {"every_n_frames": far_every}}
    int8_engines: dict = {}
    tmp = tempfile.TemporaryDirectory(prefix="perception-bench-")
    try:
        int8_models = pipeline_int8_models(config, Path(tmp.name)) if int8 else {}
        for size in sizes:
            rendered = synthetic_frames(size, min(distinct, frames + warmup), seed=seed, progress=progress)
            pipelines = {"full": Pipeline(config), "baseline": Pipeline(base_config, terrain=False)}
            usable_int8 = [m for m in int8_models.values() if m.model is not None]
            if size == main and usable_int8:
                int8_config, kwargs = int8_pipeline_kwargs(config, int8_models)
                pipelines["int8"] = Pipeline(int8_config, **kwargs)
            if size == main:
                out["engines"] = describe_engines(pipelines["full"])
                if "int8" in pipelines:
                    int8_engines = describe_engines(pipelines["int8"])
            try:
                runs = _run_size(rendered, frames, warmup, pipelines, f"bench {size}", progress)
            finally:
                for p in pipelines.values():
                    p.close()
            streamed = _stream(config, rendered, frames, warmup, overlap, f"bench {size} overlapped", progress)
            slow_far = _stream(far_config, rendered, frames, warmup, overlap,
                               f"bench {size} overlapped, long range every {far_every}", progress)
            out["sizes"][size] = {**streamed, "stages_ms_overlapped": streamed.pop("stages_ms"),
                                  "stages_ms": runs["full"]["stages_ms"], "sequential": runs["full"],
                                  "long_range_every_n": slow_far}
            out[_key(size)] = streamed["fps"]
            out["long_range_every_n"][_key(size)] = slow_far["fps"]
            out["baseline"]["sizes"][size] = runs["baseline"]
            out["baseline"][_key(size)] = runs["baseline"]["fps"]
            if size == main:
                full = runs["full"]
                for k in ("latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms"):
                    out[k] = streamed[k]
                    out["baseline"][k] = runs["baseline"][k]
                out["stages_ms"] = full["stages_ms"]
                out["baseline"]["stages_ms"] = runs["baseline"]["stages_ms"]
                out["full_over_baseline_latency"] = round(full["latency_mean_ms"] / runs["baseline"]["latency_mean_ms"], 3)
                if int8:
                    out["int8"] = _int8_summary(int8_models, runs, int8_engines, main)
            del rendered
        if euroc:
            out["euroc"] = _euroc(frames, warmup, config, base_config, progress)
    finally:
        tmp.cleanup()
    engines = out.get("engines", {})
    out["stages"] = sorted(out.get("stages_ms", {}))
    out["backend"] = _one(e["backend"] for e in engines.values())
    out["precision"] = _one(e["precision"] for e in engines.values())
    out["rss_mb"] = round(rss_mb(), 1)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def _int8_summary(models, runs, engines, size) -> dict:
    summary = {"size": size, "models": {stage: m.to_dict() for stage, m in models.items()}}
    for stage, m in models.items():
        if m.model is None:
            summary["models"][stage]["runs_in"] = "fp32 (no INT8 model)"
    if "int8" not in runs:
        summary["note"] = "no network could be quantized; nothing ran in INT8"
        return summary
    r, f = runs["int8"], runs["full"]
    summary.update({k: r[k] for k in ("fps", "latency_mean_ms", "latency_p50_ms", "latency_p99_ms", "stages_ms")})
    summary["engines"] = engines
    summary["fp32"] = {k: f[k] for k in ("fps", "latency_mean_ms", "latency_p50_ms", "latency_p99_ms")}
    summary["speedup_vs_fp32"] = round(f["latency_mean_ms"] / r["latency_mean_ms"], 3)
    per_stage = {}
    for stage in models:
        if stage in r["stages_ms"] and stage in f["stages_ms"] and r["stages_ms"][stage] > 0:
            per_stage[stage] = round(f["stages_ms"][stage] / r["stages_ms"][stage], 3)
    summary["stage_speedup_vs_fp32"] = per_stage
    not_int8 = sorted(s for s in r["stages_ms"] if s not in models)
    summary["stages_without_network"] = not_int8  # classical stages: INT8 does not apply, they run as in fp32
    if "features" in models and models["features"].model is not None:
        summary["note"] = ("the terrain classifier's offline defaults belong to the float feature net, so the INT8 "
                           "pipeline's online classifier starts from zero weights (same work per frame)")
    return summary


def _euroc(frames: int, warmup: int, config, base_config, progress: bool) -> dict:
    from perception.pipeline import Pipeline

    real, where = euroc_frames()
    if not real:
        return {"skipped": True, "note": where}
    h, w = real[0].left.shape[:2]
    pipelines = {"full": Pipeline(config), "baseline": Pipeline(base_config, terrain=False)}
    try:
        runs = _run_size(real, frames, warmup, pipelines, "bench euroc", progress)
    finally:
        for p in pipelines.values():
            p.close()
    full = runs["full"]
    return {"skipped": False, "source": where, "size": f"{w}x{h}", "distinct_frames": len(real),
            "rectified_input": bool(real[0].rectified),
            **{k: full[k] for k in ("fps", "latency_mean_ms", "latency_p50_ms", "latency_p99_ms", "stages_ms",
                                    "frames_failed")},
            **({"errors": full["errors"]} if "errors" in full else {}),
            "baseline": {k: runs["baseline"][k] for k in ("fps", "latency_mean_ms", "latency_p50_ms",
                                                          "latency_p99_ms", "stages_ms")}}
