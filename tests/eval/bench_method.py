"""A small method that lives outside the package, for the bench's method axis.

The bench finds it by its import path (`tests.eval.bench_method:FlipPoints`); no profile has a plan for it
and it has no notebook, so the bench trains it with `lmkcore.train` and scores it in its own process.
Import it only by that path (`lmkcore.methods.resolve`): pytest also puts tests/eval on sys.path, and a
second import under another module name would be a second class of the same name.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lmkcore.methods import Method
from lmkcore.ops.heatmaps import soft_argmax, spatial_softmax


@dataclass
class FlipPointsConfig:
    n_parts: int = 3  # number of keypoints K
    resolution: int = 32  # input size
    width: int = 8  # channels of the hidden layer
    sep_sigma: float = 0.3  # range of the separation term (normalised units)
    lr: float = 1e-3  # Adam learning rate


class FlipPoints(Method):
    """Two convolutions -> K heatmaps -> soft-argmax. Loss: keypoints of a mirrored image are the mirrored
    keypoints (equivariance to a horizontal flip), plus a Gaussian separation term that keeps them apart."""

    name = "flip-points"
    config_class = FlipPointsConfig
    layers = {"heatmaps": "heatmaps"}

    def __init__(self, config: FlipPointsConfig):
        super().__init__(config)
        c = config
        self.net = nn.Sequential(nn.Conv2d(3, c.width, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(c.width, c.n_parts, 3, padding=1))

    def heatmaps(self, images: Tensor) -> Tensor:
        return spatial_softmax(self.net(images))  # (B, K, H, W)

    def keypoints(self, images: Tensor) -> Tensor:
        return soft_argmax(self.heatmaps(images))  # (B, K, 2)

    def visuals(self, images: Tensor) -> dict[str, Tensor]:
        return {"heatmaps": self.heatmaps(images)}

    def loss(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        images = batch["image"]  # (B, 3, H, W)
        kp, mirrored = self.keypoints(images), self.keypoints(images.flip(-1))  # (B, K, 2) each
        flip_x = torch.tensor([-1.0, 1.0], device=kp.device)
        equiv = (kp - mirrored * flip_x).pow(2).sum(-1).mean()
        d2 = (kp[:, :, None] - kp[:, None]).pow(2).sum(-1)  # (B, K, K)
        off = ~torch.eye(kp.shape[1], dtype=torch.bool, device=kp.device)
        sep = torch.exp(-d2[:, off] / (2 * self.config.sep_sigma**2)).mean()
        return equiv + sep, {"equiv": equiv.detach(), "sep": sep.detach()}

    def optimizers(self, steps: int):
        return torch.optim.Adam(self.parameters(), lr=self.config.lr), None
