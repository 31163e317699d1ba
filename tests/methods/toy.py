"""Toy: the smallest method that uses every part of the trainer's method seam (defined in tests only).

A conv detector gives K heatmaps whose soft-argmax are the keypoints, learned from the data's own
keypoints; its trunk gives dense features (the "head" evaluation). An EMA twin of the detector follows
it after every step (`after_step`). With `adv > 0` a keypoint discriminator, a second optimiser stepped
in turn, tells the detector's keypoints from the data's. The recipe trains two stages: `stage1` without
the discriminator (one optimiser), then `stage2` with it, started from stage1's weights (`init_from`).

    python -m lmkcore.train --method tests.methods.toy:Toy --steps 20 --experiment toy n_parts=4
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmkcore.methods import register
from lmkcore.methods.base import Method, WarmupCosine
from lmkcore.ops import soft_argmax, spatial_softmax
from lmkcore.train import stage, train


@dataclass
class ToyConfig:
    n_parts: int = 4  # number of keypoints K (the data's first K)
    resolution: int = 32  # input size
    width: int = 8  # detector channels
    lr: float = 1e-3
    momentum: float = 0.9  # EMA twin: ema <- momentum * ema + (1 - momentum) * detector
    adv: float = 0.1  # weight of the discriminator's term (0: no discriminator, one optimiser)


@register
class Toy(Method):
    name = "toy"
    config_class = ToyConfig
    layers = {"heatmaps": "heatmaps", "features": "features"}
    evaluations = ("keypoints", "head")
    sync_batchnorm = False

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        c = config
        self.detector = nn.Sequential(nn.Conv2d(3, c.width, 3, 2, 1), nn.ReLU(), nn.Conv2d(c.width, c.width, 3, 1, 1),
                                      nn.ReLU(), nn.Conv2d(c.width, c.n_parts, 1))
        self.ema = copy.deepcopy(self.detector).requires_grad_(False)
        self.disc = (nn.Sequential(nn.Linear(2 * c.n_parts, 16), nn.ReLU(), nn.Linear(16, 1)) if c.adv > 0 else None)

    def _input(self, images: Tensor) -> Tensor:
        size = self.config.resolution
        x = images if images.shape[-1] == size else F.interpolate(images, size=(size, size), mode="bilinear")
        return x * 2.0 - 1.0

    def heatmaps(self, images: Tensor) -> Tensor:
        return spatial_softmax(self.detector(self._input(images)))  # (B, K, H/2, W/2)

    def keypoints(self, images: Tensor) -> Tensor:
        return soft_argmax(self.heatmaps(images))  # (B, K, 2)

    def features(self, images: Tensor) -> Tensor:
        return self.detector[:-1](self._input(images))  # (B, width, H/2, W/2)

    def visuals(self, images: Tensor) -> dict[str, Tensor]:
        return {"heatmaps": self.heatmaps(images), "features": self.features(images)}

    def loss(self, batch: dict, part: int = 0) -> tuple[Tensor, dict[str, Tensor]]:
        real = batch["keypoints"][:, : self.config.n_parts].flatten(1)  # (B, 2K)
        if part == 1:  # the discriminator: data keypoints real, detected ones fake
            with torch.no_grad():
                fake = self.keypoints(batch["image"]).flatten(1)
            d = F.softplus(-self.disc(real)).mean() + F.softplus(self.disc(fake)).mean()
            return d, {"disc": d.detach()}
        kp = self.keypoints(batch["image"]).flatten(1)
        mse = (kp - real).pow(2).mean()
        if self.disc is None:
            return mse, {"mse": mse.detach()}
        fool = F.softplus(-self.disc(kp)).mean()  # non-saturating generator term
        return mse + self.config.adv * fool, {"mse": mse.detach(), "fool": fool.detach()}

    def after_step(self, step: int) -> None:
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.detector.parameters()):
                e.lerp_(p, 1.0 - self.config.momentum)

    def optimizers(self, steps: int):
        opt = torch.optim.Adam(self.detector.parameters(), lr=self.config.lr)
        pair = (opt, torch.optim.lr_scheduler.LambdaLR(opt, WarmupCosine(1, steps)))
        if self.disc is None:
            return pair
        return [pair, (torch.optim.Adam(self.disc.parameters(), lr=self.config.lr), None)]

    @classmethod
    def recipe(cls, method: Toy, data, cfg) -> list:
        """stage1: a copy without the discriminator; stage2: `method`, started from stage1's weights."""
        first = train(cls(replace(method.config, adv=0.0)), data, stage(cfg, "stage1"))
        return [first, train(method, data, stage(cfg, "stage2", after=first))]
