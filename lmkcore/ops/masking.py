"""Random block masking (AutoLink, card section 6)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def block_mask(b: int, size: int | tuple[int, int], block: int, missing: float, *,
               device=None, generator: torch.Generator | None = None) -> Tensor:
    """Bernoulli keep-mask on a `block x block` grid, nearest-upsampled: `(B, 1, H, W)` of {0, 1}.

    Each cell is hidden with probability `missing` (AutoLink: 16 x 16 cells, 80 % hidden).
    """
    if not 0.0 <= missing < 1.0:
        raise ValueError(f"missing must be in [0, 1), got {missing}")
    h, w = (size, size) if isinstance(size, int) else size
    keep = (torch.rand(b, 1, block, block, device=device, generator=generator) >= missing).float()
    return F.interpolate(keep, size=(h, w), mode="nearest")
