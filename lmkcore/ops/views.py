"""Two views of each image: a random thin-plate-spline warp plus a colour change each (`ops.tps`,
`ops.colour`), the view pairs of the part-based (Lorenz et al. 2019) and pose / appearance / background
(Dundar et al. 2020) methods. One implementation for both places a pair is made: a method calls
`two_views` on a batch inside its loss (on the GPU), and `data.pairs.TwoViews` calls it per item.

Lorenz: both views warped and recoloured (`two_views(x, "lorenz", "lorenz")`); Dundar: a recoloured but
unwarped copy and a warped clean copy (`two_views(x, "dundar", ("dundar", "none"), identity_first=True)`).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .colour import ColourJitter, adjust_colour, colour_of, colour_params
from .tps import Params, TpsPreset, identity_params, preset_of, random_params, warp_with


def two_views(images: Tensor, preset: str | TpsPreset = "lorenz",
              colour: str | ColourJitter | tuple = "lorenz", *, generator: torch.Generator | None = None,
              identity_first: bool = False) -> dict[str, Tensor | Params]:
    """Two random views of each image `(B, 3, H, W)` in [0, 1].

    colour: one jitter for both views or a pair (first view's, second view's). identity_first: the first
    view is not warped (its warp is the identity), only recoloured. Returns "view1", "view2" `(B, 3, H, W)`,
    "warp1", "warp2" (params for `tps.map_points` / `unmap_points` / `jacobian`: a keypoint q of the image
    is at `map_points(warp1, q)` in view 1) and "colour1", "colour2" `(B, 4)` (`colour.adjust_colour`'s
    parameters). Draws, in this order from `generator`: warp 1 (unless identity), warp 2, colour 1, colour 2.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"two_views: images must be (B, 3, H, W), got {tuple(images.shape)}")
    b = images.shape[0]
    spec = preset_of(preset)
    jitters = tuple(colour_of(c) for c in (colour if isinstance(colour, tuple) else (colour, colour)))
    if len(jitters) != 2:
        raise ValueError(f"two_views: colour must be one jitter or a pair, got {len(jitters)}")
    kw = dict(device=images.device, generator=generator)
    if identity_first:
        warps = [identity_params(b, device=images.device), random_params(b, spec, **kw)]
    else:
        warps = [random_params(b, spec, **kw), random_params(b, spec, **kw)]
    out: dict[str, Tensor | Params] = {}
    for v, (warp, jitter) in enumerate(zip(warps, jitters), 1):
        params = colour_params(b, jitter, **kw)  # (B, 4)
        warped = images if identity_first and v == 1 else warp_with(images, warp, spec.padding)[0]
        out[f"view{v}"] = adjust_colour(warped, params, jitter.additive_brightness)
        out[f"warp{v}"], out[f"colour{v}"] = warp, params
    return out
