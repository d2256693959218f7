"""Training the detector (`perception train detect`; needs torch): synthetic drives + CamVid boxes, export ONNX.

Data: `sim_seeds` synthetic drives of `sim_frames` frames each (rendered once at the network size and cached in
`OUT/cache`), and, when `camvid` is given, the CamVid train + val images with boxes from their label components
(`perception.detect.data`). Each step draws `batch` crops, half synthetic and half CamVid when both are there.
Recipe: random scale around the network scale, crop, flip, colour jitter; CenterNet focal loss on the heatmap,
L1 on log box distances at the centre cells; AdamW with warm-up and cosine decay over `steps` (or over
`schedule_s` seconds when given). `checkpoint.pt` every `checkpoint_every` steps; `resume` carries on.
At the end: `history.json`, `learning_curve.png` and the ONNX model with metadata that says what it was trained on.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from perception.detect.data import CLASS_COLORS, CLASSES, camvid_samples
from perception.detect.targets import augment, make_targets
from perception.engines.metadata import ClassInfo, ModelMetadata, Normalization, TensorInfo
from perception.errors import InputError, PerceptionError
from perception.params import param, validate_config

MEAN = (0.485, 0.456, 0.406)  # RGB, of x / 255
STD = (0.229, 0.224, 0.225)
INPUT_NAME, HEAT_NAME, BOX_NAME = "image", "heatmap", "ltrb"


class TrainingError(PerceptionError):
    """Training cannot start or continue."""


@dataclass
class DetectTrainConfig:
    width: int = param(384, "network input width (px)", 64, 4096)
    height: int = param(288, "network input height (px)", 64, 4096)
    crop_width: int = param(256, "training crop width (px at network scale)", 32, 4096)
    crop_height: int = param(192, "training crop height (px)", 32, 4096)
    batch: int = param(8, "crops per step", 1, 1024)
    steps: int = param(3000, "planned optimiser steps", 1, 10_000_000)
    lr: float = param(2e-3, "peak learning rate (AdamW)", 1e-6, 1.0)
    warmup: int = param(100, "linear warm-up steps", 0, 1_000_000)
    sim_seeds: tuple = param(tuple(range(11, 27)), "synthetic drives (seeds) to train on", 0, 2**31 - 1)
    sim_frames: int = param(60, "frames per synthetic drive", 0, 100_000)
    sim_stride: int = param(5, "render every N-th frame of a drive", 1, 1000)
    camvid_share: float = param(0.5, "share of each batch from CamVid when it is given", 0.0, 1.0)
    head: int = param(32, "width of the detection head", 8, 512)
    checkpoint_every: int = param(200, "write checkpoint.pt every N steps", 1, 10_000_000)
    schedule_s: float = param(0.0, "fit the schedule to this many seconds (0: follow steps)", 0.0, 1e9)
    seed: int = param(0, "random seed", 0, 2**31 - 1)
    threads: int = param(1, "torch CPU threads (0: torch's default)", 0, 1024)
    device: str = param("auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda"))
    name: str = param("detect", "model name in the metadata", choices=None)

    def __post_init__(self) -> None:
        validate_config(self)
        if self.width % 32 or self.height % 32 or self.crop_width % 32 or self.crop_height % 32:
            raise InputError("network and crop sizes must be multiples of 32", subject="train detect")


def _torch():
    try:
        import torch
    except ImportError as err:  # pragma: no cover
        raise TrainingError("training needs torch", hint="pip install 'perception[train]'") from err
    return torch


def focal_loss(logits, target, mask, torch):
    """CenterNet's penalty-reduced focal loss, normalised by the number of objects."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = (1 - pos) * mask
    pos_loss = torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = torch.log(1 - p) * p ** 2 * (1 - target) ** 4 * neg
    return -(pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1.0)


def box_loss(log_ltrb, reg, weight, torch):
    w = weight.unsqueeze(1)
    return (torch.abs(log_ltrb - reg) * w).sum() / (4 * weight.sum().clamp(min=1.0))


