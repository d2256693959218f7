"""Training a scene parser on a folder of images and label images (`perception train scene`; needs torch).

Resumable and GPU-ready: `device` "auto" uses CUDA when torch sees a GPU, `amp` turns on mixed precision there;
a checkpoint (`checkpoint.pt`: weights, optimiser, schedule position, history, config) is written every
`checkpoint_every` steps and at the end, and `resume=True` carries on from it to the same planned step count
(the cosine schedule is defined over `steps`, so a resumed run ends where an unbroken one would). `time_budget_s`
stops early after a checkpoint (resume later). At the end: `learning_curve.png`, `history.json` and the ONNX model
(`model.onnx` by default) with its metadata (classes, colours, normalisation, what it was trained on).

Recipe: images are resized to the network input size (`size`, W x H), then each sample is randomly scaled
(`scale_range`), cropped to `crop` (padded with void where smaller), flipped left-right and colour-jittered;
AdamW with linear warm-up and cosine decay; cross-entropy ignoring void with square-root median-frequency class
weights (rare classes weigh more, but less than full median-frequency balancing).
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from perception.engines.metadata import ClassInfo, ModelMetadata, Normalization, TensorInfo
from perception.errors import InputError, PerceptionError
from perception.params import param, validate_config
from perception.scene import data as scene_data
from perception.scene.data import IGNORE, LabelSpec, SceneData
from perception.scene.metrics import confusion, scores

log = logging.getLogger("perception.scene")

MEAN = (0.485, 0.456, 0.406)  # RGB, of x / 255 (the usual ImageNet statistics)
STD = (0.229, 0.224, 0.225)
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"


class TrainingError(PerceptionError):
    """Training cannot start or continue (missing torch, bad checkpoint, diverged loss)."""


@dataclass
class TrainConfig:
    arch: str = param("lite", "network: lite (efficient encoder-decoder) or farabet (Farabet et al. multiscale)",
                      choices=("lite", "farabet"))
    width: int = param(480, "network input width (px); frames are resized to it", 32, 4096)
    height: int = param(360, "network input height (px)", 32, 4096)
    crop_width: int = param(240, "training crop width (px, at network scale)", 16, 4096)
    crop_height: int = param(180, "training crop height (px)", 16, 4096)
    batch: int = param(8, "crops per step", 1, 1024)
    steps: int = param(2000, "planned optimiser steps (the schedule's length)", 1, 10_000_000)
    lr: float = param(3e-3, "peak learning rate (AdamW)", 1e-6, 1.0)
    weight_decay: float = param(1e-4, "AdamW weight decay", 0.0, 1.0)
    warmup: int = param(50, "linear warm-up steps", 0, 1_000_000)
    scale_min: float = param(0.75, "random scale, low end", 0.1, 4.0)
    scale_max: float = param(1.5, "random scale, high end", 0.1, 4.0)
    scales: int = param(3, "farabet: pyramid levels (1 = the single-scale baseline)", 1, 3)
    widths: str = param("", "comma-separated layer widths (empty: the architecture's default)", choices=None)
    val_every: int = param(500, "evaluate on the val split every N steps (0: only at the end)", 0, 10_000_000)
    checkpoint_every: int = param(200, "write checkpoint.pt every N steps", 1, 10_000_000)
    time_budget_s: float = param(0.0, "stop (after a checkpoint) after this many seconds; 0: no limit", 0.0, 1e9)
    schedule_s: float = param(0.0, "fit the schedule to this many seconds of training: the cosine decay follows "
                                   "elapsed time and the run ends (and exports) when it is spent; `steps` is then "
                                   "an upper bound; 0: the schedule follows steps", 0.0, 1e9)
    train_on_val: bool = param(False, "train on train + val (no validation)")
    seed: int = param(0, "random seed", 0, 2**31 - 1)
    threads: int = param(0, "torch CPU threads (0: torch's default)", 0, 1024)
    device: str = param("auto", "auto (CUDA when torch sees a GPU), cpu or cuda", choices=("auto", "cpu", "cuda"))
    amp: bool = param(False, "mixed precision on CUDA")
    workers: int = param(0, "data-loading worker processes", 0, 64)
    name: str = param("scene", "model name in the metadata", choices=None)
    trained_on: str = param("", "metadata `trained_on` text (empty: written from the run)", choices=None)
    license: str = param("", "metadata `license` text: the terms of the training data", choices=None)

    def __post_init__(self) -> None:
        _validate(self)
        if self.scale_min > self.scale_max:
            raise InputError(f"scale_min {self.scale_min} > scale_max {self.scale_max}", subject="TrainConfig")
        if self.crop_width > 4 * self.width or self.crop_height > 4 * self.height:
            raise InputError("crop is more than 4x the network input", subject="TrainConfig.crop")

    @property
    def width_list(self) -> list[int] | None:
        if not self.widths:
            return None
        try:
            return [int(v) for v in self.widths.split(",")]
        except ValueError:
            raise InputError(f"'{self.widths}' is not comma-separated integers", subject="--widths") from None


def _validate(cfg: TrainConfig) -> None:
    """validate_config for every field with a range or choices; the free-text fields only need to be text."""
    import dataclasses

    checked = []
    for f in dataclasses.fields(cfg):
        if isinstance(f.default, str) and f.metadata["choices"] is None:
            if not isinstance(getattr(cfg, f.name), str):
                raise InputError(f"must be text, got {getattr(cfg, f.name)!r}", subject=f"TrainConfig.{f.name}")
        else:
            checked.append(f)
    stand_in = dataclasses.make_dataclass(
        "TrainConfig", [(f.name, f.type, dataclasses.field(default=f.default, metadata=f.metadata)) for f in checked])
    validate_config(stand_in(**{f.name: getattr(cfg, f.name) for f in checked}))


@dataclass
class TrainResult:
    onnx_path: Path | None
    out_dir: Path
    history: list[dict] = field(default_factory=list)
    steps_done: int = 0
    finished: bool = False
    seconds: float = 0.0
    final_val: dict | None = None


def _torch():
    try:
        import torch
    except ImportError as err:
        raise TrainingError("needs torch", subject="perception train scene",
                            hint="install the training extra: pip install 'perception[train]'") from err
    return torch


# --- data ------------------------------------------------------------------------------------------------
def load_pairs(pairs, spec: LabelSpec, width: int, height: int, *, progress: bool = True):
    """Read, decode and resize every pair to the network size: lists of RGB uint8 images and label arrays."""
    images, labels = [], []
    from tqdm import tqdm

    for img_path, lab_path in tqdm(pairs, desc="loading", unit="img", leave=False, disable=not progress or len(pairs) < 50):
        bgr = scene_data.read_image(img_path)
        lab = spec.decode(scene_data.read_label(lab_path), subject=str(lab_path))
        if lab.shape[:2] != bgr.shape[:2]:
            raise InputError(f"label is {lab.shape[1]}x{lab.shape[0]} but its image is {bgr.shape[1]}x{bgr.shape[0]}",
                             subject=str(lab_path))
        if bgr.shape[:2] != (height, width):
            bgr = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
            lab = cv2.resize(lab, (width, height), interpolation=cv2.INTER_NEAREST)
        images.append(np.ascontiguousarray(bgr[:, :, ::-1]))
        labels.append(lab)
    return images, labels


def class_weights(labels: list[np.ndarray], k: int) -> np.ndarray:
    """Square-root median-frequency weights over the classes present (absent classes weigh 1)."""
    counts = np.zeros(k, np.float64)
    for lab in labels:
        counts += np.bincount(lab[lab != IGNORE].ravel(), minlength=k)[:k]
    freq = counts / max(counts.sum(), 1)
    present = freq > 0
    w = np.ones(k)
    if present.any():
        w[present] = np.sqrt(np.median(freq[present]) / freq[present])
    return (w / w[present].mean() if present.any() else w).astype(np.float32)


def augment(rgb: np.ndarray, lab: np.ndarray, cfg: TrainConfig, rng: np.random.Generator):
    """Random scale, crop (void padding), left-right flip and colour jitter; returns (crop RGB uint8, crop label)."""
    s = rng.uniform(cfg.scale_min, cfg.scale_max)
    h, w = lab.shape
    nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
    if (nh, nw) != (h, w):
        rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
        lab = cv2.resize(lab, (nw, nh), interpolation=cv2.INTER_NEAREST)
    ch, cw = cfg.crop_height, cfg.crop_width
    if nh < ch or nw < cw:
        ph, pw = max(0, ch - nh), max(0, cw - nw)
        rgb = cv2.copyMakeBorder(rgb, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(124, 116, 104))
        lab = cv2.copyMakeBorder(lab, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=IGNORE)
        nh, nw = lab.shape
    y = int(rng.integers(0, nh - ch + 1))
    x = int(rng.integers(0, nw - cw + 1))
    rgb, lab = rgb[y:y + ch, x:x + cw], lab[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        rgb, lab = rgb[:, ::-1], lab[:, ::-1]
    f = rgb.astype(np.float32)
    gain = rng.uniform(0.75, 1.25) * rng.uniform(0.9, 1.1, 3)  # brightness and per-channel balance
    mean = f.mean()
    contrast = rng.uniform(0.75, 1.25)
    f = (f - mean) * contrast + mean
    grey = f.mean(2, keepdims=True)
    f = grey + (f - grey) * rng.uniform(0.7, 1.3)  # saturation
    f = f * gain + rng.uniform(-12, 12)
    return np.clip(f, 0, 255).astype(np.uint8), np.ascontiguousarray(lab)


def to_tensor_batch(rgbs, torch):
    x = np.stack(rgbs).astype(np.float32) / 255.0
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


class _Samples:
    """A torch-style dataset of random augmented crops (index only picks the source image)."""

    def __init__(self, images, labels, cfg: TrainConfig, seed: int):
        self.images, self.labels, self.cfg, self.seed = images, labels, cfg, seed
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return augment(self.images[i], self.labels[i], self.cfg, self.rng)


def _as_list(batch):
    return batch


def _worker_init(worker_id: int) -> None:
    import torch

    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng(info.dataset.seed * 1000 + worker_id + int(torch.initial_seed() % 997))


# --- model + metadata ------------------------------------------------------------------------------------
def build(cfg: TrainConfig, num_classes: int):
    from perception.scene.models import build_model

    return build_model(cfg.arch, num_classes, widths=cfg.width_list, scales=cfg.scales)


def model_metadata(cfg: TrainConfig, spec_names, spec_colors, *, trained_on: str, license: str = "") -> ModelMetadata:
    from perception.scene.models import output_size

    oh, ow = output_size(cfg.height, cfg.width)
    k = len(spec_names)
    arch = cfg.arch if cfg.arch != "farabet" else f"farabet-{cfg.scales}scale"
    return ModelMetadata(
        task="scene", name=cfg.name,
        inputs=[TensorInfo(INPUT_NAME, [1, 3, cfg.height, cfg.width], "float32", layout="NCHW", color="rgb",
                           normalization=Normalization(scale=1.0 / 255.0, mean=MEAN, std=STD))],
        outputs=[TensorInfo(OUTPUT_NAME, [1, k, oh, ow], "float32", layout="NCHW", decoding="probabilities")],
        classes=[ClassInfo(n, tuple(c)) for n, c in zip(spec_names, spec_colors)],
        decoder={"num_classes": k, "arch": arch, "widths": cfg.width_list or "default", "output_stride": 4,
                 "resize": "bilinear", "ignore": "void is not predicted"},
        trained_on=trained_on, license=license,
    )


def export_onnx(model, cfg: TrainConfig, names, colors, path: Path, *, trained_on: str, license: str = "") -> Path:
    torch = _torch()
    from perception.engines.export import export_torch

    model = model.to("cpu").eval()
    meta = model_metadata(cfg, names, colors, trained_on=trained_on, license=license)
    example = torch.zeros(1, 3, cfg.height, cfg.width)
    example.uniform_(-2, 2, generator=torch.Generator().manual_seed(0))
    return export_torch(model, example, path, meta, atol=1e-3)


# --- evaluation inside training --------------------------------------------------------------------------
def evaluate_torch(model, images, labels, num_classes: int, device, torch) -> dict:
    """Whole images at network size through the torch model (eval mode), bilinear to label size."""
    import torch.nn.functional as F

    model.eval()
    conf = np.zeros((num_classes, num_classes), np.int64)
    with torch.no_grad():
        for rgb, lab in zip(images, labels):
            x = to_tensor_batch([rgb], torch).to(device)
            p = F.interpolate(model(x).float(), size=lab.shape, mode="bilinear", align_corners=False)
            conf += confusion(lab, p.argmax(1)[0].cpu().numpy(), num_classes)
    model.train()
    return scores(conf)


# --- the loop ----------------------------------------------------------------------------------------------
def train(data: SceneData, cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False,
          onnx_path: str | Path | None = None, log_fn: Callable[[str], None] = print,
          progress: bool = True) -> TrainResult:
    """Train on `data` (see module doc); returns where the model went and the history."""
    torch = _torch()
    import torch.nn.functional as F
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.pt"
    onnx_path = Path(onnx_path) if onnx_path else out_dir / "model.onnx"
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("CUDA was asked for but torch sees no GPU", subject="--device",
                            hint="use --device cpu, or install a CUDA build of torch")
    device = torch.device("cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    amp = bool(cfg.amp and device.type == "cuda")
    spec = data.spec
    k = spec.num_classes

    state = None
    if resume:
        if not ckpt_path.is_file():
            raise TrainingError("no checkpoint to resume from", subject=str(ckpt_path),
                                hint="run without --resume first (same --out)")
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if list(state["classes"]) != list(spec.names):
            raise TrainingError(f"checkpoint classes {state['classes']} differ from the data's {list(spec.names)}",
                                subject=str(ckpt_path))
        saved = state["config"]
        for key in ("arch", "width", "height", "scales", "widths"):
            if saved[key] != getattr(cfg, key):
                raise TrainingError(f"checkpoint has {key}={saved[key]!r} but this run asks {getattr(cfg, key)!r}",
                                    subject=str(ckpt_path), hint="resume with the same model options")

    train_pairs = data.train + (data.val if cfg.train_on_val else [])
    val_pairs = [] if cfg.train_on_val else data.val
    log_fn(f"data: {data.summary()}")
    log_fn(f"training on {len(train_pairs)} pairs, validating on {len(val_pairs)}; device {device}"
           f"{' (AMP)' if amp else ''}; {cfg.arch} at {cfg.width}x{cfg.height}, crops {cfg.crop_width}x{cfg.crop_height}")
    t_load = time.time()
    images, labels = load_pairs(train_pairs, spec, cfg.width, cfg.height, progress=progress)
    val_images, val_labels = load_pairs(val_pairs, spec, cfg.width, cfg.height, progress=progress)
    log_fn(f"loaded in {time.time() - t_load:.1f} s")
    weights = class_weights(labels, k)

    torch.manual_seed(cfg.seed)
    model = build(cfg, k).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def progress_at(step: int) -> float:
        by_steps = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        if cfg.schedule_s:
            return max(by_steps, elapsed() / cfg.schedule_s)
        return by_steps

    def elapsed() -> float:
        return seconds_before + time.time() - t0

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        t = progress_at(step)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    history: list[dict] = []
    step, seconds_before, t0 = 0, 0.0, time.time()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if "scaler" in state and amp:
            scaler.load_state_dict(state["scaler"])
        step, history, seconds_before = int(state["step"]), list(state["history"]), float(state.get("seconds", 0.0))
        cfg_steps = cfg.steps
        log_fn(f"resumed from {ckpt_path} at step {step} of {cfg_steps}")

    def save_checkpoint(seconds: float) -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scaler": scaler.state_dict(),
                    "step": step, "history": history, "config": asdict(cfg), "classes": list(spec.names),
                    "colors": [list(c) for c in spec.colors], "seconds": seconds}, tmp)
        tmp.replace(ckpt_path)
        (out_dir / "history.json").write_text(json.dumps(history, indent=1))

    samples = _Samples(images, labels, cfg, cfg.seed + step)
    sampler = torch.utils.data.RandomSampler(samples, replacement=True, num_samples=10**9,
                                             generator=torch.Generator().manual_seed(cfg.seed + step))
    loader = torch.utils.data.DataLoader(samples, batch_size=cfg.batch, sampler=sampler, num_workers=cfg.workers,
                                         collate_fn=_as_list, worker_init_fn=_worker_init if cfg.workers else None,
                                         persistent_workers=bool(cfg.workers))
    batches = iter(loader)
    w_t = torch.from_numpy(weights).to(device)
    model.train()
    t0 = time.time()
    finished = step >= cfg.steps or bool(cfg.schedule_s and seconds_before >= cfg.schedule_s)
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.arch}", unit="step", disable=not progress,
               dynamic_ncols=True)
    running = None
    final_val = None
    while step < cfg.steps and not finished:
        batch = next(batches)
        x = to_tensor_batch([b[0] for b in batch], torch).to(device, non_blocking=True)
        y = torch.from_numpy(np.stack([b[1] for b in batch]).astype(np.int64)).to(device, non_blocking=True)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        with torch.autocast(device_type=device.type, enabled=amp):
            logits = model(x)
            logits = F.interpolate(logits, size=y.shape[-2:], mode="bilinear", align_corners=False)
            loss = F.cross_entropy(logits.float(), y, weight=w_t, ignore_index=IGNORE)
        if not torch.isfinite(loss):
            raise TrainingError(f"loss became {loss.item()} at step {step}", subject="training",
                                hint="lower --lr, or resume from the last checkpoint")
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        step += 1
        lv = float(loss.item())
        running = lv if running is None else 0.95 * running + 0.05 * lv
        with torch.no_grad():
            valid = y != IGNORE
            acc = float((logits.argmax(1)[valid] == y[valid]).float().mean()) if valid.any() else 0.0
        history.append({"step": step, "loss": round(lv, 5), "train_pixel_acc": round(acc, 4),
                        "lr": round(lr_at(step - 1), 7), "seconds": round(seconds_before + time.time() - t0, 2)})
        bar.update(1)
        bar.set_postfix(loss=f"{running:.3f}", acc=f"{acc:.3f}")
        last = step >= cfg.steps or bool(cfg.schedule_s and elapsed() >= cfg.schedule_s)
        if val_images and ((cfg.val_every and step % cfg.val_every == 0) or last):
            final_val = evaluate_torch(model, val_images, val_labels, k, device, torch)
            history[-1].update(val_miou=round(final_val["miou"], 4), val_pixel_acc=round(final_val["pixel_acc"], 4),
                               val_class_acc=round(final_val["class_acc"], 4))
            bar.write(f"step {step}: val mIoU {final_val['miou']:.3f}, pixel acc {final_val['pixel_acc']:.3f}")
        over_budget = cfg.time_budget_s and (time.time() - t0) >= cfg.time_budget_s
        if last or step % cfg.checkpoint_every == 0 or over_budget:
            save_checkpoint(seconds_before + time.time() - t0)
        if over_budget and not last:
            bar.write(f"time budget of {cfg.time_budget_s:.0f} s reached at step {step} of {cfg.steps}; "
                      f"checkpoint written, continue with --resume")
            break
        if last:
            finished = True
            break
    bar.close()
    finished = finished or step >= cfg.steps
    seconds = seconds_before + time.time() - t0
    from perception.scene.plots import learning_curve

    curve = learning_curve(history, out_dir / "learning_curve.png",
                           title=f"{cfg.name}: {cfg.arch}, {step} steps, {seconds / 60:.1f} min")
    log_fn(f"wrote {curve}")
    result = TrainResult(None, out_dir, history, step, finished, seconds, final_val)
    if finished:
        run_text = (f"{len(train_pairs)} image/label pairs ({'train + val' if cfg.train_on_val else 'train'} of "
                    f"{data.root.name}), {step} steps x batch {cfg.batch} of {cfg.crop_width}x{cfg.crop_height} crops "
                    f"at network scale {cfg.width}x{cfg.height}, {seconds / 60:.1f} min on {device.type}")
        trained_on = f"{cfg.trained_on} [run: {run_text}]" if cfg.trained_on else run_text
        result.onnx_path = export_onnx(model, cfg, spec.names, spec.colors, onnx_path, trained_on=trained_on,
                                       license=cfg.license)
        log_fn(f"wrote {result.onnx_path}")
    return result
