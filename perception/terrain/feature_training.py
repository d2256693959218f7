"""Offline, label-free training of the terrain feature extractor (`perception train features`; needs torch).

Layer-wise convolutional encoder/decoder pairs, as in Hadsell et al. JFR 2009 (REFERENCE.md section 1):

    layer 1: x (3@36xW strip)            -> z1 = tanh(conv 20@7x6 (x))       -> x^  = deconv 3@7x6 (z1)
    layer 2: p = maxpool 1x4 (z1), fixed -> z2 = tanh(conv 100@6x5 (p))      -> p^  = deconv 20@6x5 (z2)
    loss    = mean_c |x^_c - x_c|^2 / E|x_c|^2  +  l1 * mean|z|     (per layer; c: input channel)

Each input channel's error is relative to that channel's mean energy, so every channel counts the same (U and V
carry about twice the energy of LCN'd Y in the training strips, three times on synthetic frames). Measured
(docs/terrain_features.md): with either weighting the encoder turns Y, the texture channel, down (mean Y filter
norm 0.57 -> 0.29 summed, 0.31 balanced); the balanced form is kept because it does not favour colour by design.

Why a plain encoder/decoder with an L1 code penalty and not PSD (predictive sparse decomposition): PSD infers an
optimal sparse code per sample by iterative shrinkage and trains the encoder to predict it, which costs tens of
decoder passes per step; on a CPU budget of minutes that buys far fewer samples. Jointly training encoder and
decoder with the penalty on the encoder's own (tanh) output gives sparse codes at the cost of one forward/backward
pass. A convolutional code with 20 maps for 3 input maps (100 for 20) is over-complete, so the penalty is what
asks for economy; decoder filters are projected to norm <= 1 after every step, so it cannot be dodged by shrinking
codes and growing the decoder. Measured (docs/terrain_features.md): a stronger penalty gives sparser codes but
features from which a linear probe reads LESS of the terrain truth, hence the mild default. The encoder starts
from the net's seeded orthonormal filters (feature_net), the decoder from their transposes / (kh kw). Only the
encoders are exported (feature_net builds the ONNX); .pt checkpoints exist to resume a run.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perception.errors import PerceptionError
from perception.params import param, validate_config
from perception.terrain import feature_net


class TrainingError(PerceptionError):
    """Training cannot start or continue: torch missing, no CUDA, a checkpoint from another run, a diverged loss."""


@dataclass
class TrainConfig:
    epochs: int = param(6, "passes over the strip set, per layer", 1, 10_000)
    steps: int = param(0, "most optimiser steps per layer per epoch (0: the whole strip set)", 0, 10_000_000)
    batch: int = param(32, "strips per optimiser step", 1, 4096)
    lr: float = param(2e-3, "Adam learning rate (warm-up, then cosine-decayed to 5% over each layer's run)", 1e-6, 1.0)
    l1: float = param(0.05, "weight of the L1 code penalty (mean |code|) against the relative reconstruction error",
                      0.0, 100.0)
    balance_channels: bool = param(True, "each input channel's reconstruction error relative to its own energy "
                                   "(else one error relative to the total energy)")
    val_fraction: float = param(0.05, "share of strips held out to measure reconstruction error", 0.0, 0.5)
    device: str = param("cpu", "torch device", choices=("cpu", "cuda"))
    threads: int = param(1, "torch CPU threads (0: torch decides)", 0, 256)
    seed: int = param(0, "initialisation and batch order", 0, 2**31 - 1)

    def __post_init__(self) -> None:
        validate_config(self)


@dataclass
class TrainResult:
    weights: dict[str, np.ndarray]  # conv1.weight/bias, conv2.weight/bias: feature_net.build_feature_net's input
    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


def _torch():
    try:
        import torch
    except ImportError as err:
        raise TrainingError("torch is not installed", subject="perception train features",
                            hint="install the training extra: pip install '.[train]'") from err
    return torch


def _layers(torch, seed: int):
    """(encoder, decoder) pairs of both layers, encoders from the untrained net's seeded orthonormal filters."""
    nn = torch.nn
    init = feature_net.default_weights(seed)
    pairs = []
    for name, (c_out, c_in, kh, kw) in (("conv1", feature_net.CONV1), ("conv2", feature_net.CONV2)):
        enc = nn.Conv2d(c_in, c_out, (kh, kw))
        dec = nn.ConvTranspose2d(c_out, c_in, (kh, kw))
        with torch.no_grad():
            enc.weight.copy_(torch.from_numpy(init[f"{name}.weight"]))
            enc.bias.zero_()
            # (c_out, c_in, kh, kw) is the transpose; 1/(kh kw): each input pixel is rebuilt from that many windows
            dec.weight.copy_(torch.from_numpy(init[f"{name}.weight"]) / (kh * kw))
            dec.bias.zero_()
        pairs.append((enc, dec))
    return pairs