def to_input(bgr_batch: list[np.ndarray], torch):
    x = np.stack([b[:, :, ::-1] for b in bgr_batch]).astype(np.float32) / 255.0
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def make_batch(pool, cfg: DetectTrainConfig, rng, torch):
    """pool: list of (samples, base_scale, share). Returns the batch tensors."""
    imgs, heats, masks, regs, regws = [], [], [], [], []
    shares = np.array([p[2] for p in pool], np.float64)
    for _ in range(cfg.batch):
        samples, base, _ = pool[int(rng.choice(len(pool), p=shares / shares.sum()))]
        s = samples[int(rng.integers(len(samples)))]
        crop, boxes, keep, ignore = augment(s.image, s.boxes, s.ignore, cfg.crop_width, cfg.crop_height, base, rng)
        heat, mask, reg, regw = make_targets(boxes, s.classes[keep], ignore, len(CLASSES), cfg.crop_width,
                                             cfg.crop_height)
        imgs.append(crop), heats.append(heat), masks.append(mask), regs.append(reg), regws.append(regw)
    t = lambda a: torch.from_numpy(np.stack(a))  # noqa: E731
    return to_input(imgs, torch), t(heats), t(masks).unsqueeze(1), t(regs), t(regws)


def model_metadata(cfg: DetectTrainConfig, trained_on: str, license: str = "") -> ModelMetadata:
    gw, gh = cfg.width // 4, cfg.height // 4
    return ModelMetadata(
        task="detect", name=cfg.name,
        inputs=[TensorInfo(INPUT_NAME, [1, 3, cfg.height, cfg.width], "float32", layout="NCHW", color="rgb",
                           normalization=Normalization(1.0 / 255.0, MEAN, STD))],
        outputs=[TensorInfo(HEAT_NAME, [1, len(CLASSES), gh, gw], "float32", layout="NCHW", decoding="heatmap"),
                 TensorInfo(BOX_NAME, [1, 4, gh, gw], "float32", layout="NCHW", decoding="ltrb")],
        classes=[ClassInfo(n, c) for n, c in zip(CLASSES, CLASS_COLORS)],
        decoder={"format": "centernet", "num_classes": len(CLASSES), "stride": 4, "letterbox": True,
                 "pad_value": 114, "score_threshold": 0.3, "nms_iou": 0.5},
        trained_on=trained_on, license=license)


def export_onnx(model, cfg: DetectTrainConfig, path, *, trained_on: str, license: str = "") -> Path:
    from perception.engines.export import export_torch

    torch = _torch()
    model = model.to("cpu").eval()
    x = torch.zeros(1, 3, cfg.height, cfg.width)
    return export_torch(model, x, path, model_metadata(cfg, trained_on, license), atol=1e-3)


def default_trained_on(cfg: DetectTrainConfig, camvid: bool, steps: int, minutes: float) -> str:
    parts = [f"{len(cfg.sim_seeds)} synthetic drives of perception.sim (seeds {','.join(map(str, cfg.sim_seeds))}, "
             f"{cfg.sim_frames} frames each; pedestrian, cyclist, car, truck boxes from the renderer's truth)"]
    if camvid:
        parts.append("CamVid train+val (468 images; Pedestrian, Bicyclist, Car boxes made from label components, "
                     "rough; research use only, cite Brostow et al. 2008)")
    return " + ".join(parts) + f"; {steps} steps, {minutes:.0f} min"


