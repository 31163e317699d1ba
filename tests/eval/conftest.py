"""Synthetic annotations for the protocol tests (no images needed)."""
from __future__ import annotations

import pytest
import torch

from lmkcore.eval import Annotations


@pytest.fixture
def make_annotations():
    """`make_annotations(keypoints, visible=None, boxes=None, resolution=11, normalisation=...)`."""
    return _make_annotations


def _make_annotations(keypoints, visible=None, boxes=None, *, resolution: int = 11,
                     normalisation: str = "image_size") -> Annotations:
    """keypoints (N, J, 2) in [0, 1]; default all visible, boxes = the whole image."""
    kp = torch.as_tensor(keypoints, dtype=torch.float64)
    n, j = kp.shape[:2]
    visible = torch.ones(n, j, dtype=torch.bool) if visible is None else torch.as_tensor(visible, dtype=torch.bool)
    if boxes is None:
        boxes = torch.tensor([[0.0, 0.0, resolution - 1.0, resolution - 1.0]]).expand(n, 4)
    return Annotations(kp, visible, torch.as_tensor(boxes, dtype=torch.float64), torch.arange(n), resolution,
                       normalisation, "synthetic", [f"lm{i}" for i in range(j)])
