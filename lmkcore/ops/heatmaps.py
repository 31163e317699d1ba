"""Spatial softmax, soft-argmax and Gaussian rendering (shared by every method).

Shapes: heatmaps `(B, K, H, W)`, keypoints `(B, K, 2)` normalised (x, y), see `ops.coords`.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .coords import full_precision, grid


def spatial_softmax(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """`(B, K, H, W)` logits -> probability maps that sum to 1 over each map."""
    b, k, h, w = logits.shape
    x = full_precision(logits)  # softmax in fp32 under AMP
    p = torch.softmax(x.reshape(b, k, h * w) / temperature, dim=-1)
    return p.reshape(b, k, h, w)


def spread_points(k: int, radius: float = 0.5) -> Tensor:
    """K points spread evenly over a disc (a sunflower spiral), `(K, 2)` normalised."""
    i = torch.arange(k, dtype=torch.float32) + 0.5
    r, a = radius * torch.sqrt(i / k), i * torch.pi * (3.0 - 5.0**0.5)
    return torch.stack([r * torch.cos(a), r * torch.sin(a)], -1)


def spot_logits(k: int, size: int, width: float) -> Tensor:
    """Logits `(K, size, size)` of K Gaussian bumps of std `width` (normalised units) at `spread_points(k)`:
    added to a detector's logits before the spatial softmax (a learned parameter), they start map k at its
    own spot, the same in every image, so that K maps do not begin on one feature."""
    return -((grid(size, size)[None] - spread_points(k)[:, None, None]) ** 2).sum(-1) / (2 * width**2)


def soft_argmax(heatmaps: Tensor) -> Tensor:
    """Expected position of each probability map: `(B, K, H, W) -> (B, K, 2)` (x, y) in [-1, 1].

    The differentiable keypoint read-out of AutoLink (32x32 maps), Lorenz and Dundar (64x64).
    Example: a map that is 1 at the top-left pixel and 0 elsewhere gives (-1, -1).
    """
    if heatmaps.dim() != 4:
        raise ValueError(f"soft_argmax expects (B, K, H, W), got {tuple(heatmaps.shape)}")
    _, _, h, w = heatmaps.shape
    p = full_precision(heatmaps)
    g = grid(h, w, device=p.device, dtype=p.dtype)  # (H, W, 2)
    with torch.autocast(p.device.type, enabled=False):  # keypoints in fp32 under AMP
        return torch.einsum("bkhw,hwc->bkc", p, g)


def soft_argmax_cov(heatmaps: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and covariance of each map: `(B, K, H, W) -> (B, K, 2), (B, K, 2, 2)`."""
    _, _, h, w = heatmaps.shape
    p = full_precision(heatmaps)
    g = grid(h, w, device=p.device, dtype=p.dtype)  # (H, W, 2)
    with torch.autocast(p.device.type, enabled=False):  # fp32 under AMP
        mu = torch.einsum("bkhw,hwc->bkc", p, g)
        d = g[None, None] - mu[:, :, None, None]  # (B, K, H, W, 2)
        cov = torch.einsum("bkhw,bkhwi,bkhwj->bkij", p, d, d)
    return mu, cov


def gaussian_maps(kp: Tensor, h: int, w: int, sigma: float) -> Tensor:
    """Isotropic Gaussian bumps `exp(-|p - mu|^2 / (2 sigma^2))` (sigma in normalised units).

    `(B, K, 2) -> (B, K, H, W)`, peak value 1 at each keypoint.
    """
    g = grid(h, w, device=kp.device, dtype=kp.dtype)  # (H, W, 2)
    d2 = ((g[None, None] - kp[:, :, None, None]) ** 2).sum(-1)  # (B, K, H, W)
    return torch.exp(-d2 / (2.0 * sigma**2))