def train(cfg: DetectTrainConfig, out_dir, *, camvid: str | Path | None = None, resume: bool = False,
          onnx_path=None, trained_on: str = "", license: str = "", log: Callable[[str], None] = print,
          cache_dir=None):
    """Train; returns a dict (steps, minutes, final_loss, onnx, history)."""
    torch = _torch()
    from perception.detect.cache import build_sim_cache, load_sim_cache
    from perception.detect.models import CenterDetector

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = torch.device("cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    pool = []
    if cfg.sim_seeds and cfg.sim_frames:
        paths = build_sim_cache(cache_dir or out / "cache", cfg.sim_seeds, cfg.sim_frames,
                                size=(cfg.width, cfg.height), stride=cfg.sim_stride, log=log)
        sim = load_sim_cache(paths)
        pool.append((sim, 1.0, 1.0 - (cfg.camvid_share if camvid else 0.0)))
        log(f"synthetic: {len(sim)} frames, {sum(len(s.boxes) for s in sim)} boxes")
    if camvid:
        real = [s for split in ("train", "val") for s in camvid_samples(camvid, split)]
        if not real:
            raise InputError("no CamVid train/val images found", subject=str(camvid))
        pool.append((real, cfg.width / real[0].image.shape[1], cfg.camvid_share))
        log(f"CamVid: {len(real)} images, {sum(len(s.boxes) for s in real)} boxes from label components")
    if not pool:
        raise InputError("no training data: give synthetic drives and/or CamVid", subject="train detect")

    model = CenterDetector(len(CLASSES), head=cfg.head).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    step, history, spent = 0, [], 0.0
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"]), opt.load_state_dict(state["opt"])
        step, history, spent = state["step"], state["history"], state["seconds"]
        log(f"resumed at step {step}")
    t0 = time.time() - spent

    def progress() -> float:
        return (time.time() - t0) / cfg.schedule_s if cfg.schedule_s else step / cfg.steps

    def save() -> None:
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "history": history,
                    "seconds": time.time() - t0, "config": asdict(cfg)}, ckpt)

    model.train()
    running = []
    while step < cfg.steps and progress() < 1.0:
        p = progress()
        lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup)) * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, heat, mask, reg, regw = (t.to(device) for t in make_batch(pool, cfg, rng, torch))
        logits, log_ltrb = model.raw(x)
        l_heat = focal_loss(logits, heat, mask, torch)
        l_box = box_loss(log_ltrb, reg, regw, torch)
        loss = l_heat + l_box
        if not torch.isfinite(loss):
            raise TrainingError(f"loss diverged at step {step}", hint="lower --lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        step += 1
        running.append((float(l_heat.detach()), float(l_box.detach())))
        if step % 25 == 0 or step == cfg.steps:
            h, b = np.mean(running, 0)
            running = []
            history.append({"step": step, "loss": float(h + b), "heat": float(h), "box": float(b), "lr": lr,
                            "seconds": time.time() - t0})
            log(f"step {step}: loss {h + b:.3f} (heat {h:.3f}, box {b:.3f}), lr {lr:.2e}, "
                f"{(time.time() - t0) / 60:.1f} min")
        if step % cfg.checkpoint_every == 0:
            save()
    save()
    minutes = (time.time() - t0) / 60
    (out / "history.json").write_text(json.dumps(history))
    _plot(history, out / "learning_curve.png")
    text = trained_on or default_trained_on(cfg, bool(camvid), step, minutes)
    lic = license or ("synthetic data: the project's; CamVid: research and personal use only (Brostow et al.)"
                      if camvid else "synthetic data generated by perception.sim")
    onnx_file = export_onnx(model, cfg, Path(onnx_path) if onnx_path else out / "model.onnx", trained_on=text,
                            license=lic)
    log(f"exported {onnx_file}")
    return {"steps": step, "minutes": round(minutes, 2), "final_loss": history[-1]["loss"] if history else None,
            "onnx": str(onnx_file), "history": history, "trained_on": text}


def _plot(history, path: Path) -> None:
    if not history:
        return
    w, h = 640, 320
    img = np.full((h, w, 3), 255, np.uint8)
    losses = np.array([r["loss"] for r in history])
    lo, hi = 0.0, float(np.percentile(losses, 98)) * 1.05 or 1.0
    pts = [(int(40 + (w - 60) * i / max(1, len(losses) - 1)), int(h - 30 - (h - 60) * (v - lo) / (hi - lo)))
           for i, v in enumerate(losses)]
    cv2.polylines(img, [np.array(pts, np.int32)], False, (160, 60, 0), 2)
    cv2.putText(img, f"training loss (0 .. {hi:.2f}), {history[-1]['step']} steps, "
                f"{history[-1]['seconds'] / 60:.0f} min", (40, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.line(img, (40, h - 30), (w - 20, h - 30), (0, 0, 0), 1)
    cv2.imwrite(str(path), img)
