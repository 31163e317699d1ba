"""Parts: statistics of part maps, part maps rendered from statistics, appearance pooled under parts.

The shared machinery of the part-based methods: Lorenz et al., "Unsupervised Part-Based
Disentangling of Object Shape and Appearance", CVPR 2019 (card `lorenz_part_disentangling.md`,
sections 3 and 5) and Dundar et al. 2020 (card `dundar_pose_appearance_background.md`), which both
summarise each of K softmax part maps by a mean and a covariance, render heavy-tailed part heats
from them, and splat per-part appearance vectors onto those heats.

Shapes: part maps `(B, K, H, W)` (each sums to 1), means `(B, K, 2)` normalised (x, y) in [-1, 1]
(`ops.coords`: the card's code works in (y, x); here everything is (x, y)), covariances and
precision factors `(B, K, 2, 2)` in normalised units, appearance `(B, K, C)`.

Example: a part map that is a Gaussian of covariance S centred at m returns (m, S) from
`part_statistics` (up to the grid's discretisation), and `render_parts(m, precision_factor(S, 1))`
is 1 / (1 + Mahalanobis(u, m)^2), which is 0.5 at one standard deviation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .coords import full_precision, grid
from .heatmaps import soft_argmax_cov
from .tps import sampling_jacobian, unmap_points


# statistics of part maps

def part_statistics(maps: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and covariance of each probability map: `(B, K, H, W) -> (B, K, 2), (B, K, 2, 2)`.

    mu_k = sum_u p_k(u) u, Sigma_k = sum_u p_k(u) (u - mu_k)(u - mu_k)^T (card section 3,
    `part_map_to_mu_L_inv`), on the workbook's linspace(-1, 1) pixel-centre grid.
    """
    if maps.dim() != 4:
        raise ValueError(f"part_statistics expects maps (B, K, H, W), got {tuple(maps.shape)}")
    return soft_argmax_cov(maps)


def precision_factor(cov: Tensor, scale: float = 0.8, eps: float = 1e-6) -> Tensor:
    """The card's precision factor A = scale * L^-1 of a covariance, `(..., 2, 2) -> (..., 2, 2)`.

    With L = [[a, 0], [b, c]] the Cholesky factor of Sigma (a = sqrt(S_00), b = S_10 / a,
    c = sqrt(S_11 - b^2)), L^-1 = 1 / (a c) [[c, 0], [-b, a]], so ||A d||^2 = scale^2 d^T Sigma^-1 d:
    heats rendered with A fall off with the part's own extent and orientation. The paper's `L_inv_scal`
    is 0.8. `eps` keeps a collapsed part (Sigma -> 0) finite.
    """
    s = full_precision(cov)
    a = (s[..., 0, 0] + eps).sqrt()
    b = s[..., 1, 0] / a
    c = (s[..., 1, 1] - b * b).clamp_min(0.0).add(eps).sqrt()
    zero = torch.zeros_like(a)
    inv = torch.stack([torch.stack([c, zero], -1), torch.stack([-b, a], -1)], -2)  # (..., 2, 2)
    return inv * (scale / (a * c))[..., None, None]


# part heats rendered from statistics

def render_parts(mu: Tensor, precision: Tensor | float, h: int, w: int) -> Tensor:
    """Heavy-tailed part heats H_k(u) = 1 / (1 + ||A_k (u - mu_k)||^2), `(B, K, 2) -> (B, K, H, W)`.

    `precision`: the factors A_k `(B, K, 2, 2)` (card `--covariance`, from `precision_factor`) or a
    number s for the circular A = s I (the card's default 10). Peak value 1 at mu_k.
    """
    mu = full_precision(mu)
    d = grid(h, w, device=mu.device, dtype=mu.dtype)[None, None] - mu[:, :, None, None]  # (B, K, H, W, 2)
    if isinstance(precision, Tensor):
        d = torch.einsum("bkij,bkhwj->bkhwi", full_precision(precision), d)
    else:
        d = d * float(precision)
    return 1.0 / (1.0 + d.pow(2).sum(-1))


def normalise_parts(heats: Tensor) -> Tensor:
    """H_k / (1 + sum_j H_j), `(B, K, H, W) -> (B, K, H, W)`: where parts overlap they share the pixel,
    and the weights sum to less than 1 everywhere (background keeps the rest). Lorenz and Dundar both
    splat appearance with these weights."""
    return heats / (1.0 + heats.sum(1, keepdim=True))


def splat(heats: Tensor, appearance: Tensor) -> Tensor:
    """Appearance vectors painted onto their parts: `(B, K, H, W), (B, K, C) -> (B, C, H, W)`,
    sum_k normalise_parts(H)_k f_k (card section 3, `feat_mu_to_enc`)."""
    return torch.einsum("bkhw,bkc->bchw", normalise_parts(heats), appearance.to(heats.dtype))


