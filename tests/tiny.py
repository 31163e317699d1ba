"""Tiny configurations and seeded builders that test modules import (conftest files only hold fixtures)."""
from __future__ import annotations

import torch

from lmkcore.methods import build
from lmkcore.profiles import COMPACT

# The tiniest AutoLink that still has every part (used wherever a test needs a method).
# (The paper's objective, `profiles.COMPACT`: the tests were written before the compact additions became
# AutoLinkConfig's defaults, and the tiny networks train faster without them.)
TINY_AUTOLINK = dict(COMPACT, n_parts=4, resolution=32, det_base=8, det_down=2, det_up=1, dec_base=8, dec_depth=2,
                     block=8, warmup=1)


def seeded_build(name: str, tiny: dict, **overrides):
    """The method `name` with the tiny config `tiny` (and `overrides`), initialised after `torch.manual_seed(0)`."""
    torch.manual_seed(0)
    return build(name, **{**tiny, **overrides})
