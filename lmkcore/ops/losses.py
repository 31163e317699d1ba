"""Reconstruction losses: the papers' VGG perceptual loss and weight-free stand-ins.

Images are `(B, 3, H, W)` in [0, 1]. `reconstruction_loss(kind)` picks one:
- "vgg16" / "vgg19": L1 (AutoLink) between ImageNet-VGG features at the papers' taps; needs the
  torchvision weights in the torch cache (never downloaded here), else a clear error.
- "pyramid" (default, weight-free): L1 on a Laplacian pyramid + (1 - SSIM) + image-gradient L1,
  a multi-scale, structure-sensitive stand-in that trains well on a CPU.
- "l1": plain pixel L1 (a baseline for ablations).

Also the separation term of the compact recipes (`separation_loss`: keypoints kept apart), and the
methods' check that their keypoints carry the reconstruction (`loss_gain`).
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .edges import pair_index

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# Layer cut points of torchvision's vgg.features (relu1_2, relu2_2, relu3_3/3_4, relu4_3/4_4).
_TAPS = {"vgg16": (4, 9, 16, 23), "vgg19": (4, 9, 18, 27)}


def _blur_down(x: Tensor) -> Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=x.device, dtype=x.dtype) / 16.0
    k2 = (k[:, None] * k[None, :]).expand(x.shape[1], 1, 5, 5)
    x = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), k2, groups=x.shape[1])
    return x[..., ::2, ::2]


def laplacian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """Band-pass levels (finest first) and the low-pass residual last."""
    out = []
    for _ in range(levels - 1):
        down = _blur_down(x)
        up = F.interpolate(down, size=x.shape[-2:], mode="bilinear", align_corners=False)
        out.append(x - up)
        x = down
    out.append(x)
    return out


def ssim(x: Tensor, y: Tensor, window: int = 7) -> Tensor:
    """Mean structural similarity with a box window (per image, `(B,)`)."""
    c1, c2 = 0.01**2, 0.03**2
    pool = lambda t: F.avg_pool2d(t, window, 1, window // 2, count_include_pad=False)  # noqa: E731
    mx, my = pool(x), pool(y)
    vx, vy, cxy = pool(x * x) - mx**2, pool(y * y) - my**2, pool(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


def image_gradients(x: Tensor) -> tuple[Tensor, Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


class PyramidLoss(nn.Module):
    """Weight-free perceptual stand-in: Laplacian-pyramid L1 + (1 - SSIM) + gradient L1."""

    def __init__(self, levels: int = 4, w_ssim: float = 1.0, w_grad: float = 1.0):
        super().__init__()
        self.levels, self.w_ssim, self.w_grad = levels, w_ssim, w_grad

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        levels = min(self.levels, max(1, int(torch.log2(torch.tensor(min(x.shape[-2:]) / 4.0)).item()) + 1))
        pyr = sum((a - b).abs().mean() * 2.0**i
                  for i, (a, b) in enumerate(zip(laplacian_pyramid(x, levels), laplacian_pyramid(y, levels))))
        gx, gy = image_gradients(x)
        hx, hy = image_gradients(y)
        grad = (gx - hx).abs().mean() + (gy - hy).abs().mean()
        return pyr + self.w_ssim * (1.0 - ssim(x, y)).mean() + self.w_grad * grad


def loss_gain(own: Tensor, other: Tensor) -> float:
    """% by which a reconstruction loss rises from `own` (the decoder given the image's own keypoints) to
    `other` (given another image's). Near 0, the decoder ignores the keypoints and they get no signal."""
    return float(100 * (other - own) / own.clamp_min(1e-12))


def separation_loss(kp: Tensor, sigma: float) -> Tensor:
    """Mean over images and keypoint pairs of exp(-d^2 / (2 sigma^2)), `(B, K, 2) -> ()`: near 1 when two
    keypoints share a spot, near 0 once every pair is a few sigma apart (Zhang et al. 2018's separation
    prior; the compact recipes' guard against K keypoints collapsing onto one feature)."""
    i, j = pair_index(kp.shape[1], kp.device)
    d2 = (kp[:, i] - kp[:, j]).pow(2).sum(-1)  # (B, K(K-1)/2)
    return torch.exp(-d2 / (2 * sigma**2)).mean()


class L1Loss(nn.Module):
    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return (x - y).abs().mean()


class VGGPerceptualLoss(nn.Module):
    """Sum over taps of mean |phi(x) - phi(y)| with a frozen ImageNet VGG (AutoLink: VGG-16, L1).

    `weights_path` or the torch hub cache must hold torchvision's VGG weights; nothing is
    downloaded.
    """

    def __init__(self, arch: str = "vgg16", weights_path: str | None = None, resize: int | None = 224):
        super().__init__()
        import torchvision

        if arch not in _TAPS:
            raise ValueError(f"arch must be one of {sorted(_TAPS)}, got {arch!r}")
        path = weights_path or _cached_vgg_weights(arch)
        net = getattr(torchvision.models, arch)(weights=None)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        taps, feats = _TAPS[arch], net.features.eval()
        self.blocks = nn.ModuleList(feats[a:b] for a, b in zip((0,) + taps[:-1], taps))
        for p in self.parameters():
            p.requires_grad_(False)
        self.resize = resize
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = torch.cat([x, y]).sub(self.mean).div(self.std)
        if self.resize:
            h = F.interpolate(h, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        loss = h.new_zeros(())
        for block in self.blocks:
            h = block(h)
            a, b = h.chunk(2)
            loss = loss + (a - b).abs().mean()
        return loss


def _cached_vgg_weights(arch: str) -> str:
    import torchvision

    url = getattr(torchvision.models, f"VGG{arch[3:]}_Weights").IMAGENET1K_V1.url
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{arch} perceptual loss needs ImageNet weights at {path} (or pass weights_path); "
            "this workbook never downloads them. Use loss='pyramid' (weight-free) instead.")
    return path


def reconstruction_loss(kind: str = "pyramid", ssim: float = 1.0, **kwargs) -> nn.Module:
    """Build a reconstruction loss by name: 'pyramid', 'l1', 'vgg16' or 'vgg19'; `ssim` weights the
    pyramid loss's (1 - SSIM) term, which the other losses do not have."""
    if kind == "pyramid":
        return PyramidLoss(w_ssim=ssim, **kwargs)
    if ssim != 1.0:
        raise ValueError(f"ssim={ssim} weights the pyramid loss's SSIM term; loss {kind!r} has none")
    if kind == "l1":
        return L1Loss()
    if kind in _TAPS:
        return VGGPerceptualLoss(kind, **kwargs)
    raise ValueError(f"loss must be 'pyramid', 'l1', 'vgg16' or 'vgg19', got {kind!r}")
