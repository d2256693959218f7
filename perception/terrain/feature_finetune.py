"""Fine-tune the feature net and fit the classifier defaults jointly on stereo-labelled logs (no human labels).

The LAGR network (conv 20@7x6, tanh, max-pool 1x4, conv 100@6x5, tanh) with the online classifier on top as a
1x1 convolution (100 -> 5, softmax), trained on band strips whose windows carry stereo targets
(`perception.terrain.stereo_logs`: near labels, and hindsight labels for far places the drive passed later),
loss = confidence-weighted KL(stereo || predicted), class-balanced. Starts from a feature net ONNX (the
unsupervised encoder/decoder pre-training of `perception train features`), ends with:
- the fine-tuned feature net (same graph, same metadata contract; `trained_on` says how);
- the 1x1 head = the online classifier's default weights (they belong to this net, `perception.terrain.defaults`).
torch is needed here only (the `train` extra); run time stays torch-free.
"""
from __future__ import annotations

import numpy as np

from perception.errors import ModelError
from perception.terrain import feature_net as FN
from perception.terrain.classifier import NUM_CLASSES


def weights_of(model_path) -> dict[str, np.ndarray]:
    """conv1/conv2 weights and biases of a feature net ONNX, found by their shapes."""
    import onnx
    from onnx import numpy_helper

    want = {FN.CONV1: "conv1.weight", FN.CONV1[:1]: "conv1.bias", FN.CONV2: "conv2.weight", FN.CONV2[:1]: "conv2.bias"}
    out = {}
    for init in onnx.load(str(model_path)).graph.initializer:
        arr = numpy_helper.to_array(init)
        key = want.get(tuple(arr.shape))
        if key is not None and key not in out:
            out[key] = arr.astype(np.float32)
    if len(out) != 4:
        raise ModelError(f"found {sorted(out)} of the 4 LAGR layers", subject=str(model_path),
                         hint="fine-tune a feature net written by perception.terrain.feature_net")
    return out


def _net(torch, w: dict[str, np.ndarray], head_w=None, head_b=None):
    nn = torch.nn

    class TerrainNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, FN.CONV1[0], FN.CONV1[2:])
            self.pool = nn.MaxPool2d(FN.POOL, FN.POOL)
            self.conv2 = nn.Conv2d(FN.CONV1[0], FN.CONV2[0], FN.CONV2[2:])
            self.head = nn.Conv2d(FN.CONV2[0], NUM_CLASSES, 1)

        def features(self, x):
            return torch.tanh(self.conv2(self.pool(torch.tanh(self.conv1(x)))))

        def forward(self, x):
            return torch.log_softmax(self.head(self.features(x)), dim=1)

    net = TerrainNet()
    with torch.no_grad():
        for name in ("conv1", "conv2"):
            getattr(net, name).weight.copy_(torch.from_numpy(w[f"{name}.weight"]))
            getattr(net, name).bias.copy_(torch.from_numpy(w[f"{name}.bias"]))
        if head_w is not None:
            net.head.weight.copy_(torch.from_numpy(np.asarray(head_w, np.float32)[:, :, None, None]))
            net.head.bias.copy_(torch.from_numpy(np.asarray(head_b, np.float32)))
    return net


def finetune(data, init: dict[str, np.ndarray], *, epochs: int = 8, batch: int = 8, lr: float = 1e-3,
             features_lr_scale: float = 0.3, head_w=None, head_b=None, device: str = "cpu", seed: int = 0,
             threads: int | None = None, progress=None):
    """Train on `data` (StripLabels). Returns (conv weights dict, head weights 5 x 100, head bias 5, losses)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    if not len(data.strips) or not (data.weights > 0).any():
        raise ModelError("no labelled band windows", subject="finetune", hint="log more frames")
    # class balance over all weighted windows
    t_all, w_all = data.window_samples()
    counts = np.bincount(np.argmax(t_all, 1), weights=w_all, minlength=NUM_CLASSES)
    present = counts > 0
    balance = np.zeros(NUM_CLASSES, np.float32)
    balance[present] = counts[present].sum() / (present.sum() * counts[present])
    net = _net(torch, init, head_w, head_b).to(device)
    opt = torch.optim.Adam([
        {"params": list(net.conv1.parameters()) + list(net.conv2.parameters()), "lr": lr * features_lr_scale},
        {"params": net.head.parameters(), "lr": lr * 10},
    ])
    bal = torch.from_numpy(balance).to(device)
    rng = np.random.default_rng(seed)
    losses = []
    n = len(data.strips)
    for epoch in range(epochs):
        order = rng.permutation(n)
        total, mass = 0.0, 0.0
        for i in range(0, n, batch):
            idx = np.sort(order[i: i + batch])
            x = torch.from_numpy(data.strips[idx].astype(np.float32)).to(device)
            t = torch.from_numpy(data.targets[idx].astype(np.float32)).to(device).permute(0, 3, 1, 2)
            w = torch.from_numpy(data.weights[idx].astype(np.float32)).to(device)
            if not (w > 0).any():
                continue
            logp = net(x)
            kl = (t * (torch.log(t.clamp_min(1e-8)) - logp)).sum(1)  # (B, 25, 115)
            cls_w = bal[t.argmax(1)]
            ww = w * cls_w
            loss = (kl * ww).sum() / ww.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * float(ww.sum())
            mass += float(ww.sum())
        losses.append(total / max(mass, 1e-9))
        if progress is not None:
            progress(epoch + 1, losses[-1])
    with torch.no_grad():
        out = {f"{name}.{p}": getattr(getattr(net, name), p).detach().cpu().numpy().astype(np.float32)
               for name in ("conv1", "conv2") for p in ("weight", "bias")}
        hw = net.head.weight.detach().cpu().numpy()[:, :, 0, 0].astype(np.float32)
        hb = net.head.bias.detach().cpu().numpy().astype(np.float32)
    return out, hw, hb, losses
