"""U-shaped generator fed part encodings at several resolutions (Lorenz et al. CVPR 2019).

Card `lorenz_part_disentangling.md`, section 3: decoding starts at 4 x 4 from the coarsest encoding;
each stage is a convolution (BN, ReLU) then a stride-2 transposed 4 x 4 convolution (ReLU), and its
output is concatenated with the encoding of the next finer size (part heats, and at coarse sizes the
splatted appearance: `ops.parts.encode_parts`). The card's 4 x 4 same-size convolutions are 3 x 3
here (an even kernel needs asymmetric padding); the final 6 x 6 convolution is 3 x 3 as well.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def generator_sizes(out_dim: int, start: int = 4) -> list[int]:
    """Resolutions the generator runs through, coarse to fine: `start, 2 start, ..., out_dim`."""
    n = math.log2(out_dim / start)
    if n < 1 or n != int(n):
        raise ValueError(f"out_dim / start must be a power of two >= 2; got out_dim={out_dim}, start={start}")
    return [start * 2**i for i in range(int(n) + 1)]


class PartGenerator(nn.Module):
    """Encodings `[(B, c_i, s_i, s_i)]` at `generator_sizes(out_dim)` -> image `(B, 3, out_dim, out_dim)` in [0, 1].

    `enc_channels[i]`: channels of the encoding at size i. The stage that leaves size s has width
    min(`max_width`, `base` * out_dim / s), so the paper's decoder is base 64, max_width 512
    (card: 512 at 4-8 px down to 64 at 256 px).
    """

    def __init__(self, enc_channels: list[int], out_dim: int, *, base: int = 64, max_width: int = 512):
        super().__init__()
        sizes = generator_sizes(out_dim)
        if len(enc_channels) != len(sizes):
            raise ValueError(f"enc_channels needs one entry per size {sizes}, got {len(enc_channels)}")
        self.sizes = sizes
        stages, cin = [], enc_channels[0]
        for s, c_next in zip(sizes[:-1], enc_channels[1:]):
            w = min(max_width, base * out_dim // s)
            stages.append(nn.Sequential(
                nn.Conv2d(cin, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
                nn.ConvTranspose2d(w, w, 4, stride=2, padding=1), nn.ReLU()))  # (B, w, 2s, 2s)
            cin = w + c_next
        self.stages = nn.ModuleList(stages)
        self.out = nn.Conv2d(cin, 3, 3, padding=1)

    def forward(self, encodings: list[Tensor]) -> Tensor:
        h = encodings[0]
        for stage, e in zip(self.stages, encodings[1:]):
            h = torch.cat([stage(h), e.to(h.dtype)], 1)
        return torch.sigmoid(self.out(h))
