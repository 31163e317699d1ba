"""What a method is to the rest of the workbook.

A method is an `nn.Module` with a config dataclass, a loss on a batch, and a keypoint read-out.
The trainer, the evaluation protocol and the inspector use nothing else:

    loss(batch)         -> (scalar loss, {name: detached scalar tensor} logs), batch["image"] (B, 3, H, W) in [0, 1]
    keypoints(images)   -> (B, K, 2) normalised (x, y) in [-1, 1]  (see `lmkcore.ops.coords`)
    visuals(images)     -> {layer: tensor} for the layers declared in `layers` (inspector, figures)
    optimizers(steps)   -> (optimizer, scheduler or None), or a list of such pairs stepped in turn
    diagnostics(images) -> {name: float}: optional checks of what the model relies on (evaluation reports them)

Optional capabilities, each with a default that says "not offered":

    graph()             -> (K, K) edge weights between keypoints, or None
    confidence(images)  -> (B, K) in [0, 1], or None: the protocol counts keypoint k of an image only
                           where confidence >= `confidence_threshold` (a varying number of landmarks)
    covariances(images) -> (B, K, 2, 2) part covariances in normalised units, or None (ellipses)
    features(images)    -> (B, C, h, w) frozen dense features, for the supervised-head evaluation
    after_step(step)    -> called by the trainer after every optimiser step (momentum encoders, queues)
    training_data(data) -> the data set it trains on, made from one of single images (frame pairs); data itself
    fit_readout(data)   -> fits what the keypoint read-out needs from unlabelled images (clusters); nothing

`evaluations` names how the protocol scores a method: "keypoints" (linear regression without
intercept from the discovered keypoints) and / or "head" (a supervised head on `features`, trained
on the fit set, full and few-shot). Both are scored and reported by the same code.

Layers are typed: `layers` maps a layer's name (the method's own word) to one of `LAYER_KINDS`,
and `lmkcore.viz` draws a layer by its kind, never by its name.

Logs stay tensors: the trainer converts them only on logging steps (one device sync there, not per step).
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch
from torch import Tensor, nn

# How a visual layer is drawn, and the tensor it holds (B: images, K: keypoints).
LAYER_KINDS = {
    "image": "(B, 3, H, W) in [0, 1]: an image in a panel of its own (reconstruction, masked input, background)",
    "map": "(B, 1, H, W) in [0, 1]: a single-channel map in a panel of its own (edge map, foreground mask)",
    "heatmaps": "(B, K, h, w): one map per keypoint, drawn over the image (one keypoint or their max)",
    "graph": "(K, K): edge weights between keypoints, drawn as segments between them",
    "covariances": "(B, K, 2, 2): per-keypoint covariance in normalised units, drawn as ellipses at the keypoints",
    "points": "(B, N, 3): extra points (x, y normalised, label >= 0 or -1 for none), drawn coloured by label",
    "features": "(B, C, h, w): dense features, shown through a PCA to RGB",
}


def recorded_config(config_class, recorded: dict) -> dict:
    """Every field of `config_class` for a config a run recorded: a field added after that run was trained
    takes the value that keeps the old behaviour, `config_class.ABSENT[field]` where the class says so
    (a field whose default turns something on), else its default."""
    return {**dataclasses.asdict(config_class()), **getattr(config_class, "ABSENT", {}), **recorded}


def require(config, **lows) -> None:
    """Each named field of `config` (a method's dataclass, from `__post_init__`) at least its lower bound:
    otherwise an error naming the class, the field, the value and the bound (a notebook's `-p n_parts -3`
    fails here, not deep inside torch)."""
    for name, low in lows.items():
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
            raise ValueError(f"{type(config).__name__}.{name} must be a number >= {low}, got {value!r}")


def require_choice(config, **choices) -> None:
    """Each named field of `config` one of its allowed values: otherwise an error naming the class, the field,
    the value and the choices."""
    for name, allowed in choices.items():
        value = getattr(config, name)
        if value not in allowed:
            raise ValueError(f"{type(config).__name__}.{name} must be one of {', '.join(map(str, allowed))}, "
                             f"got {value!r}")


SCHEDULES = ("constant", "cosine", "decay")  # the learning-rate schedules `lr_schedule` makes


def schedule_suffix(schedule: str) -> str:
    """Run-name suffix of a `schedule` field: "" for the constant rate (the recipes'), "_cos" for cosine,
    "_decay" for the constant rate with a linear decay at the end."""
    return {"constant": "", "cosine": "_cos", "decay": "_decay"}[schedule]


def additions_suffix(**weights: float) -> str:
    """Run-name suffix of the compact recipe's additions that are on: `_{name}{weight:g}` for each weight > 0,
    in the order given (`additions_suffix(prior=0.3, sep=1.0, trans=0.0)` -> "_prior0.3_sep1")."""
    return "".join(f"_{name}{w:g}" for name, w in weights.items() if w > 0)


def add_term(loss: Tensor, logs: dict[str, Tensor], name: str, weight: float, term: Tensor) -> Tensor:
    """`loss + weight * term`, with the unweighted term logged (detached) under `name`: how a method adds an
    optional term (a compact-recipe addition, an adversarial term) to its objective."""
    logs[name] = term.detach()
    return loss + weight * term


@dataclasses.dataclass
class WarmupCosine:
    """Learning-rate factor for `LambdaLR`: linear warm-up over `warm` steps, then a cosine to 0 at `steps`.

    An object rather than a lambda so that `LambdaLR.state_dict` saves its horizon: the trainer shortens
    `steps` to the steps that fit a wall-clock cap (`TrainConfig.max_minutes`) and a resumed run keeps it.
    """

    warm: int
    steps: int

    def __call__(self, s: int) -> float:
        horizon = max(self.steps, 1)  # a 0-step run builds its schedule too
        return min(1.0, (s + 1) / self.warm) * 0.5 * (1 + math.cos(math.pi * min(s, horizon) / horizon))


@dataclasses.dataclass
class StableDecay:
    """Learning-rate factor for `LambdaLR`: 1 until the last `frac` of `steps`, then linearly to 0 at `steps`.

    The rate stays high while the landmarks form (a cosine lowers it from the start: it lost on held-out
    fit faces, reports/fgbg) and anneals only at the end. Its horizon is fitted to a wall-clock cap as
    `WarmupCosine`'s, so a capped run anneals before the cap rather than stopping at full rate.
    """

    steps: int
    frac: float = 0.2

    def __call__(self, s: int) -> float:
        horizon = max(self.steps, 1)
        return min(1.0, max(0.0, (horizon - s) / max(self.frac * horizon, 1.0)))


def lr_schedule(opt: torch.optim.Optimizer, schedule: str, steps: int, warmup: int = 1):
    """The scheduler a method's `schedule` field names for `opt` over `steps`: None for "constant";
    for `"cosine"` a `LambdaLR` of `WarmupCosine` (linear warm-up over `warmup` steps, at most a tenth of the
    run, then a cosine to 0); for `"decay"` one of `StableDecay` (constant, then linearly to 0 over the last
    fifth). The trainer fits either horizon to a wall-clock cap."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if schedule == "constant":
        return None
    if schedule == "decay":
        return torch.optim.lr_scheduler.LambdaLR(opt, StableDecay(steps))
    return torch.optim.lr_scheduler.LambdaLR(opt, WarmupCosine(max(1, min(warmup, steps // 10)), steps))


class Method(nn.Module):
    name: ClassVar[str]
    config_class: ClassVar[type]
    layers: ClassVar[dict[str, str]] = {}  # layer name -> kind (a key of LAYER_KINDS)
    evaluations: ClassVar[tuple[str, ...]] = ("keypoints",)  # "keypoints" and / or "head"
    confidence_threshold: ClassVar[float] = 0.5  # a keypoint counts where confidence() >= this
    sync_batchnorm: ClassVar[bool] = True  # under DDP on CUDA, BatchNorm -> SyncBatchNorm (MoCo: False)
    # state fitted on features after training, not learned (contrastive's clusters): init_from leaves it as built
    readout_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config):
        super().__init__()
        self.config = config

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        bad = {k: v for k, v in cls.layers.items() if v not in LAYER_KINDS}
        if bad:
            raise TypeError(f"{cls.__name__}.layers has unknown kinds {bad}; kinds: {sorted(LAYER_KINDS)}")

    @property
    def n_keypoints(self) -> int:
        return self.config.n_parts

    @property
    def recipe_fields(self) -> tuple[str, ...]:
        """Config fields this stage of a recipe does not train with (self-training's `rounds` in a Step-1
        round): a finished stage resumes under another value of them, so a recipe can be extended."""
        return ()

    def forward(self, batch: dict, *args) -> tuple[Tensor, dict[str, Tensor]]:
        """The training objective (so DDP wrappers see a forward); extra arguments go to `loss`."""
        return self.loss(batch, *args)

    def loss(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def keypoints(self, images: Tensor) -> Tensor:
        raise NotImplementedError

    def visuals(self, images: Tensor) -> dict[str, Tensor]:
        return {}

    def diagnostics(self, images: Tensor) -> dict[str, float]:
        """Method-specific checks on a batch of test images (eval mode, no gradients); none by default."""
        return {}

    # optional capabilities
    def graph(self) -> Tensor | None:
        return None

    def confidence(self, images: Tensor) -> Tensor | None:
        return None

    def covariances(self, images: Tensor) -> Tensor | None:
        return None

    def features(self, images: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} offers no dense features (evaluations: {self.evaluations})")

    def training_data(self, data):
        """What the method trains on, made from a data set of single images (e.g. frame pairs); `data` itself by
        default. The trainer's command line and the bench call it."""
        return data

    def fit_readout(self, data) -> None:
        """Fit what the keypoint read-out needs from unlabelled images of `data` (contrastive: the feature clusters
        whose peaks are its keypoints); nothing by default. The untrained floor calls it on the fit images, as a
        method's recipe does after training."""

    def keypoints_ready(self) -> bool:
        """Whether `keypoints` can be read now (False before `fit_readout` where the read-out needs fitting)."""
        return True

    def after_step(self, step: int) -> None:
        """Called by the trainer after each optimiser step (all optimisers of the step), `step` counted from 1."""

    def optimizers(self, steps: int):
        return torch.optim.AdamW(self.parameters(), lr=self.config.lr), None

    def run_name(self, dataset: str, resolution: int, steps: int) -> str:
        """`{method}_k{K}_{dataset}-{res}_{steps}` (+ the seed's own flags, by override)."""
        return f"{self.name}_k{self.n_keypoints}_{dataset}-{resolution}_{steps}"

    def config_dict(self) -> dict:
        return dataclasses.asdict(self.config)
