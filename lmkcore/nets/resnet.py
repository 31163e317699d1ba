"""Torchvision ResNets from random initialisation, read out stage by stage (hypercolumns).

The contrastive-landmarks method (card `shared/methods/cheng_contrastive_landmarks.md`, sections 3-4)
trains a standard torchvision ResNet with MoCo and reads its conv2_x ... conv5_x outputs. Weights
are never downloaded (`weights=None`); BatchNorm may be `SplitBatchNorm2d`, the single-device
stand-in for MoCo's per-GPU BN (MoCo's own one-GPU demo does the same).

Example::

    net = resnet("resnet18", out_dim=128, bn_splits=4)
    c2, c3, c4, c5 = stages(net, torch.rand(8, 3, 64, 64))  # (8, 64, 16, 16) ... (8, 512, 2, 2)
    hc = hypercolumn([c2, c3, c4, c5], size=32)  # (8, 960, 32, 32)
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

# channels of conv2_x ... conv5_x
STAGE_CHANNELS = {"resnet18": (64, 128, 256, 512), "resnet34": (64, 128, 256, 512),
                  "resnet50": (256, 512, 1024, 2048), "resnet101": (256, 512, 1024, 2048)}


class SplitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose training statistics are computed over `splits` groups of the batch separately
    ("ghost" BN), as if each group sat on its own GPU; the running statistics are the groups' mean.
    Eval mode is plain BatchNorm. Group g holds the images b with b % splits == g; a batch that
    `splits` does not divide uses gcd(batch, splits) groups. The state dict is BatchNorm2d's."""

    def __init__(self, num_features: int, splits: int = 1, **kwargs):
        super().__init__(num_features, **kwargs)
        self.splits = splits

    def forward(self, x: Tensor) -> Tensor:
        s = math.gcd(x.shape[0], self.splits)
        if not self.training or s == 1:
            return super().forward(x)
        n, c, h, w = x.shape
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
        rm, rv = self.running_mean.repeat(s), self.running_var.repeat(s)  # (s C,): one copy per group
        y = F.batch_norm(x.reshape(n // s, c * s, h, w), rm, rv, self.weight.repeat(s), self.bias.repeat(s),
                         True, self.momentum if self.momentum is not None else 0.1, self.eps)
        with torch.no_grad():
            self.running_mean.copy_(rm.view(s, c).mean(0))
            self.running_var.copy_(rv.view(s, c).mean(0))
        return y.reshape(n, c, h, w)


def resnet(model: str, out_dim: int, *, bn_splits: int = 1, mlp: bool = False) -> nn.Module:
    """A torchvision ResNet (`model`: a key of STAGE_CHANNELS) from random (He) initialisation, its fc
    mapping the pooled conv5_x features to `out_dim` (MoCo's embedding; with `mlp`, MoCo v2's
    Linear-ReLU-Linear head). BatchNorm is `SplitBatchNorm2d(splits=bn_splits)`."""
    if model not in STAGE_CHANNELS:
        raise ValueError(f"model must be one of {sorted(STAGE_CHANNELS)}, got {model!r}")
    norm = functools.partial(SplitBatchNorm2d, splits=bn_splits)
    net = getattr(torchvision.models, model)(weights=None, num_classes=out_dim, norm_layer=norm)
    if mlp:
        d = net.fc.in_features
        net.fc = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, out_dim))
    return net


def stages(net: nn.Module, x: Tensor, depth: int = 4) -> list[Tensor]:
    """The outputs of conv2_x ... conv(1 + depth)_x of a torchvision ResNet for `x` (B, 3, H, W):
    `depth` tensors (B, C_i, H / 2^(i + 2), W / 2^(i + 2)), shallowest first."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))  # (B, 64, H/4, W/4)
    out = []
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4)[:depth]:
        x = layer(x)
        out.append(x)
    return out


def embed(net: nn.Module, c5: Tensor) -> Tensor:
    """MoCo's embedding of conv5_x features (B, C, h, w): global average pool, fc -> (B, out_dim)."""
    return net.fc(torch.flatten(net.avgpool(c5), 1))


def hypercolumn(maps: list[Tensor], size: int) -> Tensor:
    """Feature maps (B, C_i, h_i, w_i) bilinearly resized to `size` x `size` and stacked along channels:
    (B, sum C_i, size, size), in the order given (card section 4)."""
    return torch.cat([F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)
                      if m.shape[-2:] != (size, size) else m for m in maps], 1)
