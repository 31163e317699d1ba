"""Hourglass encoder of the part-based method's shape and appearance streams.

Lorenz et al. CVPR 2019 (card `lorenz_part_disentangling.md`, section 3, "separate hourglass"):
a pre-processing stem brings the image to the part-map size, stage 0 (an hourglass) predicts K
part-map logits, stage 1 (a shallower hourglass fed the stem's features plus the softmax part maps)
predicts the appearance feature map that is pooled under the parts. Widths and depths are arguments,
so the paper's network (256 channels, depth 4, 64 x 64 maps) and a compact CPU one are one config.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.heatmaps import spatial_softmax, spot_logits


# helpers

class Residual(nn.Module):
    """Bottleneck residual (BN-ReLU-1x1 C/2, BN-ReLU-3x3 C/2, BN-ReLU-1x1 C) + a 1x1 skip where the width
    changes: `(B, cin, H, W) -> (B, cout, H, W)`."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = max(cout // 2, 1)
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, mid, 1),
            nn.BatchNorm2d(mid), nn.ReLU(), nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid), nn.ReLU(), nn.Conv2d(mid, cout, 1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.body(x)


class Hourglass(nn.Module):
    """Recursive hourglass (Newell et al. 2016) at constant width: `(B, C, H, W) -> (B, C, H, W)`.

    Each level keeps a residual branch at its size and a max-pooled branch that goes one level
    deeper and comes back by nearest upsampling; `depth` levels need H divisible by 2^depth.
    """

    def __init__(self, depth: int, channels: int):
        super().__init__()
        self.up = Residual(channels, channels)
        self.down = Residual(channels, channels)
        self.inner = Hourglass(depth - 1, channels) if depth > 1 else Residual(channels, channels)
        self.out = Residual(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        low = self.out(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.up(x) + F.interpolate(low, size=x.shape[-2:], mode="nearest")


def _head(cin: int, mid: int, cout: int, dropout: float) -> nn.Sequential:
    """dropout -> 1x1 conv-BN-ReLU -> 1x1 conv (the card's stage outputs)."""
    return nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(cin, mid, 1), nn.BatchNorm2d(mid), nn.ReLU(),
                         nn.Conv2d(mid, cout, 1))


# classes

class PartEncoder(nn.Module):
    """Image `(B, 3, in_dim, in_dim)` in [0, 1] -> part maps `(B, K, m, m)` (each sums to 1) and appearance
    features `(B, n_features, m, m)`, with m = `map_dim`.

    Stem: conv 6x6 stride 2 (BN, ReLU) to `stem` channels, a residual to `channels`, then a max-pool
    and a residual per further halving down to `map_dim` (card: 128 px input -> 64 maps; 256 -> 64).
    """

    def __init__(self, n_parts: int, *, in_dim: int = 128, map_dim: int = 64, stem: int = 64, channels: int = 256,
                 depth: int = 4, app_depth: int = 1, n_features: int = 64, dropout: float = 0.2, prior: float = 0.0):
        super().__init__()
        halvings = math.log2(in_dim / map_dim)
        if halvings < 1 or halvings != int(halvings):
            raise ValueError(f"in_dim / map_dim must be 2, 4, 8, ...; got in_dim={in_dim}, map_dim={map_dim}")
        if map_dim % 2**depth:
            raise ValueError(f"map_dim={map_dim} must be divisible by 2^depth = {2**depth} (hourglass depth)")
        pre = [nn.Conv2d(3, stem, 6, stride=2, padding=2), nn.BatchNorm2d(stem), nn.ReLU(), Residual(stem, channels)]
        for _ in range(int(halvings) - 1):
            pre += [nn.MaxPool2d(2), Residual(channels, channels)]
        self.stem = nn.Sequential(*pre)
        self.shape = nn.Sequential(Hourglass(depth, channels), _head(channels, channels, n_parts, dropout))
        self.parts_in = nn.Conv2d(n_parts, channels, 1)  # stage 1 sees the part maps
        self.appearance = nn.Sequential(Hourglass(app_depth, channels), _head(channels, channels, n_features, dropout))
        # prior > 0: learned logits (K, m, m) added before the softmax, started as bumps of that width at K spots
        self.prior = nn.Parameter(spot_logits(n_parts, map_dim, prior)) if prior > 0 else None
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        h = self.stem(images * 2.0 - 1.0)  # (B, C, m, m)
        with torch.autocast(images.device.type, enabled=False):  # part maps in fp32: they give the keypoints
            logits = self.shape(h.float())  # (B, K, m, m)
            maps = spatial_softmax(logits if self.prior is None else logits + self.prior)
        feats = self.appearance(h + self.parts_in(maps.to(h.dtype)))  # (B, n_features, m, m)
        return maps, feats
