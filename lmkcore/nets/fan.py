"""A FAN-style network (Bulat & Tzimiropoulos): stem + one hourglass, GroupNorm everywhere, with the
detector, descriptor and landmark heads of Mallis et al. (card `mallis_self_training.md` section 4).

    stem:       conv7x7 s2 3 -> s + GN + ReLU; ConvBlock s -> 2s; avg-pool 2 (stride 4 only);
                ConvBlock 2s -> 2s; ConvBlock 2s -> w           (paper: s 64, w 256, stride 4)
    hourglass:  depth d, width w (avg-pool down, nearest up, ConvBlocks)   (paper d 4)
    detector:   ConvBlock -> 1x1 w -> GN -> ReLU -> 1x1 -> 1, sigmoid
    descriptor: ConvBlock -> 1x1 w -> GN -> ReLU -> 1x1 -> D        (paper D 256; no normalisation)
    landmarks:  a 1x1 w -> K on the descriptor head's features (Step 2 replaces the last descriptor 1x1)

Maps come out at 1/stride of the input: 256 -> 64 in the paper; the compact CPU recipe uses 64 -> 32.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def group_norm(c: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups where `c` allows (the paper's), else the largest divisor of 32 that does."""
    return nn.GroupNorm(math.gcd(32, c), c)


class ConvBlock(nn.Module):
    """FAN's pre-activation block: three GN-ReLU-conv3x3 steps to C/2, C/4, C/4 channels, concatenated to
    C, plus the input (through GN-ReLU-conv1x1 when the channels change)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        c2, c4 = cout // 2, cout // 4
        self.n1, self.c1 = group_norm(cin), nn.Conv2d(cin, c2, 3, padding=1, bias=False)
        self.n2, self.c2 = group_norm(c2), nn.Conv2d(c2, c4, 3, padding=1, bias=False)
        self.n3, self.c3 = group_norm(c4), nn.Conv2d(c4, cout - c2 - c4, 3, padding=1, bias=False)
        self.skip = (None if cin == cout
                     else nn.Sequential(group_norm(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False)))

    def forward(self, x: Tensor) -> Tensor:
        a = self.c1(F.relu(self.n1(x)))
        b = self.c2(F.relu(self.n2(a)))
        c = self.c3(F.relu(self.n3(b)))
        return torch.cat((a, b, c), 1) + (x if self.skip is None else self.skip(x))


class Hourglass(nn.Module):
    """One hourglass of `depth` levels at width `c`: skip branch + (avg-pool, block, inner, block, nearest up)."""

    def __init__(self, c: int, depth: int):
        super().__init__()
        self.up, self.down = ConvBlock(c, c), ConvBlock(c, c)
        self.inner = Hourglass(c, depth - 1) if depth > 1 else ConvBlock(c, c)
        self.out = ConvBlock(c, c)

    def forward(self, x: Tensor) -> Tensor:
        low = self.out(self.inner(self.down(F.avg_pool2d(x, 2))))
        return self.up(x) + F.interpolate(low, size=x.shape[-2:], mode="nearest")


def _head(c: int, cout: int) -> nn.Sequential:
    """ConvBlock -> 1x1 c -> GN -> ReLU -> 1x1 cout (the last layer kept apart: Step 2 swaps it)."""
    return nn.Sequential(ConvBlock(c, c), nn.Conv2d(c, c, 1), group_norm(c), nn.ReLU(), nn.Conv2d(c, cout, 1))


class FAN(nn.Module):
    """Image `(B, 3, H, W)` in [0, 1] -> features `(B, w, H / stride, W / stride)` and the three heads."""

    def __init__(self, *, stem: int = 64, width: int = 256, depth: int = 4, descriptor_dim: int = 256,
                 n_landmarks: int = 0, stride: int = 4):
        super().__init__()
        if stride not in (2, 4):
            raise ValueError(f"stride must be 2 or 4 (the paper's 4: 256 -> 64 maps), got {stride}")
        self.stride = stride
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 7, stride=2, padding=3), group_norm(stem), nn.ReLU(),
                                  ConvBlock(stem, 2 * stem), nn.AvgPool2d(2) if stride == 4 else nn.Identity(),
                                  ConvBlock(2 * stem, 2 * stem), ConvBlock(2 * stem, width))
        self.hourglass = Hourglass(width, depth)
        self.detector = _head(width, 1)
        self.descriptor = _head(width, descriptor_dim)
        # Step 2 only (n_landmarks 0: none), so Step-1 weights load into a Step-2 network key for key
        self.landmarks = nn.Conv2d(width, n_landmarks, 1) if n_landmarks > 0 else None

    def features(self, images: Tensor) -> Tensor:
        """`(B, 3, H, W)` in [0, 1] (no normalisation, as the paper) -> `(B, w, h, w)`."""
        return self.hourglass(self.stem(images))

    def detect(self, feats: Tensor) -> Tensor:
        """`(B, 1, h, w)` in (0, 1): is a landmark here."""
        return self.detector(feats).sigmoid()

    def describe(self, feats: Tensor) -> Tensor:
        """`(B, D, h, w)` descriptors (not normalised; the contrastive loss sees them raw)."""
        return self.descriptor(feats)

    def heatmaps(self, feats: Tensor) -> Tensor:
        """`(B, K, h, w)` landmark heatmaps (Step 2): the descriptor head's features through `landmarks`."""
        if self.landmarks is None:
            raise RuntimeError("this network has no landmark heads (n_landmarks=0, a Step-1 network)")
        return self.landmarks(self.descriptor[:-1](feats))
