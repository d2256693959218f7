"""Q/DQ INT8 versions of the pipeline's networks, made on the fly for the benchmark (perception.engines.quantize).

Calibration images, per network: its list calibration/int8/<task>.txt when $PERCEPTION_DATA is set and the list's
images are there (the terrain feature net has one); else, for the scene and detection nets, the first CamVid
training images under $PERCEPTION_DATA/camvid/train; else synthetic outdoor-looking frames
(`perception.engines.bench.synthetic_images`). Each entry says which, and a network that could not be quantized says
why instead of pretending. The models are written to a folder the caller owns (a temporary one).

Quantization runs in a child process (spawned), so the calibrator's memory (histograms of every activation) does not
count in the benchmark's own peak RSS.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

from perception.errors import PerceptionError

log = logging.getLogger(__name__)

CAMVID_TRAIN = ("camvid", "train")


@dataclasses.dataclass
class Int8Model:
    stage: str  # the pipeline stage whose network this is: features, scene, detect
    float_model: str
    model: Path | None = None  # the Q/DQ model, None when it could not be made
    calibration: str = ""
    images: int = 0
    seconds: float = 0.0
    note: str = ""

    def to_dict(self) -> dict:
        out = {"float_model": self.float_model, "quantized": self.model is not None, "calibration": self.calibration,
               "calibration_images": self.images, "quantize_s": round(self.seconds, 3)}
        if self.note:
            out["note"] = self.note
        return out


def _calibration_images(task: str, max_images: int) -> tuple[list, str]:
    from perception.engines.bench import calibration_list_for, synthetic_images
    from perception.engines.quantize import read_image_list

    data = os.environ.get("PERCEPTION_DATA")
    list_path = calibration_list_for(task)
    if data and list_path.is_file():
        usable = [p for p in read_image_list(list_path) if Path(p).is_file()]
        if usable:
            return usable[:max_images], f"list:calibration/int8/{list_path.name}"
    if data and task in ("scene", "detect"):
        folder = Path(data).joinpath(*CAMVID_TRAIN)
        images = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if images:
            return images[:max_images], f"camvid/train (first {min(max_images, len(images))})"
    return synthetic_images(max_images, seed=1), "synthetic"


def quantize_for_bench(stage: str, float_model: str | Path, task: str, out_dir: Path, *,
                       max_images: int = 16) -> Int8Model:
    """A Q/DQ INT8 copy of `float_model` in `out_dir`, or an entry saying why there is none."""
    from perception.engines.quantize import quantize_int8

    float_model = Path(float_model)
    entry = Int8Model(stage, float_model.name)
    t0 = time.perf_counter()
    try:
        images, entry.calibration = _calibration_images(task, max_images)
        out = out_dir / f"{float_model.stem}_int8.onnx"
        report = quantize_int8(float_model, out, images, method="percentile", progress=False)
        entry.model, entry.images = out, report.images_used
    except PerceptionError as err:
        entry.note = f"not quantized: {err}"
        log.warning("%s: %s", float_model.name, entry.note)
    entry.seconds = time.perf_counter() - t0
    return entry


def _quantize_all(jobs: list[tuple[str, str, str]], out_dir: str, max_images: int) -> list[Int8Model]:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return [quantize_for_bench(stage, path, task, Path(out_dir), max_images=max_images) for stage, path, task in jobs]


def pipeline_int8_models(config, out_dir: Path, *, max_images: int = 16) -> dict[str, Int8Model]:
    """INT8 copies of the networks `config` runs (default models): terrain features, scene, detection."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from perception.engines.catalog import shipped_models_dir

    jobs: list[tuple[str, str, str]] = []
    folder = shipped_models_dir()
    terrain = getattr(config, "terrain", None)
    if terrain is not None and folder is not None and (folder / "terrain_features.onnx").is_file():
        jobs.append(("features", str(folder / "terrain_features.onnx"), "terrain_features"))
    if config.scene.enabled:
        from perception.scene.parser import default_model_path

        jobs.append(("scene", str(default_model_path()), "scene"))
    detect = getattr(config, "detect", None)
    if detect is not None and getattr(detect, "enabled", False):
        from perception.detect.detector import default_model_path as detect_default

        jobs.append(("detect", str(Path(detect.model) if getattr(detect, "model", "") else detect_default()), "detect"))
    if not jobs:
        return {}
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = pool.submit(_quantize_all, jobs, str(out_dir), max_images).result()
    return {m.stage: m for m in done}


def int8_pipeline_kwargs(config, models: dict[str, Int8Model]):
    """(config, Pipeline keyword arguments) that run the INT8 models where there are some."""
    kwargs: dict = {}
    m = models.get("features")
    if m is not None and m.model is not None:
        kwargs["model"] = m.model
        config = dataclasses.replace(config, terrain=dataclasses.replace(config.terrain, precision="int8"))
    m = models.get("scene")
    if m is not None and m.model is not None:
        kwargs["scene_model"] = m.model
    m = models.get("detect")
    if m is not None and m.model is not None:
        config = dataclasses.replace(config, detect=dataclasses.replace(config.detect, model=str(m.model)))
    return config, kwargs