def _project_decoder(torch, dec) -> None:
    with torch.no_grad():
        norms = dec.weight.flatten(1).norm(dim=1).clamp_min(1.0)
        dec.weight.div_(norms.view(-1, 1, 1, 1))


class _Stage:
    """One encoder/decoder pair and how its input is made from a strip batch."""

    def __init__(self, torch, layer: int, pairs, energy):
        self.torch, self.layer, self.energy, self.balance = torch, layer, energy, True
        self.enc, self.dec = pairs[layer - 1]
        self.below = pairs[0][0] if layer == 2 else None

    def inputs(self, x):
        if self.below is None:
            return x
        with self.torch.no_grad():
            z1 = self.torch.tanh(self.below(x))
            return self.torch.nn.functional.max_pool2d(z1, feature_net.POOL)

    def losses(self, x, l1: float):
        """(total loss, relative reconstruction error, mean |code|) of a batch of strips."""
        inp = self.inputs(x)
        code = self.torch.tanh(self.enc(inp))
        err = ((self.dec(code) - inp) ** 2).mean(dim=(0, 2, 3))
        recon = (err / self.energy).mean() if self.balance else err.sum() / self.energy.sum()
        sparsity = code.abs().mean()
        return recon + l1 * sparsity, recon, sparsity


def _energy(torch, stage_inputs: Callable, data, device, batch: int):
    """Mean energy E|x_c|^2 of each input channel of a stage (a tensor, floored away from zero)."""
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data), batch):
            inp = stage_inputs(torch.from_numpy(data[i:i + batch]).to(device))
            total = total + (inp ** 2).mean(dim=(0, 2, 3)) * inp.shape[0]
            n += inp.shape[0]
    energy = total / max(n, 1)
    return energy.clamp_min(max(float(energy.mean()) * 0.01, 1e-8))  # a near-dead map must not dominate


def _evaluate(torch, stage: _Stage, data, device, batch: int) -> tuple[float, float]:
    """Mean relative reconstruction error and mean |code| over `data` (no gradient)."""
    rec = spa = 0.0
    n = 0
    with torch.no_grad():
        for i in range(0, len(data), batch):
            x = torch.from_numpy(data[i:i + batch]).to(device)
            _, r, s = stage.losses(x, 0.0)
            rec += float(r) * x.shape[0]
            spa += float(s) * x.shape[0]
            n += x.shape[0]
    return rec / max(n, 1), spa / max(n, 1)


