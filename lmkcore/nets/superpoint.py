"""SuperPoint v1 (DeTone, Malisiewicz, Rabinovich 2018), inference only: the paper's bootstrap detector
(card `mallis_self_training.md` section 3). Its weights are MagicLeap's `superpoint_v1.pth`, which this
workbook never downloads: `load_superpoint(path)` takes a local file and fails clearly without one.

    encoder:    1 -> 64, 64 | pool | 64, 64 | pool | 128, 128 | pool | 128, 128  (3x3 convs, ReLU)
    detector:   3x3 -> 256, ReLU, 1x1 -> 65; softmax, dustbin dropped, 8x8 cells back to pixels
    descriptor: 3x3 -> 256, ReLU, 1x1 -> 256; L2-normalised
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SuperPoint(nn.Module):
    """Grey images `(B, 1, H, W)` in [0, 1], H and W multiples of 8 -> point probabilities `(B, 1, H, W)`
    and L2-normalised descriptors `(B, 256, H / 8, W / 8)`. Layer names are those of the v1 weights."""

    def __init__(self):
        super().__init__()
        chans = [(1, 64), (64, 64), (64, 64), (64, 64), (64, 128), (128, 128), (128, 128), (128, 128)]
        names = ["conv1a", "conv1b", "conv2a", "conv2b", "conv3a", "conv3b", "conv4a", "conv4b"]
        for n, (a, b) in zip(names, chans):
            setattr(self, n, nn.Conv2d(a, b, 3, padding=1))
        self.encoder = names
        self.convPa, self.convPb = nn.Conv2d(128, 256, 3, padding=1), nn.Conv2d(256, 65, 1)
        self.convDa, self.convDb = nn.Conv2d(128, 256, 3, padding=1), nn.Conv2d(256, 256, 1)

    def forward(self, grey: Tensor) -> tuple[Tensor, Tensor]:
        b, _, h, w = grey.shape
        if h % 8 or w % 8:
            raise ValueError(f"SuperPoint needs sides that are multiples of 8, got {h} x {w}")
        x = grey
        for i, n in enumerate(self.encoder):
            x = F.relu(getattr(self, n)(x))
            if i in (1, 3, 5):
                x = F.max_pool2d(x, 2)
        cells = torch.softmax(self.convPb(F.relu(self.convPa(x))), 1)[:, :64]  # (B, 64, H/8, W/8), dustbin dropped
        prob = F.pixel_shuffle(cells, 8)  # (B, 1, H, W)
        desc = F.normalize(self.convDb(F.relu(self.convDa(x))), dim=1)
        return prob, desc


def load_superpoint(path: str | os.PathLike) -> SuperPoint:
    """SuperPoint with the weights at `path` (a state dict, e.g. MagicLeap's superpoint_v1.pth), in eval mode.
    Nothing is downloaded: a missing file is an error that says where the weights come from."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"superpoint={str(path)!r}: no such file. SuperPoint's weights are not shipped or downloaded: put "
            "MagicLeap's superpoint_v1.pth (github.com/magicleap/SuperPointPretrainedNetwork) there, or leave "
            "superpoint empty for the weight-free bootstrap (detector='corners' or 'sift')")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = SuperPoint()
    net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    return net.eval()
