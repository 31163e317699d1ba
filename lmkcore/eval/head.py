"""The supervised-head evaluation: annotated landmarks regressed from a method's frozen dense features.

For methods whose landmarks exist only after supervision (Cheng et al. 2021, ContrastLandmark; the
card `shared/methods/cheng_contrastive_landmarks.md` §5, the "intermediate keypoint" head of DVE):

    features (N, C, h, w)  --1x1 conv, no bias-->  (N, J*I, h, w) responses
    spatial softmax of (temperature * response), soft-argmax  ->  I virtual points per landmark (x, y)
    a bias-free linear map per landmark from its own I virtual points (2I numbers) to (x, y)

trained with smooth-L1 between 10 * prediction and 10 * target in normalised [-1, 1] coordinates,
invisible landmarks masked out (the card's CUB recipe). Adam (lr 1e-3, betas (0.5, 0.999), weight
decay 5e-4), batch 32, cosine decay to lr * 0.2^3 * 0.1, as the card's face recipe. Few-shot sets (the
card's `--restrict_annos N --repeat --TPS_aug`) are tiled to about `repeat` samples, each copy after the first
a fresh thin-plate-spline warp of its image (the `cheng` preset of `ops.tps`, the DVE warper; landmarks moved
with the warp, `tps_copies`), and trained with the card's few-shot settings (lr `few_lr` 1e-2, weight decay
`few_weight_decay` 5e-2). Sets of more than `repeat` / 2 images are trained as they are.

Unlike the papers' scripts (which keep the best epoch *on the test split*, or a fixed epoch picked from
test results: card §11), the number of steps is chosen by early stopping on a seeded held-out part of the
FIT images only; the test images are seen once, for the final prediction. Features are computed once
(`gather.run_method`, no gradients) and the backbone is never touched: the head alone trains.
Only the training part is tiled and warped: the held-out images are the untouched originals.

Example (features that are bumps at the landmarks are read out closely)::

    head_fit = fit_head(features, targets, visible, HeadConfig(max_steps=300))
    pred = predict_head(head_fit.head, test_features)  # (M, J, 2) normalised [-1, 1]
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.heatmaps import soft_argmax, spatial_softmax
from ..ops.tps import map_points, random_tps_views
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
    # few-shot fits (card §5, the seed's --repeat --TPS_aug)
    TPS_aug: bool = True  # tile a few-shot set with thin-plate-spline warps of its images (False: never tile)
    repeat: int = 1000  # samples a few-shot set is tiled to (seed: ~1,000 per epoch); sets of > repeat / 2 are not
    few_lr: float = 1e-2  # Adam learning rate of a tiled (few-shot) fit (card)
    few_weight_decay: float = 5e-2  # its weight decay (card)

    def copies(self, n_images: int) -> int:
        """How many samples each of `n_images` training images gives: the image and its warps (1: no tiling)."""
        return max(1, self.repeat // n_images) if self.TPS_aug and n_images > 0 else 1

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
    train_rows: Tensor  # (N_train,) rows of the features the head was trained on (warped copies come on top)
    val_rows: Tensor  # (N_val,) rows held out for early stopping (fit images too)
    best_step: int  # the step whose weights were kept (the last one without a held-out part)
    steps: int  # steps run before stopping
    val_error: float | None  # mean held-out point distance (normalised units) at best_step
    history: list = field(default_factory=list)  # [step, held-out error]
    augmented: int = 0  # warped copies of the training images added to them (few-shot tiling)


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


@torch.no_grad()
def tps_copies(read, images: Tensor, targets: Tensor, visible: Tensor, copies: int, *,
               generator: torch.Generator, batch_size: int = 64, device="cpu") -> tuple[Tensor, Tensor, Tensor]:
    """`copies` random warps of each image (`ops.tps` preset `cheng`, the card's few-shot TPS augmentation),
    read by `read` (frozen features, `(B, 3, H, W) -> (B, C, h, w)`): (features `(copies N, C, h, w)` on the CPU,
    targets `(copies N, J, 2)` moved with the warp, visible `(copies N, J)`, False where a landmark left the
    image). `images (N, 3, H, W)`, `targets (N, J, 2)` normalised [-1, 1], `visible (N, J)` bool."""
    feats, moved, seen = [], [], []
    for _ in range(copies):
        for s in range(0, len(images), batch_size):
            warped, _, params = random_tps_views(images[s:s + batch_size], "cheng", generator=generator)
            feats.append(read(warped.to(device)).float().cpu())
            t = map_points(params, targets[s:s + batch_size].double()).float()  # (B, J, 2): where q shows now
            moved.append(t)
            seen.append(visible[s:s + batch_size] & (t.abs() <= 1.0).all(-1))
    return torch.cat(feats), torch.where(torch.cat(seen)[..., None], torch.cat(moved), 0.0), torch.cat(seen)


def fit_head(features: Tensor, targets: Tensor, visible: Tensor, config: HeadConfig | None = None, *,
             seed: int = 0, device="cpu", augment=None) -> HeadFit:
    """Train a `LandmarkHead` on frozen `features` (N, C, h, w) for `targets` (N, J, 2) normalised
    [-1, 1] (anything where invisible), `visible` (N, J) bool.

    A seeded `config.holdout` part of these N images is held out; every `eval_every` steps the head is
    scored there (mean point distance over visible landmarks) and the best weights are kept; training
    stops after `patience` scores without improvement, or at `max_steps`. With fewer than 2 images
    nothing is held out and the last weights are kept.

    `augment`: for a few-shot set (`config.copies(n) > 1`, n training images), a function of (the training
    rows, never the held-out ones; w = copies - 1) -> (features, targets, visible) of w warps of each
    (`tps_copies`); they are trained on beside the originals, with `few_lr` and `few_weight_decay`.
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
    lr, weight_decay, added = config.lr, config.weight_decay, 0
    if augment is not None and config.copies(len(train)) > 1:
        more = augment(train, config.copies(len(train)) - 1)  # (A, C, h, w), (A, J, 2), (A, J)
        added, n = len(more[0]), len(features)
        features, targets = torch.cat([features, more[0]]), torch.cat([targets, more[1].float()])
        visible = torch.cat([visible, more[2].to(torch.bool)])
        rows = torch.cat([train, torch.arange(n, n + added)])
        lr, weight_decay = config.few_lr, config.few_weight_decay
    else:
        rows = train
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = LandmarkHead(features.shape[1], targets.shape[1], virtual=config.virtual,
                            temperature=config.temperature).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=lr, betas=tuple(config.betas), weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.max_steps, eta_min=lr * 0.2**3 * 0.1)
    small = torch.device(device).type == "cpu" and features[:1].numel() * config.batch_size <= SMALL_BATCH
    with one_thread() if small else contextlib.nullcontext():  # tiny steps: 5-10x faster on shared cores
        fit = _train(head, opt, sched, features, targets, visible, rows, val, config, gen, device)
    return replace(fit, train_rows=train, augmented=added)


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


__all__ = ["HeadConfig", "HeadFit", "LandmarkHead", "fit_head", "head_loss", "predict_head", "split_holdout",
           "tps_copies"]