def encode_parts(mu: Tensor, precision: Tensor | float, appearance: Tensor, sizes: list[int],
                 feature_levels: int) -> list[Tensor]:
    """The generator's input at each resolution in `sizes` (coarse to fine): the K part heats, and at the
    `feature_levels` coarsest sizes also the splatted appearance, `[(B, K [+ C], s, s) for s in sizes]`."""
    out = []
    for i, s in enumerate(sizes):
        heats = render_parts(mu, precision, s, s)  # (B, K, s, s)
        out.append(torch.cat([heats, splat(heats, appearance)], 1) if i < feature_levels else heats)
    return out


# appearance under part maps

def pool_appearance(features: Tensor, maps: Tensor) -> Tensor:
    """Per-part appearance f_k = sum_u p_k(u) F(u): `(B, C, h, w), (B, K, H, W) -> (B, K, C)`.

    The maps sum to 1, so f_k is the feature averaged over part k. Features at another size than the
    maps are resized to the maps' size first (bilinear).
    """
    if features.shape[-2:] != maps.shape[-2:]:
        features = F.interpolate(features, size=maps.shape[-2:], mode="bilinear", align_corners=False)
    return torch.einsum("bchw,bkhw->bkc", features, maps.to(features.dtype))


def foreground_mask(mu: Tensor, h: int, w: int, radius: float = 0.1, floor: float = 0.2) -> Tensor:
    """The card's reconstruction weighting (section 5), `(B, K, 2) -> (B, 1, H, W)` summing to 1 per image:
    M(u) = clip(sum_k 1 / (1 + ||(u - mu_k) / radius||^2), 0, 1), zeroed below `floor`, normalised.
    No gradient flows to `mu` (the card's stop-gradient)."""
    m = render_parts(mu.detach(), 1.0 / radius, h, w).sum(1, keepdim=True).clamp(0.0, 1.0)  # (B, 1, H, W)
    m = torch.where(m < floor, torch.zeros_like(m), m)
    return m / m.sum((2, 3), keepdim=True).clamp_min(1e-8)


def masked_pixel_loss(output: Tensor, target: Tensor, mu: Tensor, l1: bool = False) -> Tensor:
    """The part-based card's reconstruction loss (section 5): squared error (absolute with `l1`) summed over
    channels and the `foreground_mask` of the means `mu`, batch mean. Parts gathered on one spot are asked to
    rebuild only that spot. `(B, C, H, W), (B, C, H, W), (B, K, 2) -> ()`."""
    err = (output.float() - target.float()).abs() if l1 else (output.float() - target.float()).pow(2)
    return (foreground_mask(mu, *output.shape[-2:]) * err).sum((1, 2, 3)).mean()


def part_layout(mu: Tensor, cov: Tensor) -> dict[str, Tensor]:
    """How the parts lie in each image, in % of the image side: `spread`, the RMS distance of the K means
    from their centroid, and `size`, a part's RMS standard deviation, sqrt(trace(Sigma) / 2), averaged over
    parts. Parts that tile an object have a spread larger than their size; parts that collapsed onto one
    broad blob (every map the same) have a spread near 0 and a large size. `(B, K, 2), (B, K, 2, 2) -> (B,)`
    each (normalised coordinates span 2)."""
    mu, cov = full_precision(mu), full_precision(cov)
    spread = (mu - mu.mean(1, keepdim=True)).pow(2).sum(-1).mean(1).sqrt()
    size = (cov.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(0) / 2).sqrt().mean(1)
    return {"spread": 50 * spread, "size": 50 * size}


def layout_diagnostics(mu: Tensor, cov: Tensor) -> dict[str, float]:
    """The part-based methods' diagnostics `part_spread` and `part_size`: `part_layout` averaged over the
    batch (a spread far below the size: the parts collapsed onto one blob)."""
    layout = part_layout(mu, cov)
    return {"part_spread": float(layout["spread"].mean()), "part_size": float(layout["size"].mean())}


# equivariance: statistics of a warped view expressed in the original frame

def transport_statistics(mu: Tensor, cov: Tensor, warp: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Part statistics of a warped view re-expressed in the original frame, to first order:
    mu' = T(mu), Sigma' = J Sigma J^T with J = dT/du at mu (card section 5's equivariance, with the
    part's moments carried through the warp's local linearisation instead of the card's re-integration
    of the sampling grid). `warp`: the view's thin-plate-spline params (`ops.tps`: T = `unmap_points`,
    J = `sampling_jacobian`, analytic). `(B, K, 2), (B, K, 2, 2) -> same`."""
    mu = full_precision(mu)
    j = sampling_jacobian(warp, mu.detach())  # a property of the warp at the part, not a path for gradients
    return unmap_points(warp, mu), j @ full_precision(cov) @ j.transpose(-1, -2)


def equivariance_losses(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> tuple[Tensor, Tensor]:
    """The card's two equivariance terms between two views' statistics in a common frame (section 5):
    mean of (mu1 - mu2)^2 over coordinates (`c_trans`), and mean over parts of
    sqrt(||Sigma1 - Sigma2||_F^2 + 1e-6) (`c_precision_trans`). Scalars."""
    means = (mu1 - mu2).pow(2).mean()
    covs = ((cov1 - cov2).pow(2).sum((-1, -2)) + 1e-6).sqrt().mean()
    return means, covs
