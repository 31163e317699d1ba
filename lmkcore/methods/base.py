"""What a method is to the rest of the workbook.

A method is an `nn.Module` with a config dataclass, a loss on a batch, and a keypoint read-out.
The trainer, the evaluation protocol and the inspector use nothing else:

    loss(batch)        -> (scalar loss, {name: detached scalar tensor} logs), batch["image"] (B, 3, H, W) in [0, 1]
    keypoints(images)  -> (B, K, 2) normalised (x, y) in [-1, 1]  (see `lmkcore.ops.coords`)
    visuals(images)    -> {layer: tensor} for the layers in `layers` (inspector, figures)
    optimizers(steps)  -> (optimizer, scheduler or None)
    diagnostics(images) -> {name: float}: optional checks of what the model relies on (evaluation reports them)

Logs stay tensors: the trainer converts them only on logging steps (one device sync there, not per step).
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch
from torch import Tensor, nn


@dataclasses.dataclass
class WarmupCosine:
    """Learning-rate factor for `LambdaLR`: linear warm-up over `warm` steps, then a cosine to 0 at `steps`.

    An object rather than a lambda so that `LambdaLR.state_dict` saves its horizon: the trainer shortens
    `steps` to the steps that fit a wall-clock cap (`TrainConfig.max_minutes`) and a resumed run keeps it.
    """

    warm: int
    steps: int

    def __call__(self, s: int) -> float:
        return min(1.0, (s + 1) / self.warm) * 0.5 * (1 + math.cos(math.pi * min(s, self.steps) / self.steps))


class Method(nn.Module):
    name: ClassVar[str]
    config_class: ClassVar[type]
    # Layers the inspector may show: "heatmaps" (B, K, h, w), "graph" (K, K), "masked" and
    # "reconstruction" (B, 3, H, W), "edges" (B, 1, H, W), "features" (B, C, h, w).
    layers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config):
        super().__init__()
        self.config = config

    @property
    def n_keypoints(self) -> int:
        return self.config.n_parts

    def forward(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        """The training objective (so DDP wrappers see a forward)."""
        return self.loss(batch)

    def loss(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def keypoints(self, images: Tensor) -> Tensor:
        raise NotImplementedError

    def visuals(self, images: Tensor) -> dict[str, Tensor]:
        return {}

    def diagnostics(self, images: Tensor) -> dict[str, float]:
        """Method-specific checks on a batch of test images (eval mode, no gradients); none by default."""
        return {}

    def optimizers(self, steps: int):
        return torch.optim.AdamW(self.parameters(), lr=self.config.lr), None

    def run_name(self, dataset: str, resolution: int, steps: int) -> str:
        """`{method}_k{K}_{dataset}-{res}_{steps}` (+ the seed's own flags, by override)."""
        return f"{self.name}_k{self.n_keypoints}_{dataset}-{resolution}_{steps}"

    def config_dict(self) -> dict:
        return dataclasses.asdict(self.config)
