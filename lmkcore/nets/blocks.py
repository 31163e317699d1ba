"""Backbones shared by the methods: a residual keypoint detector and a U-Net decoder.

Both follow the AutoLink card (section 3) and take a width and depth so the same code builds the
paper's network (`base=64, n_down=4`) and a compact CPU one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.coords import full_precision


def _norm(c: int, kind: str) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(c)
    if kind == "group":
        return nn.GroupNorm(min(32, c // 4) or 1, c)
    if kind == "instance":
        return nn.InstanceNorm2d(c, affine=True)
    raise ValueError(f"norm must be 'batch', 'group' or 'instance', got {kind!r}")


def _half(x: Tensor) -> Tensor:
    """Bilinear halving (align_corners=False), written as the 2 x 2 mean it equals, whose backward is
    cheaper on the CPU than interpolate's (tests/nets: the two agree)."""
    return F.avg_pool2d(x, 2)


def _conv_half(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """`_half(conv(x))` for a 3 x 3, padding-1 `conv`, computed as the one stride-2 4 x 4 convolution it
    equals (the 3 x 3 kernel spread over each 2 x 2 cell): a quarter of the output positions and no
    full-resolution intermediate, the same parameters and the same function (tests/nets)."""
    w = conv.weight  # (O, I, 3, 3)
    w4 = (F.pad(w, (0, 1, 0, 1)) + F.pad(w, (1, 0, 0, 1)) + F.pad(w, (0, 1, 1, 0)) + F.pad(w, (1, 0, 1, 0))) / 4
    return F.conv2d(x, w4, conv.bias, stride=2, padding=1)  # (B, O, H / 2, W / 2)


def _double(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def _layout_of(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """`x` in `conv`'s memory format: a warped or concatenated input comes back NCHW, and oneDNN falls
    back to a slower path when input and weights disagree."""
    if conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous():
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _up_to(x: Tensor, ref: Tensor) -> Tensor:
    """`x` at `ref`'s spatial size: doubling, except where a size did not halve evenly on the way down."""
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


class ResDown(nn.Module):
    """conv3x3 -> /2 -> norm -> LReLU -> conv3x3 -> norm, plus a conv3x3 -> /2 -> norm shortcut."""

    def __init__(self, cin: int, cout: int, norm: str = "batch"):
        super().__init__()
        self.c1, self.n1 = nn.Conv2d(cin, cout, 3, padding=1), _norm(cout, norm)
        self.c2, self.n2 = nn.Conv2d(cout, cout, 3, padding=1), _norm(cout, norm)
        self.cs, self.ns = nn.Conv2d(cin, cout, 3, padding=1), _norm(cout, norm)

    def forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.n1(_conv_half(self.c1, x)), 0.2)
        h = self.n2(self.c2(h))
        return F.leaky_relu(h + self.ns(_conv_half(self.cs, x)), 0.2)


class Up(nn.Module):
    """x2 -> conv3x3 -> norm -> LReLU."""

    def __init__(self, cin: int, cout: int, norm: str = "batch"):
        super().__init__()
        self.conv, self.norm = nn.Conv2d(cin, cout, 3, padding=1), _norm(cout, norm)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(self.norm(self.conv(_double(x))), 0.2)


class Detector(nn.Module):
    """Image `(B, 3, H, W)` -> K heatmap logits `(B, K, H / 2^(n_down - n_up), ...)`."""

    def __init__(self, k: int, *, base: int = 64, n_down: int = 4, n_up: int = 2, norm: str = "batch"):
        super().__init__()
        chans = [3] + [base * 2**i for i in range(n_down)]  # 3 -> 64 -> 128 -> 256 -> 512
        self.down = nn.Sequential(*[ResDown(a, b, norm) for a, b in zip(chans[:-1], chans[1:])])
        ups = [chans[-1] // 2**i for i in range(n_up + 1)]  # 512 -> 256 -> 128
        self.up = nn.Sequential(*[Up(a, b, norm) for a, b in zip(ups[:-1], ups[1:])])
        self.head = nn.Conv2d(ups[-1], k, 3, padding=1)
        self.n_down, self.n_up = n_down, n_up
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2)
                nn.init.zeros_(m.bias)

    def out_size(self, size: int) -> int:
        """Side of the heatmaps for an input of side `size` (each down block floors, each up doubles)."""
        for _ in range(self.n_down):
            size //= 2
        return size * 2**self.n_up

    def forward(self, x: Tensor) -> Tensor:
        h = self.up(self.down(_layout_of(x, self.head)))
        with torch.autocast(x.device.type, enabled=False):  # fp32 logits under AMP: bf16 would quantise the soft-argmax
            return self.head(full_precision(h))


class UNet(nn.Module):
    """U-Net with concatenated skips: `(B, cin, H, W) -> (B, cout, H, W)`, no output activation."""

    def __init__(self, cin: int, cout: int, *, base: int = 64, depth: int = 4, norm: str = "batch"):
        super().__init__()
        chans = [base * min(2**i, 8) for i in range(depth + 1)]  # 64, 128, 256, 512, 512
        self.stem = nn.Sequential(nn.Conv2d(cin, chans[0], 3, padding=1), nn.LeakyReLU(0.2))
        self.downs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 3, padding=1), _norm(b, norm), nn.LeakyReLU(0.2),
                          nn.Conv2d(b, b, 3, padding=1), _norm(b, norm))
            for a, b in zip(chans[:-1], chans[1:]))
        self.ups = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 3, padding=1), _norm(b, norm), nn.LeakyReLU(0.2),
                          nn.Conv2d(b, b, 3, padding=1), _norm(b, norm), nn.LeakyReLU(0.2))
            for a, b in zip([chans[-1]] + [2 * c for c in chans[-2:0:-1]], chans[-2::-1]))
        self.out = nn.Conv2d(2 * chans[0], cout, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(_layout_of(x, self.out))
        skips = [h]
        for down in self.downs:
            h = F.leaky_relu(_half(down(h)), 0.2)
            skips.append(h)
        skips.pop()
        for up in self.ups:
            skip = skips.pop()
            h = torch.cat([up(_up_to(h, skip)), skip], 1)
        return self.out(h)
