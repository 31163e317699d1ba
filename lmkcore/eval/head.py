"""The supervised-head evaluation: annotated landmarks regressed from a method's frozen dense features.

For methods whose landmarks exist only after supervision (Cheng et al. 2021, ContrastLandmark; the
card `shared/methods/cheng_contrastive_landmarks.md` §5, the "intermediate keypoint" head of DVE):

    features (N, C, h, w)  --1x1 conv, no bias-->  (N, J*I, h, w) responses
    spatial softmax of (temperature * response), soft-argmax  ->  I virtual points per landmark (x, y)
    a bias-free linear map per landmark from its own I virtual points (2I numbers) to (x, y)

trained with smooth-L1 between 10 * prediction and 10 * target in normalised [-1, 1] coordinates,
invisible landmarks masked out (the card's CUB recipe). Adam (lr 1e-3, betas (0.5, 0.999), weight
decay 5e-4), batch 32, cosine decay to lr * 0.2^3 * 0.1, as the card's face recipe.

Unlike the papers' scripts (which keep the best epoch *on the test split*, or a fixed epoch picked from
test results: card §11), the number of steps is chosen by early stopping on a seeded held-out part of the
FIT images only; the test images are seen once, for the final prediction. Features are computed once
(`inputs.run_method`, no gradients) and the backbone is never touched: the head alone trains.
At small scale the few-shot TPS augmentation of the card is left out (same recipe for every fit size).

Example (features that are bumps at the landmarks are read out closely)::

    head_fit = fit_head(features, targets, visible, HeadConfig(max_steps=300))
    pred = predict_head(head_fit.head, test_features)  # (M, J, 2) normalised [-1, 1]
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.heatmaps import soft_argmax, spatial_softmax
from .regression import one_thread

SMALL_BATCH = 4_000_000  # feature numbers per batch below which a CPU head trains on one thread (busy cores)


@dataclass
class HeadConfig:
    virtual: int = 50  # I: virtual points per annotated landmark (card §5)
    temperature: float = 100.0  # spatial softmax of temperature * response (v1 scripts: 100; DVE 50)
    lr: float = 1e-3  # Adam learning rate (card, faces)
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 5e-4
    batch_size: int = 32
    max_steps: int = 2000  # optimiser steps at most (cosine schedule over this horizon)
    eval_every: int = 50  # steps between held-out evaluations
    patience: int = 6  # held-out evaluations without improvement before stopping
    holdout: float = 0.1  # fraction of the fit images held out for early stopping (at least 1 of >= 2)
    loss_scale: float = 10.0  # smooth-L1 on loss_scale * (prediction, target) (card: 10)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class LandmarkHead(nn.Module):
    """`(B, C, h, w)` frozen features -> `(B, J, 2)` landmarks normalised (x, y) in [-1, 1]."""

    def __init__(self, channels: int, n_landmarks: int, *, virtual: int = 50, temperature: float = 100.0):
        super().__init__()
        self.j, self.i, self.temperature = n_landmarks, virtual, temperature
        self.conv = nn.Conv2d(channels, n_landmarks * virtual, 1, bias=False)  # virtual-point responses
        # per landmark: (x, y) = W_j @ its virtual points (I, 2) flattened; starts at their mean
        w = torch.zeros(n_landmarks, 2, virtual, 2)  # (J, out xy, I, in xy)
        w[:, 0, :, 0] = w[:, 1, :, 1] = 1.0 / virtual
        self.combine = nn.Parameter(w)

    def virtual_points(self, features: Tensor) -> Tensor:
        """`(B, C, h, w)` -> `(B, J, I, 2)` soft-argmax positions of the virtual points."""
        b = features.shape[0]
        # softmax of (temperature * response) = spatial_softmax(response, 1 / temperature)
        p = spatial_softmax(self.conv(features), 1.0 / self.temperature)  # (B, J*I, h, w)
        return soft_argmax(p).reshape(b, self.j, self.i, 2)

    def forward(self, features: Tensor) -> Tensor:
        return torch.einsum("bjid,jcid->bjc", self.virtual_points(features), self.combine)  # (B, J, 2)


@dataclass
class HeadFit:
    head: LandmarkHead
    train_rows: Tensor  # (N_train,) rows of the features the head was trained on
    val_rows: Tensor  # (N_val,) rows held out for early stopping (fit images too)
    best_step: int  # the step whose weights were kept (the last one without a held-out part)
    steps: int  # steps run before stopping
    val_error: float | None  # mean held-out point distance (normalised units) at best_step
    history: list = field(default_factory=list)  # [step, held-out error]


def split_holdout(n: int, holdout: float, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Seeded (train rows, held-out rows) of `n` fit images, both sorted; nothing held out for n < 2."""
    n_val = 0 if n < 2 else min(n - 1, max(1, round(holdout * n)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def head_loss(pred: Tensor, target: Tensor, visible: Tensor, scale: float = 10.0) -> Tensor:
    """Masked smooth-L1 (card §5): pred, target (B, J, 2), visible (B, J); mean over visible coordinates."""
    v = visible[..., None].expand_as(pred)  # (B, J, 2)
    err = F.smooth_l1_loss(scale * pred, scale * torch.where(v, target, 0.0), reduction="none")
    return torch.where(v, err, 0.0).sum() / v.sum().clamp_min(1)


@torch.no_grad()
def predict_head(head: LandmarkHead, features: Tensor, *, batch_size: int = 256, device="cpu") -> Tensor:
    """`(N, C, h, w)` features -> `(N, J, 2)` landmarks normalised [-1, 1] (on the CPU, float32)."""
    head.eval()
    return torch.cat([head(features[s:s + batch_size].to(device)).float().cpu()
                      for s in range(0, len(features), batch_size)])


def _held_out_error(head, features, target, visible, device) -> float:
    pred = predict_head(head, features, device=device)  # (N_val, J, 2)
    d = (pred.double() - torch.where(visible[..., None], target, 0.0).double()).norm(dim=-1)  # (N_val, J)
    return float(torch.where(visible, d, 0.0).sum() / visible.sum().clamp_min(1))


def fit_head(features: Tensor, targets: Tensor, visible: Tensor, config: HeadConfig | None = None, *,
             seed: int = 0, device="cpu") -> HeadFit:
    """Train a `LandmarkHead` on frozen `features` (N, C, h, w) for `targets` (N, J, 2) normalised
    [-1, 1] (anything where invisible), `visible` (N, J) bool.

    A seeded `config.holdout` part of these N images is held out; every `eval_every` steps the head is
    scored there (mean point distance over visible landmarks) and the best weights are kept; training
    stops after `patience` scores without improvement, or at `max_steps`. With fewer than 2 images
    nothing is held out and the last weights are kept.
    """
    config = config or HeadConfig()
    if features.dim() != 4 or targets.dim() != 3 or targets.shape[-1] != 2 or visible.shape != targets.shape[:2]:
        raise ValueError(f"fit_head expects features (N, C, h, w), targets (N, J, 2), visible (N, J); got "
                         f"{tuple(features.shape)}, {tuple(targets.shape)}, {tuple(visible.shape)}")
    if len(features) != len(targets) or len(features) == 0:
        raise ValueError(f"fit_head: {len(features)} feature maps for {len(targets)} annotated images")
    visible = visible.to(torch.bool)
    targets = torch.where(visible[..., None], targets.float(), 0.0)  # (N, J, 2) NaN-free
    train, val = split_holdout(len(features), config.holdout, seed)
    if not visible[train].any():
        raise ValueError("fit_head: no visible landmark in the training part of the fit set")
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = LandmarkHead(features.shape[1], targets.shape[1], virtual=config.virtual,
                            temperature=config.temperature).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=config.lr, betas=tuple(config.betas),
                           weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.max_steps, eta_min=config.lr * 0.2**3 * 0.1)
    small = torch.device(device).type == "cpu" and features[:1].numel() * config.batch_size <= SMALL_BATCH
    with one_thread() if small else contextlib.nullcontext():  # tiny steps: 5-10x faster on shared cores
        return _train(head, opt, sched, features, targets, visible, train, val, config, gen, device)


def _train(head, opt, sched, features, targets, visible, train, val, config, gen, device) -> HeadFit:
    """The loop of `fit_head`: seeded epochs over the train rows, held-out scores, best weights kept."""
    order = torch.empty(0, dtype=torch.long)
    best, best_step, best_err, bad, history = None, 0, float("inf"), 0, []
    step = 0
    for step in range(1, config.max_steps + 1):
        if len(order) < min(config.batch_size, len(train)):  # epochs of seeded permutations of the train rows
            order = torch.cat([order, train[torch.randperm(len(train), generator=gen)]])
        rows, order = order[:config.batch_size], order[config.batch_size:]
        head.train()
        loss = head_loss(head(features[rows].to(device)), targets[rows].to(device), visible[rows].to(device),
                         config.loss_scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if len(val) and (step % config.eval_every == 0 or step == config.max_steps):
            err = _held_out_error(head, features[val], targets[val], visible[val], device)
            history.append([step, err])
            if err < best_err:
                best, best_step, best_err, bad = copy.deepcopy(head.state_dict()), step, err, 0
            else:
                bad += 1
                if bad >= config.patience:
                    break
    if best is not None:
        head.load_state_dict(best)
    else:
        best_step = step
    return HeadFit(head.eval(), train, val, best_step, step, best_err if len(val) else None, history)


__all__ = ["HeadConfig", "HeadFit", "LandmarkHead", "fit_head", "head_loss", "predict_head", "split_holdout"]
