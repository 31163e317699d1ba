"""Random photometric changes of images (the colour half of a TPS + colour view pair).

Keypoints that must agree between an image and a recoloured copy cannot lean on colour or
lighting, only on shape: the colour half of the part-based disentangling paper's view pairs
(card `lorenz_part_disentangling.md`), used by AutoLink's compact configuration through `jitter`
(the AutoLink paper itself uses no colour jitter). `random_colour` is AutoLink's compact jitter;
`colour_jitter` / `adjust_colour` are torchvision's brightness / contrast / saturation / hue, batched with
per-image parameters, and `COLOUR_PRESETS` the papers' strengths.

Not kornia's `ColorJitter` (0.9): the same operations at the same speed (measured once, batch 32 on the
shared 2-core CPU: 275 ms here vs 273 ms kornia at 64 px, 883 vs 745 ms at 128 px), but it draws from
torch's global random state (no `generator` argument), so views could not be made deterministic per
(seed, index) without reseeding the process; here a generator is passed and the `(B, 4)` parameters come
back for the data set item to carry.
"""
from __future__ import annotations

from dataclasses import dataclass

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


# Colour jitter with torchvision's semantics, batched: each image its own brightness, contrast, saturation
# and hue, applied in that fixed order (torchvision draws a random order per call; kornia's ColorJitter
# keeps this one). Parameters `(B, 4)` travel with the views so a pair can be re-made exactly.
@dataclass(frozen=True)
class ColourJitter:
    """Factors drawn from U[max(0, 1 - v), 1 + v] for brightness, contrast and saturation, a hue shift
    from U[-hue, hue] (fraction of the colour circle, at most 0.5); `additive_brightness` draws an offset
    from U[-brightness, brightness] instead (TensorFlow's `random_brightness`, as Lorenz et al. use)."""

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    additive_brightness: bool = False

    def __post_init__(self):
        if min(self.brightness, self.contrast, self.saturation, self.hue) < 0 or self.hue > 0.5:
            raise ValueError(f"ColourJitter: strengths must be >= 0 and hue <= 0.5, got {self}")


COLOUR_PRESETS = {
    "none": ColourJitter(),
    # Lorenz card §6 (`augm`): contrast x U(1 +- 0.5), brightness + U(+-0.3), saturation x U(1 +- 0.1), hue +-0.3
    "lorenz": ColourJitter(brightness=0.3, contrast=0.5, saturation=0.1, hue=0.3, additive_brightness=True),
    # Dundar card §2: ColorJitter(brightness 0.4, contrast 0.4, saturation 0.4, hue 0.3) on the shape input
    "dundar": ColourJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.3),
    # Cheng card §3: ColorJitter(0.4, 0.4, 0.4), no hue
    "cheng": ColourJitter(brightness=0.4, contrast=0.4, saturation=0.4),
}
IDENTITY_COLOUR = (1.0, 1.0, 1.0, 0.0)  # brightness, contrast, saturation factors and hue shift that change nothing


def colour_of(colour: str | ColourJitter) -> ColourJitter:
    if isinstance(colour, ColourJitter):
        return colour
    if colour not in COLOUR_PRESETS:
        raise ValueError(f"colour must be a ColourJitter or one of {sorted(COLOUR_PRESETS)}, got {colour!r}")
    return COLOUR_PRESETS[colour]


def colour_params(b: int, colour: str | ColourJitter, *, device=None,
                  generator: torch.Generator | None = None) -> Tensor:
    """`(B, 4)` random (brightness, contrast, saturation, hue) per image (drawn on the generator's device)."""
    j = colour_of(colour)
    gdev = generator.device if generator is not None else device
    u = torch.rand(b, 4, device=gdev, generator=generator) * 2.0 - 1.0  # (B, 4) in [-1, 1]
    strength = torch.tensor([j.brightness, j.contrast, j.saturation, j.hue], device=gdev)
    base = torch.tensor([0.0 if j.additive_brightness else 1.0, 1.0, 1.0, 0.0], device=gdev)
    p = base + u * strength
    p[:, 1:3] = p[:, 1:3].clamp_min(0.0)
    if not j.additive_brightness:
        p[:, 0] = p[:, 0].clamp_min(0.0)
    return p.to(device) if device is not None else p


def _grey(x: Tensor) -> Tensor:
    """ITU-R 601 luma `(B, 1, H, W)` of `(B, 3, H, W)`, with torchvision's 0.2989 for red (`rgb_to_grayscale`)."""
    return 0.2989 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def shift_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue of `(B, 3, H, W)` in [0, 1] by `shift` `(B,)` (fraction of the circle) in HSV,
    keeping saturation and value (torchvision's `adjust_hue`)."""
    v, _ = x.max(1)  # (B, H, W)
    lo, _ = x.min(1)
    c = v - lo  # chroma
    s = c / v.clamp_min(1e-12)
    safe = c.clamp_min(1e-12)
    r, g, b = x.unbind(1)
    h = torch.where(v == r, (g - b) / safe, torch.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = torch.where(c > 0, h, torch.zeros_like(h)) / 6.0  # (B, H, W) in [-1/6, 1)
    h = torch.remainder(h + shift.to(x.dtype)[:, None, None], 1.0) * 6.0
    n = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype)[None, :, None, None]  # R, G, B sectors
    k = torch.remainder(n + h[:, None], 6.0)  # (B, 3, H, W)
    return v[:, None] - (v * s)[:, None] * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


def adjust_colour(images: Tensor, params: Tensor, additive_brightness: bool = False) -> Tensor:
    """`(B, 3, H, W)` in [0, 1] with per-image `params` `(B, 4)` = brightness, contrast, saturation factors
    and hue shift (`IDENTITY_COLOUR` changes nothing), each step clamped to [0, 1] as torchvision does:
    brightness x f (or + f), contrast blends towards the image's mean luma, saturation towards each pixel's
    luma, hue rotates in HSV."""
    if images.dim() != 4 or images.shape[1] != 3 or params.shape != (images.shape[0], 4):
        raise ValueError(f"adjust_colour: images (B, 3, H, W) and params (B, 4), got {tuple(images.shape)} "
                         f"and {tuple(params.shape)}")
    f = params.to(images.dtype)[:, :, None, None, None]  # (B, 4, 1, 1, 1)
    x = (images + f[:, 0] if additive_brightness else images * f[:, 0]).clamp(0.0, 1.0)
    mean = _grey(x).mean((1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    x = (f[:, 1] * x + (1.0 - f[:, 1]) * mean).clamp(0.0, 1.0)
    x = (f[:, 2] * x + (1.0 - f[:, 2]) * _grey(x)).clamp(0.0, 1.0)
    if bool((params[:, 3] != 0).any()):
        x = shift_hue(x, params[:, 3]).clamp(0.0, 1.0)
    return x


def colour_jitter(images: Tensor, colour: str | ColourJitter, *,
                  generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Each image of `(B, 3, H, W)` in [0, 1] recoloured by its own random parameters: (images, params `(B, 4)`)."""
    j = colour_of(colour)
    params = colour_params(images.shape[0], j, device=images.device, generator=generator)
    return adjust_colour(images, params, j.additive_brightness), params
