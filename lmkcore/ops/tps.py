"""Thin-plate-spline views: a random smooth warp of each image, its sampling grid, and the maps that
carry points, part means and covariances between the original and the warped frame.

Convention (the workbook's, `ops.coords`: normalised (x, y) in [-1, 1], align_corners=True): a warp is
the *sampling map* T: the warped image at point p shows the original at T(p), and `grid` `(B, H, W, 2)`
is T at the pixel centres (what `F.grid_sample` takes). T is a thin-plate spline followed by a global
affine transform,

    T(p) = A (p + d(p)) + t,    d(p) = a_0 + a_1 p + sum_i w_i U(|p - c_i|^2),    U(r2) = r2 log r2,

with control points c_i `(B, M, 2)`, spline weights `coef` `(B, M + 3, 2)` = [w_1..w_M; a_0; a_1^T] and
`theta` `(B, 2, 3)` = [A | t]. Params are a dict of batch-first tensors ("theta", "control", "coef"), so
they collate in a DataLoader and slice per image; AutoLink's `warp.random_tps` dicts are params too (its
`tps_points` = `unmap_points` wherever its border clamp does not act). The directions:

    unmap_points(params, p)  warped frame -> original: T(p), analytic (keypoints found in a view)
    map_points(params, q)    original -> warped frame: T^-1(q), Newton iterations on T (labels into a view)
    jacobian(params, q)      d map_points / dq at original points q, (B, K, 2, 2): a covariance S of the
                             original maps to J S J^T in the view (`map_gaussians`); `sampling_jacobian`
                             is dT/dp (its determinant at the grid weighs Lorenz's moment mapping).

Presets (`TPS_PRESETS`) follow the method cards (shared/methods/*.md): `lorenz` (Lorenz et al. 2019, §6:
8 jittered control points, anisotropic zoom-in scale and rotation about random centres), `dundar`
(Dundar et al. 2020, §6: 10x10 grid with a 10 px margin at 128 px, +-2 px, rotation +-pi/8, per-axis
scale 1.05-1.15, +-10 px), `cheng` (the DVE warper of Cheng et al.'s few-shot head: 10x10 grid, Gaussian
spline weights sigma 5e-4, Gaussian scale / translation sigma 0.02, rotation sigma 2 degrees).

Why not kornia's TPS (`get_tps_transform` + `warp_image_tps`): it solves the same spline but composes no
global affine with it and gives no Jacobian and no inverse map, so it could only replace the image half;
and it is not faster. Measured once (batch 32, 2-core CPU shared with other jobs, so +-50 %): lorenz
(8 points) 307 ms here vs 509 ms kornia at 64 px, 660 vs 1123 ms at 128 px; dundar (100 points) 1.8 s vs
1.7 s at 64 px, 6.0 s vs 10.0 s at 128 px. Since then the pixel grid's spline basis is one `(N, M)` matrix
when the control points are shared (dundar, cheng) and is built by a matrix product otherwise: re-timed
dundar at 0.1 s (64 px) and 0.6-1.9 s (128 px, load-dependent).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .coords import full_precision, grid

Params = dict[str, Tensor]


# helpers
def _kernel(p: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """U(r2) = r2 log r2 and p - c between points `(B, N, 2)` and control points `(B, M, 2)`:
    `(B, N, M)` and `(B, N, M, 2)`."""
    diff = p[:, :, None, :] - c[:, None, :, :]  # (B, N, M, 2)
    r2 = diff.pow(2).sum(-1)
    return r2 * torch.log(r2.clamp_min(1e-12)), diff


def _basis(p: Tensor, c: Tensor) -> Tensor:
    """U(|p - c|^2) `(B, N, M)` through |p|^2 + |c|^2 - 2 p.c: no `(B, N, M, 2)` difference tensor, so a
    128 x 128 grid against 100 control points stays at B x 1.6 M numbers."""
    r2 = (p.pow(2).sum(-1)[:, :, None] + c.pow(2).sum(-1)[:, None, :] - 2.0 * p @ c.transpose(1, 2)).clamp_min(0.0)
    return r2 * torch.log(r2.clamp_min(1e-12))


def _batch(params: Params, p: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """theta, control, coef broadcast to the batch of `p` and to its (full-precision) dtype."""
    p = full_precision(p)
    b = max(p.shape[0], params["theta"].shape[0])
    c = params["control"]
    c = c[None] if c.dim() == 2 else c  # (M, 2): one set of control points for all images
    theta, c, coef = (x.to(p.device, p.dtype).expand(b, *x.shape[1:]) for x in (params["theta"], c, params["coef"]))
    return p.expand(b, *p.shape[1:]), theta, c, coef


def fit_spline(control: Tensor, shift: Tensor) -> Tensor:
    """Spline weights `(B, M + 3, 2)` of the d through `shift` `(B, M, 2)` at `control` `(B, M, 2)`:
    solves [[U, P], [P^T, 0]] [w; a] = [shift; 0] per image (Bookstein 1989)."""
    b, m, _ = control.shape
    u, _ = _kernel(control, control)  # (B, M, M)
    p = torch.cat([torch.ones_like(control[..., :1]), control], -1)  # (B, M, 3)
    lhs = torch.cat([torch.cat([u, p], 2), torch.cat([p.transpose(1, 2), control.new_zeros(b, 3, 3)], 2)], 1)
    rhs = torch.cat([shift, shift.new_zeros(b, 3, 2)], 1)  # (B, M + 3, 2)
    return torch.linalg.solve(lhs, rhs)


def identity_params(b: int, m: int = 4, *, device=None, dtype=torch.float32) -> Params:
    """`b` warps that change nothing (T(p) = p): the unwarped view of a pair."""
    lin = torch.tensor([-0.5, 0.5], device=device, dtype=dtype)
    c = torch.stack(torch.meshgrid(lin, lin, indexing="xy"), -1).reshape(1, 4, 2)[:, :m].expand(b, -1, -1)
    theta = torch.eye(2, 3, device=device, dtype=dtype).expand(b, 2, 3)
    return {"theta": theta.clone(), "control": c.clone(), "coef": torch.zeros(b, m + 3, 2, device=device, dtype=dtype)}


# the three maps
def unmap_points(params: Params, p: Tensor) -> Tensor:
    """Where points `p` `(B, N, 2)` of the warped frame come from in the original: T(p), `(B, N, 2)`."""
    shared = p.shape[0] == 1  # one set of points (a pixel grid) for every image
    p, theta, c, coef = _batch(params, p)
    with torch.autocast(p.device.type, enabled=False):
        if shared and bool((c == c[:1]).all()):  # the same control points too: one basis for all images
            u = _basis(p[:1], c[:1]).expand(c.shape[0], -1, -1)
        else:
            u = _basis(p, c)  # (B, N, M)
        q = p + u @ coef[:, :-3] + coef[:, None, -3] + p @ coef[:, -2:]  # (B, N, 2): p + d(p)
        return q @ theta[:, :, :2].transpose(1, 2) + theta[:, None, :, 2]


def sampling_jacobian(params: Params, p: Tensor) -> Tensor:
    """dT/dp `(B, N, 2, 2)` at warped-frame points `p` `(B, N, 2)` (analytic): A (I + dd/dp), with
    dU/dp = 2 (log r2 + 1)(p - c). Row i, column j: d T_i / d p_j."""
    p, theta, c, coef = _batch(params, p)
    m = c.shape[1]
    with torch.autocast(p.device.type, enabled=False):
        _, diff = _kernel(p, c)  # (B, N, M, 2)
        r2 = diff.pow(2).sum(-1, keepdim=True)
        du = 2.0 * (torch.log(r2.clamp_min(1e-12)) + 1.0) * diff  # (B, N, M, 2): dU_i / dp_j
        dd = torch.einsum("bnmj,bmi->bnij", du, coef[:, :m]) + coef[:, None, m + 1:].transpose(2, 3)  # (B, N, 2, 2)
        eye = torch.eye(2, device=p.device, dtype=p.dtype)
        return theta[:, None, :, :2] @ (eye + dd)


def map_points(params: Params, q: Tensor, iterations: int = 8) -> Tensor:
    """Where points `q` `(B, N, 2)` of the original appear in the warped frame: T^-1(q), `(B, N, 2)`.
    Newton's method on T from the affine part's inverse A^-1 (q - t); the spline is smooth and close to
    the identity, so a few steps reach float precision (the tests check the round trip)."""
    q = full_precision(q)
    _, theta, _, _ = _batch(params, q)
    with torch.autocast(q.device.type, enabled=False):
        a, t = theta[:, None, :, :2], theta[:, None, :, 2]
        p = torch.linalg.solve(a, (q - t)[..., None])[..., 0]  # (B, N, 2)
        for _ in range(iterations):
            step = torch.linalg.solve(sampling_jacobian(params, p), (unmap_points(params, p) - q)[..., None])
            p = p - step[..., 0]
        return p


def jacobian(params: Params, q: Tensor) -> Tensor:
    """d map_points / dq `(B, N, 2, 2)` at original points `q` `(B, N, 2)`: (dT/dp)^-1 at p = T^-1(q).
    A part at q with covariance S `(B, N, 2, 2)` appears in the view with covariance J S J^T."""
    return torch.linalg.inv(sampling_jacobian(params, map_points(params, q)))


def map_gaussians(params: Params, mu: Tensor, cov: Tensor) -> tuple[Tensor, Tensor]:
    """Parts of the original (means `(B, K, 2)`, covariances `(B, K, 2, 2)`) as they appear in the warped
    frame, to first order: (T^-1(mu), J cov J^T) with J = `jacobian` (exact for an affine warp)."""
    p = map_points(params, mu)
    j = torch.linalg.inv(sampling_jacobian(params, p))  # (B, K, 2, 2)
    return p, j @ full_precision(cov) @ j.transpose(-1, -2)


def sampling_grid(params: Params, h: int, w: int) -> Tensor:
    """T at the pixel centres of an `h` x `w` view: `(B, H, W, 2)`, for `F.grid_sample`."""
    g = grid(h, w, device=params["theta"].device).reshape(1, h * w, 2)  # one spline basis for all images
    return unmap_points(params, g).reshape(-1, h, w, 2)


def warp_with(images: Tensor, params: Params, padding: str = "border") -> tuple[Tensor, Tensor]:
    """`(B, C, H, W)` resampled by the warps (bilinear): (warped images, sampling grid `(B, H, W, 2)`).
    Sampled in fp32 (a bf16 grid would round positions near +-1 to 0.16 px at 80 px), returned in the
    images' dtype."""
    g = sampling_grid({k: v.to(images.device) for k, v in params.items()}, *images.shape[-2:])
    x = full_precision(images)
    with torch.autocast(images.device.type, enabled=False):
        out = F.grid_sample(x, g.to(x.dtype), mode="bilinear", padding_mode=padding, align_corners=True)
    return out.to(images.dtype), g


