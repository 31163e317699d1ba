"""The one coordinate convention of the workbook, and converters to everything else.

Keypoints inside the package are **normalised (x, y) in [-1, 1]**: -1 and +1 are the centres of
the first and last pixel of a side (the `align_corners=True` convention of `grid_sample`), x runs
left to right, y top to bottom. Stores keep pixels (x, y) of the stored image; evaluation uses
[0, 1]. Convert only with the functions below.
"""
from __future__ import annotations

import torch
from torch import Tensor


def grid(h: int, w: int, *, device=None, dtype=torch.float32) -> Tensor:
    """Normalised pixel-centre grid, `(H, W, 2)` with `[..., 0] = x`, `[..., 1] = y` in [-1, 1]."""
    ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)


def full_precision(x: Tensor) -> Tensor:
    """`x` in fp32 (fp64 stays fp64): keypoint positions and their arithmetic stay out of AMP's bf16,
    which rounds a position near +-1 to 2^-8 (0.16 px at 80 px)."""
    return x if x.dtype == torch.float64 else x.float()


def _scale(size: tuple[int, int] | int, like: Tensor) -> Tensor:
    h, w = (size, size) if isinstance(size, int) else size
    return torch.tensor([w - 1, h - 1], dtype=like.dtype, device=like.device)


def pixels_to_norm(kp: Tensor, size: tuple[int, int] | int) -> Tensor:
    """`(..., 2)` pixel (x, y) of an image of `size` = (H, W) -> normalised [-1, 1]."""
    return kp / _scale(size, kp) * 2.0 - 1.0


def norm_to_pixels(kp: Tensor, size: tuple[int, int] | int) -> Tensor:
    """`(..., 2)` normalised [-1, 1] (x, y) -> pixel (x, y) of an image of `size` = (H, W)."""
    return (kp + 1.0) * 0.5 * _scale(size, kp)


def norm_to_unit(kp: Tensor) -> Tensor:
    """Normalised [-1, 1] -> [0, 1] (what the regression protocol consumes)."""
    return (kp + 1.0) * 0.5


def unit_to_norm(kp: Tensor) -> Tensor:
    """[0, 1] -> normalised [-1, 1]."""
    return kp * 2.0 - 1.0
