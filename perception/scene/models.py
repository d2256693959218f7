"""Scene-parsing networks (torch; the `train` extra). Both export to static-shape, opset-17, TensorRT-friendly ONNX.

`farabet` — the reference (REFERENCE.md section 2; Farabet, Couprie, Najman, LeCun, PAMI 2013): the image goes
through a 3-level pyramid (full, 1/2, 1/4 resolution; the two finer levels band-passed as in a Laplacian pyramid:
level minus the upsampled coarser level, the coarsest kept as is); ONE shared stage per level,
[7x7 conv] -> tanh -> [2x2 max-pool] -> [7x7 conv] -> tanh -> [2x2 max-pool] -> [7x7 conv]; the three feature maps
are upsampled to the finest one (1/4 of the input) and concatenated (3 x widths[2]; the paper's 3 x 256 = 768), and
a per-pixel linear classifier (1x1 conv) gives the class scores. `scales=1` is the single-scale variant (the full
resolution level only, no band-pass), the paper's "single-scale convnet" baseline. Paper widths: 16, 64, 256;
`widths` makes it narrower for CPU runs. Each level is normalised per channel (BatchNorm) where the paper used
local contrast normalisation.

`lite` — the modern efficient design this project uses by default: a small residual encoder-decoder
(stride-2 3x3 convs down to 1/16, depthwise-separable residual blocks, dilated blocks and a global-context branch
at 1/16, a two-step decoder with 1/8 and 1/4 skips), output at 1/4 of the network input. About 0.85 GFLOP
(2 per multiply-add) and 0.25 M parameters at 480x360 with the default widths.

Both end in a softmax: the ONNX output `probabilities` is 1 x C x H/4 x W/4; the parser upsamples it to the input
resolution (bilinear) and takes the arg-max.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ARCHS = ("lite", "farabet")
OUTPUT_STRIDE = 4


def _up(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=(int(size[0]), int(size[1])), mode="bilinear", align_corners=False)


class FarabetNet(nn.Module):
    """Multiscale ConvNet of Farabet et al. (see module doc). Output 1/4 of the input, softmax over classes."""

    def __init__(self, num_classes: int, widths=(16, 64, 256), scales: int = 3, kernel: int = 7):
        super().__init__()
        if scales not in (1, 2, 3):
            raise ValueError("scales must be 1, 2 or 3")
        self.scales = scales
        w1, w2, w3 = widths
        pad = kernel // 2
        self.norm = nn.ModuleList([nn.BatchNorm2d(3) for _ in range(scales)])  # per-level normalisation
        self.stage = nn.Sequential(  # shared weights across the levels
            nn.Conv2d(3, w1, kernel, padding=pad), nn.Tanh(), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(w1, w2, kernel, padding=pad), nn.Tanh(), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(w2, w3, kernel, padding=pad),
        )
        self.classifier = nn.Sequential(nn.Tanh(), nn.Conv2d(w3 * scales, num_classes, 1))

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = [x]
        for _ in range(self.scales - 1):
            levels.append(F.avg_pool2d(levels[-1], 2, ceil_mode=True))
        out = []
        for i, g in enumerate(levels):
            if i + 1 < len(levels):
                g = g - _up(levels[i + 1], g.shape[-2:])  # band-pass (Laplacian) level
            out.append(self.norm[i](g))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.stage(level) for level in self.pyramid(x)]
        size = feats[0].shape[-2:]
        feats = [feats[0]] + [_up(f, size) for f in feats[1:]]
        return torch.softmax(self.classifier(torch.cat(feats, 1)), 1) if not self.training else \
            self.classifier(torch.cat(feats, 1))


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SepBlock(nn.Module):
    """Residual depthwise-separable block: dw 3x3 (dilated) -> BN -> pw 1x1 -> BN, + identity, ReLU."""

    def __init__(self, c: int, dilation: int = 1):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, 1, dilation, dilation=dilation, groups=c, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.pw = nn.Conv2d(c, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.dw(x)))
        return F.relu(x + self.bn2(self.pw(y)))


class LiteSegNet(nn.Module):
    """Small residual encoder-decoder (see module doc). Output 1/4 of the input, softmax over classes."""

    def __init__(self, num_classes: int, widths=(16, 32, 64, 128), blocks=(1, 2, 4)):
        super().__init__()
        c1, c2, c3, c4 = widths
        self.stem = nn.Sequential(_cbr(3, c1, 3, 2), _cbr(c1, c2, 3, 2))  # 1/4
        self.s4 = nn.Sequential(*[SepBlock(c2) for _ in range(blocks[0])])
        self.down8 = _cbr(c2, c3, 3, 2)
        self.s8 = nn.Sequential(*[SepBlock(c3) for _ in range(blocks[1])])
        self.down16 = _cbr(c3, c4, 3, 2)
        dil = [1, 2, 4, 8, 1, 2, 4, 8]
        self.s16 = nn.Sequential(*[SepBlock(c4, dil[i]) for i in range(blocks[2])])
        self.context = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c4, c4, 1), nn.ReLU(inplace=True))
        self.lat16 = _cbr(c4, c3, 1)
        self.fuse8 = nn.Sequential(_cbr(c3, c3, 3))
        self.lat8 = _cbr(c3, c2, 1)
        self.skip4 = _cbr(c2, c2, 1)
        self.fuse4 = nn.Sequential(SepBlock(c2), _cbr(c2, c2 * 2 if c2 < 64 else c2, 1))
        self.classifier = nn.Conv2d(c2 * 2 if c2 < 64 else c2, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f4 = self.s4(self.stem(x))
        f8 = self.s8(self.down8(f4))
        f16 = self.s16(self.down16(f8))
        f16 = f16 + self.context(f16)
        y = _up(self.lat16(f16), f8.shape[-2:]) + f8
        y = self.fuse8(y)
        y = _up(self.lat8(y), f4.shape[-2:]) + self.skip4(f4)
        logits = self.classifier(self.fuse4(y))
        return logits if self.training else torch.softmax(logits, 1)


def build_model(arch: str, num_classes: int, *, widths=None, scales: int = 3) -> nn.Module:
    if arch == "lite":
        return LiteSegNet(num_classes, **({"widths": tuple(widths)} if widths else {}))
    if arch == "farabet":
        return FarabetNet(num_classes, widths=tuple(widths) if widths else (16, 64, 256), scales=scales)
    raise ValueError(f"unknown architecture {arch!r}; use one of {', '.join(ARCHS)}")


def output_size(height: int, width: int) -> tuple[int, int]:
    """Output rows, cols for a network input of height x width (ceil of /4, like the convs and pools)."""
    h, w = height, width
    for _ in range(2):
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w
