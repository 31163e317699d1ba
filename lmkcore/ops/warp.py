"""Random geometric warps of images and the matching map of keypoints (equivariance losses).

A warp is an affine `theta` `(B, 2, 3)` in the `F.affine_grid` convention (align_corners=True,
the workbook's normalised coordinates, `ops.coords`): output pixel p shows input point
`A p + t`, so an input keypoint q appears in the warped image at `A^-1 (q - t)`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def random_affine(b: int, *, rotate: float = 10.0, zoom: float = 0.3, device=None,
                  generator: torch.Generator | None = None) -> Tensor:
    """Random similarity warps `(B, 2, 3)` that zoom in and stay inside the image.

    Rotation within +-`rotate` degrees, zoom factor s in [1 - `zoom`, 1] (a crop of side s),
    and a shift that keeps the rotated crop inside the image, so the warped image shows no
    border: a border would tell the network the warp and let keypoints follow the frame
    instead of the object.
    """
    u = torch.rand(b, 4, device=device, generator=generator)  # (B, 4) in [0, 1]
    a = (u[:, 0] * 2.0 - 1.0) * math.radians(rotate)
    cos, sin = torch.cos(a), torch.sin(a)
    reach = cos.abs() + sin.abs()  # half-extent of a rotated unit square
    s = torch.minimum(1.0 - u[:, 1] * zoom, 1.0 / reach)
    room = (1.0 - s * reach).clamp_min(0.0)  # how far the crop can move and stay inside
    t = (u[:, 2:] * 2.0 - 1.0) * room[:, None]  # (B, 2)
    return torch.stack([torch.stack([s * cos, -s * sin, t[:, 0]], -1),
                        torch.stack([s * sin, s * cos, t[:, 1]], -1)], 1)


def warp_images(images: Tensor, theta: Tensor) -> Tensor:
    """`(B, C, H, W)` resampled by `theta` (bilinear, zeros outside)."""
    g = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=True)
    return F.grid_sample(images, g, mode="bilinear", padding_mode="zeros", align_corners=True)


def warp_points(kp: Tensor, theta: Tensor) -> Tensor:
    """Where keypoints `(B, K, 2)` of an image land in its warp by `theta`: `A^-1 (q - t)`."""
    a, t = theta[:, :, :2], theta[:, :, 2]
    return torch.linalg.solve(a[:, None], (kp - t[:, None])[..., None])[..., 0]
