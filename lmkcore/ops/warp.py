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

from .coords import full_precision, grid


def resize(images: Tensor, size: int, antialias: bool = False) -> Tensor:
    """Images `(B, C, H, W)` at `size` x `size` (bilinear; `antialias` when shrinking an image to be compared
    or encoded); the same tensor if already that size."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)


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


# Thin-plate-spline warps (Thewlis et al. 2017, Zhang et al. 2018): a random smooth deformation on
# top of the similarity, so that equivariance ties keypoints to local content, not to the face as a whole.
# AutoLink's warp; the two-view methods' presets, inverse map and Jacobian are in `ops.tps`, which takes
# these dicts as its params too.
def _tps_kernel(p: Tensor, c: Tensor) -> Tensor:
    """U(r) = r^2 log r^2 between points `(B, N, 2)` and control points `(M, 2)`: `(B, N, M)`."""
    r2 = (p[..., :, None, :] - c).pow(2).sum(-1)
    return r2 * torch.log(r2.clamp_min(1e-12))


def random_tps(b: int, *, shift: float = 0.05, n: int = 5, rotate: float = 10.0, zoom: float = 0.3, device=None,
               generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """A random warp: output point p shows input point `A (p + d(p)) + t`, with `A, t` from
    `random_affine` and `d` the thin-plate spline through an `n x n` grid of control points whose
    interior ones move by N(0, `shift`^2) (normalised units) and whose border ones stay, so the warp
    shows no border either. A dict for `tps_points` / `warp_images_tps`: theta `(B, 2, 3)`,
    control `(M, 2)` (the same for every image), coef `(B, M + 3, 2)` (the spline's weights and affine part)."""
    theta = random_affine(b, rotate=rotate, zoom=zoom, device=device, generator=generator)
    lin = torch.linspace(-1.0, 1.0, n, device=device)
    c = torch.stack(torch.meshgrid(lin, lin, indexing="xy"), -1).reshape(n * n, 2)  # (M, 2)
    inner = (c.abs() < 1.0).all(-1, keepdim=True)  # (M, 1): border control points stay in place
    d = torch.randn(b, n * n, 2, device=device, generator=generator) * shift * inner  # (B, M, 2)
    # solve [[K, P], [P^T, 0]] [w; a] = [d; 0] for the spline through the shifts d at the control points
    m = n * n
    p = torch.cat([torch.ones_like(c[:, :1]), c], -1)  # (M, 3)
    lhs = torch.zeros(m + 3, m + 3, device=device)
    lhs[:m, :m], lhs[:m, m:], lhs[m:, :m] = _tps_kernel(c, c), p, p.T
    rhs = torch.cat([d, torch.zeros(b, 3, 2, device=device)], 1)  # (B, M + 3, 2)
    return {"theta": theta, "control": c, "coef": torch.linalg.solve(lhs, rhs)}


def tps_points(warp: dict[str, Tensor], p: Tensor) -> Tensor:
    """The input point each output point `p` `(B, N, 2)` (or `(1, N, 2)`, shared) shows:
    `A (p + d(p)) + t`, `(B, N, 2)`. For keypoints found in a warped image, this is where they
    should be in the original."""
    p = full_precision(p)  # these are keypoint positions
    c, coef, theta = warp["control"].to(p.dtype), warp["coef"].to(p.dtype), warp["theta"].to(p.dtype)
    with torch.autocast(p.device.type, enabled=False):
        basis = torch.cat([_tps_kernel(p, c), torch.ones_like(p[..., :1]), p], -1)  # (B, N, M + 3)
        q = (p + basis @ coef).clamp(-1.0, 1.0)  # inside the similarity's crop, so no border shows
        return q @ theta[:, :, :2].transpose(1, 2) + theta[:, None, :, 2]


def warp_images_tps(images: Tensor, warp: dict[str, Tensor]) -> Tensor:
    """`(B, C, H, W)` resampled by a `random_tps` warp (bilinear)."""
    b, _, h, w = images.shape
    g = grid(h, w, device=images.device, dtype=images.dtype).reshape(1, h * w, 2)  # one spline basis for all images
    src = tps_points(warp, g).reshape(b, h, w, 2).to(images.dtype)
    return F.grid_sample(images, src, mode="bilinear", padding_mode="zeros", align_corners=True)
