"""Random photometric changes of images (the colour half of a TPS + colour view pair).

Keypoints that must agree between an image and a recoloured copy cannot lean on colour or
lighting, only on shape: the colour half of the part-based disentangling paper's view pairs
(card `lorenz_part_disentangling.md`), used by AutoLink's compact configuration through `jitter`
(the AutoLink paper itself uses no colour jitter).
"""
from __future__ import annotations

import torch
from torch import Tensor


def random_colour(images: Tensor, strength: float, generator: torch.Generator | None = None) -> Tensor:
    """`(B, 3, H, W)` in [0, 1], each image with its own saturation, contrast and brightness factors
    drawn from [1 - `strength`, 1 + `strength`] (and its channels mixed by up to `strength` / 2 towards
    a random colour cast); values stay in [0, 1]."""
    if strength <= 0:
        return images
    b = images.shape[0]
    u = torch.rand(b, 6, 1, 1, device=images.device, generator=generator, dtype=torch.float32) * 2.0 - 1.0
    u = (1.0 + strength * u).to(images.dtype)  # (B, 6, 1, 1) factors around 1
    sat, contrast, bright = u[:, 0:1], u[:, 1:2], u[:, 2:3]  # (B, 1, 1, 1) each
    cast = 1.0 + (u[:, 3:6] - 1.0) / 2.0  # (B, 3, 1, 1): per-channel gains within 1 +- strength / 2
    grey = images.mean(1, keepdim=True)  # (B, 1, H, W)
    x = grey + (images - grey) * sat
    mean = x.mean((1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    x = mean + (x - mean) * contrast
    return (x * bright * cast).clamp(0.0, 1.0)
