"""The detector network: a fully convolutional single-stage, anchor-free detector (CenterNet / FCOS style).

The ConvNet is slid over the whole image in one pass (OverFeat: the convolutions are computed once for every
window position), and at every cell of a stride-4 grid it outputs, per class, the probability that an object's
centre lies there (`heatmap`, sigmoid), and the distances from the cell centre to the object's four box edges
(`ltrb`, in network-input pixels, exp of the regression). Peak picking, thresholds and NMS are done in numpy after
the network (`perception.detect.decode`), so the graph stays TensorRT-friendly: Conv, BatchNorm (folded), Relu,
Resize, Add, Concat, Sigmoid, Exp, Mul, Clip.

Backbone: stride-2 3x3 conv stem, residual 3x3 blocks at strides 4, 8, 16 and 32 (widths `widths`), a small
feature pyramid top-down (each level upsampled x2 and added to the lateral 1x1 of the finer level) back to stride 4,
then two heads of two 3x3 convs each.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

STRIDE = 4
DEFAULT_WIDTHS = (16, 32, 48, 64, 96)  # stem (s2), s4, s8, s16, s32


def conv_bn(cin: int, cout: int, stride: int = 1, k: int = 3, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, c: int, dilation: int = 1) -> None:
        super().__init__()
        self.a = conv_bn(c, c, dilation=dilation)
        self.b = nn.Sequential(nn.Conv2d(c, c, 3, 1, dilation, dilation=dilation, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return F.relu(x + self.b(self.a(x)))


class CenterDetector(nn.Module):
    """Image (N x 3 x H x W, normalised) -> heatmap (N x C x H/4 x W/4, 0..1), ltrb (N x 4 x H/4 x W/4, pixels)."""

    def __init__(self, num_classes: int = 4, widths=DEFAULT_WIDTHS, head: int = 48) -> None:
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.stem = conv_bn(3, w0, stride=2)
        self.s4 = nn.Sequential(conv_bn(w0, w1, stride=2), Residual(w1))
        self.s8 = nn.Sequential(conv_bn(w1, w2, stride=2), Residual(w2))
        self.s16 = nn.Sequential(conv_bn(w2, w3, stride=2), Residual(w3), Residual(w3, dilation=2))
        self.s32 = nn.Sequential(conv_bn(w3, w4, stride=2), Residual(w4), Residual(w4, dilation=2))
        self.lat32 = nn.Conv2d(w4, head, 1)
        self.lat16 = nn.Conv2d(w3, head, 1)
        self.lat8 = nn.Conv2d(w2, head, 1)
        self.lat4 = nn.Conv2d(w1, head, 1)
        self.smooth = conv_bn(head, head)
        self.cls_head = nn.Sequential(conv_bn(head, head), nn.Conv2d(head, num_classes, 1))
        self.box_head = nn.Sequential(conv_bn(head, head), nn.Conv2d(head, 4, 1))
        nn.init.constant_(self.cls_head[-1].bias, -4.6)  # prior probability 0.01 (focal-loss initialisation)
        nn.init.constant_(self.box_head[-1].bias, 1.5)

    def features(self, x):
        c4 = self.s4(self.stem(x))
        c8 = self.s8(c4)
        c16 = self.s16(c8)
        c32 = self.s32(c16)
        p = self.lat32(c32)
        p = F.interpolate(p, size=c16.shape[2:], mode="bilinear", align_corners=False) + self.lat16(c16)
        p = F.interpolate(p, size=c8.shape[2:], mode="bilinear", align_corners=False) + self.lat8(c8)
        p = F.interpolate(p, size=c4.shape[2:], mode="bilinear", align_corners=False) + self.lat4(c4)
        return self.smooth(p)

    def raw(self, x):
        """(heatmap logits, log ltrb in stride units) for training."""
        f = self.features(x)
        return self.cls_head(f), self.box_head(f)

    def forward(self, x):
        logits, log_ltrb = self.raw(x)
        return torch.sigmoid(logits), torch.exp(torch.clamp(log_ltrb, -4.0, 6.0)) * float(STRIDE)


def gflops(model: nn.Module, width: int, height: int) -> float:
    """Multiply-adds x 2 of the convolutions for one width x height frame."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total += 2 * k * out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, height, width))
    for h in handles:
        h.remove()
    return total / 1e9