# presets and random warps
@dataclass(frozen=True)
class TpsPreset:
    """How random warps are drawn; lengths in normalised units (2 / 128 = one pixel at 128 px).

    Control points: `grid` x `grid` on [-(1 - margin), 1 - margin], or (grid = 0) Lorenz's 8 points
    (+-0.5, +-0.5) and (+-0.2, +-0.2); each moved by U(+-`jitter`). Spline: either each control point's
    image moves by U(+-`shift`) (`weights` = 0), or the spline weights are N(0, `weights`^2) directly (DVE).
    Global affine (after the spline): per-axis scale in [`scale`[0], `scale`[1]] (< 1 zooms in), rotation
    U(+-`rotate`) rad, each about a random centre U(+-`centre`), then a translation U(+-`translate`);
    with `normal`, scale is 1 + N(0, scale[1]^2), rotation N(0, rotate^2), translation N(0, translate^2).
    `padding` is grid_sample's padding mode for what the warp pulls in from outside the image."""

    grid: int = 0
    margin: float = 0.0
    jitter: float = 0.0
    shift: float = 0.0
    weights: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    rotate: float = 0.0
    centre: float = 0.0
    translate: float = 0.0
    normal: bool = False
    padding: str = "border"


_PX = 2.0 / 128  # one pixel of a 128 px image, in normalised units
TPS_PRESETS = {
    # Lorenz card §6: tps_scal 0.05, scal 0.8 +- 5 %, rot_scal 0.1, off_scal 0.15, control jitter 0.2
    "lorenz": TpsPreset(jitter=0.2, shift=0.05, scale=(0.8 * 0.95, 0.8 * 1.05), rotate=0.1, centre=0.15),
    # Dundar card §6 (128 px): 10 x 10 grid, 10 px margin, +-2 px, rot +-pi/8, scale 1.05-1.15, +-10 px
    "dundar": TpsPreset(grid=10, margin=10 * _PX, shift=2 * _PX, scale=(1.05, 1.15), rotate=math.pi / 8,
                        translate=10 * _PX),
    # Cheng card §5 (DVE WarperSingle): 10 x 10 grid, weights sigma 5e-4, scale / shift sigma 0.02, rot sigma 2 deg
    "cheng": TpsPreset(grid=10, weights=5e-4, scale=(1.0, 0.02), rotate=math.radians(2.0), translate=0.02, normal=True),
}


