"""Differentiable line segments between keypoints: the edge map of AutoLink (card, section 3).

For every pair (i, j), i < j, each pixel gets `exp(-d^2 / thick)` where d is its distance to the
segment [p_i, p_j] (projection clamped to the ends), scaled by the pair's weight w_ij; the map is
the max over all pairs. Vectorised over pairs and pixels.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .coords import grid


def pair_index(k: int, device=None) -> tuple[Tensor, Tensor]:
    """Indices (i, j) of the K(K-1)/2 unordered pairs i < j."""
    i, j = torch.triu_indices(k, k, offset=1, device=device)
    return i, j


def segment_distance2(points: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Squared distance from points to segments.

    points `(P, 2)`, a and b `(B, E, 2)` -> `(B, E, P)`.
    """
    ab = b - a  # (B, E, 2)
    ap = points[None, None] - a[:, :, None]  # (B, E, P, 2)
    denom = (ab * ab).sum(-1, keepdim=True).clamp_min(1e-8)  # (B, E, 1)
    t = ((ap * ab[:, :, None]).sum(-1) / denom).clamp(0.0, 1.0)  # (B, E, P)
    closest = a[:, :, None] + t[..., None] * ab[:, :, None]  # (B, E, P, 2)
    return ((points[None, None] - closest) ** 2).sum(-1)


def edge_map(kp: Tensor, weights: Tensor, size: int | tuple[int, int], thick: float) -> Tensor:
    """Render keypoints `(B, K, 2)` linked by pair weights into one channel `(B, 1, H, W)`.

    weights: `(K(K-1)/2,)` or `(B, K(K-1)/2)` in the order of `pair_index`; thick: tau of
    `exp(-d^2 / tau)` in squared normalised units (AutoLink default 1e-3 at 128 px).
    """
    h, w = (size, size) if isinstance(size, int) else size
    b, k, _ = kp.shape
    i, j = pair_index(k, kp.device)
    pts = grid(h, w, device=kp.device, dtype=kp.dtype).reshape(-1, 2)  # (HW, 2)
    d2 = segment_distance2(pts, kp[:, i], kp[:, j])  # (B, E, HW)
    wts = weights if weights.dim() == 2 else weights[None]  # (B or 1, E)
    lines = torch.exp(-d2 / thick) * wts[..., None]  # (B, E, HW)
    return lines.amax(dim=1).reshape(b, 1, h, w)