def train(strips: np.ndarray, config: TrainConfig, *, checkpoint: str | Path | None = None, resume: bool = False,
          progress: bool = True, log: Callable[[str], None] | None = None) -> TrainResult:
    """Train both layers in turn on N x 3 x 36 x W float32 strips; returns the encoders' weights and numbers.

    With `checkpoint`, the state is saved there after every epoch; `resume=True` carries on from it (same config
    and strips give the same result as an unbroken run, batch order included).
    """
    torch = _torch()
    if strips.ndim != 4 or strips.shape[1:3] != (3, feature_net.HEIGHT):
        raise TrainingError(f"strips have shape {strips.shape}, expected N x 3 x {feature_net.HEIGHT} x W",
                            subject="strips")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("torch sees no CUDA device", subject="--device cuda", hint="use --device cpu")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = torch.device(config.device)
    say = log or (lambda m: None)

    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(strips))
    n_val = int(round(len(strips) * config.val_fraction)) if len(strips) > 1 else 0
    val, tr = strips[order[:n_val]], strips[order[n_val:]]
    if len(tr) == 0:
        raise TrainingError("no strips left to train on after the validation split", subject="strips")
    evaluate_on = val if len(val) else tr[: max(1, min(len(tr), 256))]

    pairs = _layers(torch, config.seed)
    for enc, dec in pairs:
        enc.to(device)
        dec.to(device)
    state: dict[str, Any] = {"layer": 1, "epoch": 0, "history": [], "metrics": {}, "opt": None}
    ckpt = Path(checkpoint) if checkpoint else None
    if resume and ckpt and ckpt.exists():
        saved = torch.load(ckpt, map_location=device, weights_only=False)
        if saved.get("config") != asdict(config) or saved.get("n_strips") != len(strips):
            raise TrainingError("the checkpoint is from a run with another config or strip set", subject=str(ckpt),
                                hint="resume with the same options, or delete it to start afresh")
        for (enc, dec), (es, ds) in zip(pairs, saved["pairs"]):
            enc.load_state_dict(es)
            dec.load_state_dict(ds)
        state = {k: saved[k] for k in ("layer", "epoch", "history", "metrics", "opt")}
        say(f"resumed from {ckpt}: layer {state['layer']}, {state['epoch']} epochs done")

    per_epoch = math.ceil(len(tr) / config.batch)
    if config.steps:
        per_epoch = min(per_epoch, config.steps)
    total = per_epoch * config.epochs
    started = time.perf_counter()
    for layer in (1, 2):
        if layer < state["layer"]:
            continue
        enc, dec = pairs[layer - 1]
        stage = _Stage(torch, layer, pairs, None)
        stage.balance = config.balance_channels
        stage.energy = _energy(torch, stage.inputs, tr[: min(len(tr), 2048)], device, 256)
        params = list(enc.parameters()) + list(dec.parameters())
        opt = torch.optim.Adam(params, lr=config.lr)
        warm = max(1, min(50, total // 10))  # Adam's first steps on 60k decoder weights otherwise overshoot
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * (
            0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, total) / max(total, 1)))))
        key = f"layer{layer}"
        if state["epoch"] == 0 or layer > state["layer"]:
            state.update(layer=layer, epoch=0, opt=None)
            rec0, spa0 = _evaluate(torch, stage, evaluate_on, device, 256)
            state["metrics"][key] = {"recon_rel_initial": rec0, "sparsity_initial": spa0,
                                     "energy": [float(e) for e in stage.energy]}
            state["history"].append({"layer": layer, "step": 0, "val_recon_rel": rec0, "val_sparsity": spa0})
            say(f"layer {layer}: relative reconstruction error before training {rec0:.4f}")
        elif state["opt"] is not None:
            opt.load_state_dict(state["opt"]["opt"])
            sched.load_state_dict(state["opt"]["sched"])
        bar = _bar(progress, total, f"layer {layer}", initial=state["epoch"] * per_epoch)
        step = state["epoch"] * per_epoch
        for epoch in range(state["epoch"], config.epochs):
            perm = np.random.default_rng((config.seed, layer, epoch)).permutation(len(tr))
            run_loss = run_rec = run_spa = 0.0
            for b in range(per_epoch):
                idx = np.sort(perm[b * config.batch:(b + 1) * config.batch])
                if len(idx) == 0:
                    break
                x = torch.from_numpy(tr[idx]).to(device)
                loss, rec, spa = stage.losses(x, config.l1)
                if not torch.isfinite(loss):
                    raise TrainingError(f"the loss diverged at layer {layer} step {step}", subject="training",
                                        hint="lower --lr")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                _project_decoder(torch, dec)
                step += 1
                run_loss, run_rec, run_spa = float(loss.detach()), float(rec.detach()), float(spa.detach())
                state["history"].append({"layer": layer, "step": step, "loss": run_loss, "recon_rel": run_rec,
                                         "sparsity": run_spa})
                if bar is not None:
                    bar.update(1)
                    if step % 10 == 0:
                        bar.set_postfix(recon=f"{run_rec:.3f}", code=f"{run_spa:.3f}", refresh=False)
            val_rec, val_spa = _evaluate(torch, stage, evaluate_on, device, 256)
            state["history"].append({"layer": layer, "step": step, "val_recon_rel": val_rec, "val_sparsity": val_spa})
            state["epoch"] = epoch + 1
            state["opt"] = {"opt": opt.state_dict(), "sched": sched.state_dict()}
            if ckpt:
                _save(torch, ckpt, pairs, state, config, len(strips))
        if bar is not None:
            bar.close()
        rec1, spa1 = _evaluate(torch, stage, evaluate_on, device, 256)
        state["metrics"][key].update(recon_rel=rec1, sparsity=spa1, steps=step, epochs=config.epochs)
        say(f"layer {layer}: relative reconstruction error {state['metrics'][key]['recon_rel_initial']:.4f} -> "
            f"{rec1:.4f}, mean |code| {spa1:.3f}")
        state.update(layer=layer + 1, epoch=0, opt=None)
        if ckpt:
            _save(torch, ckpt, pairs, state, config, len(strips))
    metrics = dict(state["metrics"])
    metrics.update(strips_train=int(len(tr)), strips_val=int(len(val)), strip_width=int(strips.shape[3]),
                   seconds=time.perf_counter() - started, device=config.device)
    weights = {}
    for name, (enc, _) in zip(("conv1", "conv2"), pairs):
        weights[f"{name}.weight"] = enc.weight.detach().cpu().numpy().astype(np.float32)
        weights[f"{name}.bias"] = enc.bias.detach().cpu().numpy().astype(np.float32)
    return TrainResult(weights, state["history"], metrics)


def _bar(enabled: bool, total: int, desc: str, initial: int = 0):
    if not enabled:
        return None
    import sys

    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True)


def _save(torch, path: Path, pairs, state: dict, config: TrainConfig, n_strips: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"pairs": [(e.state_dict(), d.state_dict()) for e, d in pairs], "config": asdict(config),
                "n_strips": n_strips, **state}, tmp)
    tmp.replace(path)
