"""Differentiable line segments between keypoints: the edge map of AutoLink (card, section 3).

For every pair (i, j), i < j, each pixel gets `exp(-d^2 / thick)` where d is its distance to the
segment [p_i, p_j] (projection clamped to the ends), scaled by the pair's weight w_ij; the map is
the max over all pairs. Vectorised over pairs and pixels; the max is taken in log space,
`exp(-min_ij(d^2 / thick - log w_ij))`, so there is one exp per pixel, not one per pair and pixel,
and autograd sees only each pixel's winning pair.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .coords import full_precision, grid


def pair_index(k: int, device=None) -> tuple[Tensor, Tensor]:
    """Indices (i, j) of the K(K-1)/2 unordered pairs i < j."""
    i, j = torch.triu_indices(k, k, offset=1, device=device)
    return i, j


def _segment_distance2(px: Tensor, py: Tensor, ax: Tensor, ay: Tensor, bx: Tensor, by: Tensor) -> Tensor:
    """Squared distance from (px, py) to the segment [(ax, ay), (bx, by)], projection clamped to the
    ends; all arguments broadcast, coordinate by coordinate (no trailing axis of 2 is materialised)."""
    abx, aby = bx - ax, by - ay
    apx, apy = px - ax, py - ay
    t = ((apx * abx + apy * aby) / (abx * abx + aby * aby).clamp_min(1e-8)).clamp(0.0, 1.0)
    dx, dy = apx - t * abx, apy - t * aby
    return dx * dx + dy * dy


def segment_distance2(points: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Squared distance from points to segments (projection clamped to the segment ends).

    points `(P, 2)`, a and b `(B, E, 2)` -> `(B, E, P)`.
    """
    return _segment_distance2(points[:, 0], points[:, 1], a[..., 0:1], a[..., 1:2], b[..., 0:1], b[..., 1:2])


@torch.no_grad()
def _winning_pairs(points: Tensor, a: Tensor, b: Tensor, logw: Tensor, thick: float) -> Tensor:
    """Index `(B, P)` of the pair whose line is brightest at each point: argmin over E of
    d^2 - thick * log w, d^2 expanded as |p - a|^2 + t (t |ab|^2 - 2 (p - a).ab) so that the (B, E, P)
    products are two batched matmuls (no autograd: only the winners are drawn with it). In fp32 even
    under AMP: bf16 matmuls would lose the small distances to the expansion's cancellation."""
    with torch.autocast(a.device.type, enabled=False):
        points, a, b, logw = (full_precision(t) for t in (points, a, b, logw))
        ab = b - a  # (B, E, 2)
        l2 = (ab * ab).sum(-1, keepdim=True).clamp_min(1e-8)  # (B, E, 1)
        pt = points.T.expand(a.shape[0], 2, -1)  # (B, 2, P)
        s = torch.baddbmm(-(a * ab).sum(-1, keepdim=True), ab, pt)  # (p - a).ab  (B, E, P)
        pa2 = torch.baddbmm((a * a).sum(-1, keepdim=True) + (points * points).sum(-1), a, pt, alpha=-2.0)  # |p - a|^2
        t = (s / l2).clamp_(0.0, 1.0)  # projection onto the segment, clamped to its ends
        return pa2.addcmul_(t, t * l2 - 2 * s).sub_(thick * logw[..., None]).argmin(1)


def edge_map(kp: Tensor, weights: Tensor, size: int | tuple[int, int], thick: float) -> Tensor:
    """Render keypoints `(B, K, 2)` linked by pair weights into one channel `(B, 1, H, W)`.

    weights: `(K(K-1)/2,)` or `(B, K(K-1)/2)` in the order of `pair_index`; thick: tau of
    `exp(-d^2 / tau)` in squared normalised units (AutoLink default 1e-3 at 128 px).
    """
    h, w = (size, size) if isinstance(size, int) else size
    b, k, _ = kp.shape
    i, j = pair_index(k, kp.device)
    pts = grid(h, w, device=kp.device, dtype=kp.dtype).reshape(-1, 2)  # (HW, 2)
    wts = weights if weights.dim() == 2 else weights[None]  # (B or 1, E)
    logw = torch.log(wts.clamp_min(1e-30))  # (B or 1, E)
    # The max over pairs takes one segment per pixel, and only that one gets a gradient: find it among
    # all (B, E, HW) without autograd, then draw just the winners, (B, HW), with it.
    win = _winning_pairs(pts, kp[:, i], kp[:, j], logw, thick)  # (B, HW)
    a = kp[:, i].gather(1, win[..., None].expand(-1, -1, 2))  # (B, HW, 2): each pixel's segment
    c = kp[:, j].gather(1, win[..., None].expand(-1, -1, 2))
    d2 = _segment_distance2(pts[:, 0], pts[:, 1], a[..., 0], a[..., 1], c[..., 0], c[..., 1])  # (B, HW)
    score = d2 / thick - logw.expand(b, -1).gather(1, win)  # (B, HW): -log of the winning line's value
    return torch.exp(-score).reshape(b, 1, h, w)