def preset_of(preset: str | TpsPreset) -> TpsPreset:
    if isinstance(preset, TpsPreset):
        return preset
    if preset not in TPS_PRESETS:
        raise ValueError(f"preset must be a TpsPreset or one of {sorted(TPS_PRESETS)}, got {preset!r}")
    return TPS_PRESETS[preset]


def random_params(b: int, preset: str | TpsPreset = "lorenz", *, device=None,
                  generator: torch.Generator | None = None) -> Params:
    """`b` random warps drawn by `preset` (on the generator's device, then moved to `device`)."""
    s = preset_of(preset)
    gdev = generator.device if generator is not None else device
    u = lambda *shape: torch.rand(*shape, device=gdev, generator=generator) * 2.0 - 1.0  # noqa: E731  U(-1, 1)
    n = lambda *shape: torch.randn(*shape, device=gdev, generator=generator)  # noqa: E731
    if s.grid:
        lin = torch.linspace(-1.0 + s.margin, 1.0 - s.margin, s.grid, device=gdev)
        c = torch.stack(torch.meshgrid(lin, lin, indexing="xy"), -1).reshape(1, -1, 2)
    else:
        c = torch.tensor([[x, y] for r in (0.5, 0.2) for x in (-r, r) for y in (-r, r)], device=gdev)[None]
    c = (c + s.jitter * u(b, c.shape[1], 2)).expand(b, -1, -1)  # (B, M, 2)
    m = c.shape[1]
    if s.weights:
        coef = torch.cat([n(b, m, 2) * s.weights, torch.zeros(b, 3, 2, device=gdev)], 1)
    else:
        coef = fit_spline(c, u(b, m, 2) * s.shift)  # (B, M + 3, 2)
    if s.normal:
        scale, rot, trans = 1.0 + n(b, 2) * s.scale[1], n(b) * s.rotate, n(b, 2) * s.translate
    else:
        lo, hi = s.scale
        scale, rot, trans = lo + (hi - lo) * (u(b, 2) + 1.0) / 2.0, u(b) * s.rotate, u(b, 2) * s.translate
    c1, c2 = u(b, 2) * s.centre, u(b, 2) * s.centre  # (B, 2): centres of the scaling and the rotation
    cos, sin = torch.cos(rot), torch.sin(rot)
    r = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], 1)  # (B, 2, 2)
    a = r * scale[:, None, :]  # R S
    # G(q) = R (S (q - c1) + c1 - c2) + c2 + t = R S q + R (c1 - S c1 - c2) + c2 + t
    t = (r @ (c1 - scale * c1 - c2)[..., None])[..., 0] + c2 + trans
    params = {"theta": torch.cat([a, t[..., None]], 2), "control": c.contiguous(), "coef": coef}
    return {k: v.to(device) for k, v in params.items()} if device is not None else params


def random_tps_views(images: Tensor, preset: str | TpsPreset = "lorenz", *,
                     generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Params]:
    """Each image `(B, C, H, W)` under its own random warp: (warped `(B, C, H, W)`, sampling grid
    `(B, H, W, 2)`, params for `map_points` / `unmap_points` / `jacobian`)."""
    params = random_params(images.shape[0], preset, device=images.device, generator=generator)
    warped, g = warp_with(images, params, preset_of(preset).padding)
    return warped, g, params
