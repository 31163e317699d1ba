"""Contrastive landmarks: MoCo features from scratch, hypercolumns, landmarks by a light head.

Cheng, Su, Maji, "Unsupervised Discovery of Object Landmarks via Contrastive Learning" (arXiv 2006.14787)
and its ICCV-2021 version "On Equivariant and Invariant Learning of Object Landmark Representations"
(card: shared/methods/cheng_contrastive_landmarks.md; seed: shared/seeds/004_*.txt).

1. MoCo pre-training (card section 3): a torchvision ResNet from random initialisation (never downloaded)
   maps two random views of an image to unit embeddings q (query encoder, trained) and k (key encoder,
   an EMA of the query encoder updated in `after_step`); InfoNCE against a FIFO queue of `nce_k` earlier
   keys at temperature `nce_t`, positive at index 0. The queue is a buffer, so checkpoints carry it.
   Views are made batched in the loss: RandomResizedCrop (area `crop_scale`..1) of the image resized to
   `image_size`, a flip, an optional thin-plate-spline bend (`tps`), the centre crop of `image_crop` px per
   side, colour jitter and AlexNet lighting. The card's JPEG re-encoding noise is left out (not batched).
   Shuffle-BN on one device: every BatchNorm of both encoders is a `SplitBatchNorm2d` ("ghost" BN,
   `bn_splits` groups, each normalised with its own statistics as if on its own GPU) and the key batch is
   permuted before the key encoder and un-permuted after, so a query and its key are normalised within
   different groups, which is what MoCo's shuffle-BN achieves across GPUs (MoCo's one-GPU demo does the
   same). `sync_batchnorm = False`: under DDP each device keeps its own BN, and keys are gathered.
2. Hypercolumns (card section 4): conv2_x ... conv(1 + `layer`)_x of the query encoder, bilinearly
   resized to a common grid (`hypercol_size`; the paper's 48 at 96 px) and stacked (`use_hypercol`; otherwise
   conv(1 + `layer`)_x alone). Not L2-normalised (the card does not normalise them). `features()` returns
   them (or their projection, 3.) for the supervised head (`lmkcore.eval.head`, card section 5).
3. `use_projection` (the ICCV version): a 1x1 convolution maps hypercolumns to `proj_dim` unit
   descriptors, trained in a second stage (`stage="projection"`, backbone frozen) by a spatially
   contrastive, equivariant InfoNCE: a position of a TPS-warped view must match the same point of the
   unwarped view (the correspondence comes from the warp) against the other positions of that image.
4. Keypoints without labels (this workbook's addition; the paper has no unsupervised detector, card
   section 6): `fit_keypoints(data)` clusters unit-normalised features of the fit images into `n_parts`
   clusters (seeded spherical k-means, faiss); keypoint k of an image is the soft-argmax of its
   similarity map to centroid k. Meaningful: where a cluster is a part that every image shows once (an
   eye, a head), its keypoint follows that part and the linear keypoint protocol can use it. Not
   meaningful: clusters of background or of parts shown several times (both hands) give a map with
   several or diffuse modes whose soft-argmax lies between them; the cluster order is arbitrary. The
   paper's numbers come from the head on `features()`; this read-out is for the inspector and for the
   discovered-keypoint protocol. Until `fit_keypoints` has run, `keypoints()` raises.

The trainer counts optimiser steps, so the seed's `epochs` has no field here; without `cosine` the
learning rate is constant (the seed's 120/160/200-epoch steps are in epochs).
`recipe` (`pretrain`) trains MoCo, then the projection (if any), then fits the keypoints.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ..nets.resnet import STAGE_CHANNELS, embed, hypercolumn, resnet, stages
from ..ops.colour import ColourJitter, colour_jitter
from ..ops.contrast import dense_nce, enqueue, info_nce, lighting, momentum_update, random_resized_crop
from ..ops.coords import grid
from ..ops.heatmaps import soft_argmax, spatial_softmax
from ..ops.warp import random_tps, resize, tps_points, warp_images_tps
from . import register
from .base import Method, lr_schedule, require

STAGES = ("moco", "projection")


@dataclass
class ContrastiveConfig:
    # the seed's flags (train_moco.py, eval_face.py); batch_size is the trainer's
    model: str = "resnet18"  # resnet18 | resnet50 (resnet34, resnet101 too), random initialisation
    nce_k: int = 4096  # queue length: negatives per query
    nce_t: float = 0.07  # InfoNCE temperature
    nce_m: float = 0.99  # key-encoder momentum per step (paper 0.999 over 800 epochs)
    cosine: bool = True  # cosine learning-rate decay over the run (else constant)
    image_size: int = 72  # views are cropped from the image resized to this (paper 136 faces, 96 birds)
    image_crop: int = 4  # then centre-cropped by this many px per side: input image_size - 2 image_crop
    learning_rate: float = 0.03  # SGD (momentum 0.9), or Adam with `adam`
    weight_decay: float = 1e-4
    adam: bool = False  # Adam instead of SGD
    layer: int = 4  # deepest stage read: conv(1 + layer)_x (4: conv5_x)
    use_hypercol: bool = True  # stack conv2_x ... conv(1 + layer)_x (else conv(1 + layer)_x alone)
    use_projection: bool = False  # features are a learned low-dimensional projection (ICCV version)
    # MoCo details (card section 3)
    feat_dim: int = 128  # embedding size
    mlp: bool = False  # MoCo v2's MLP head (the seed's code: one linear layer)
    bn_splits: int = 4  # ghost-BN groups standing in for per-GPU BN (1: plain BN)
    crop_scale: float = 0.2  # smallest area fraction of RandomResizedCrop
    flip: bool = True  # random horizontal flips
    jitter: float = 0.4  # ColorJitter strength of brightness, contrast and saturation (paper 0.4)
    lighting: float = 0.1  # AlexNet PCA lighting noise sigma
    tps: float = 0.03  # >0: views also bent by a thin-plate spline, control points moved this much (paper 0)
    hypercol_size: int = 16  # hypercolumn grid side (0: input / 2, paper 48 at 96 px; 16: a cheap CPU head)
    # projection (use_projection, ICCV version): a second stage on the frozen backbone
    stage: str = "moco"  # moco | projection: what loss() trains (the recipe switches it)
    proj_dim: int = 64  # descriptor size
    proj_t: float = 0.07  # temperature of the dense InfoNCE
    proj_points: int = 256  # positions per image compared in the dense InfoNCE
    proj_tps: float = 0.05  # TPS control-point shift of the warped view
    proj_lr: float = 1e-3  # Adam learning rate of the projection
    proj_steps: int = 500  # steps of the projection stage in the recipe
    # keypoints without labels (this workbook's read-out, see the module docstring)
    n_parts: int = 10  # K: clusters, one keypoint each
    kp_temperature: float = 0.05  # softmax temperature of the cosine-similarity maps
    kp_images: int = 1000  # fit images whose features are clustered
    kp_points: int = 100_000  # feature positions sampled for k-means

    def __post_init__(self):
        require(self, n_parts=1, nce_k=1, feat_dim=1, image_size=1, image_crop=0, kp_images=1, kp_points=1)
        if self.model not in STAGE_CHANNELS:
            raise ValueError(f"model must be one of {sorted(STAGE_CHANNELS)}, got {self.model!r}")
        if self.layer not in (1, 2, 3, 4):
            raise ValueError(f"layer must be 1..4 (conv2_x .. conv5_x), got {self.layer}")
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.image_size - 2 * self.image_crop < 32:
            raise ValueError(f"image_size - 2 image_crop must be >= 32 px, got {self.image_size} and {self.image_crop}")

    @property
    def resolution(self) -> int:
        """The image size to open data at (what the trainer's command line and `method_resolution` read):
        `image_size`, the size views are cropped from."""
        return self.image_size

    @property
    def input_size(self) -> int:
        """Side of the network's input: the view after the centre crop."""
        return self.image_size - 2 * self.image_crop


def _normalise(x: Tensor) -> Tensor:
    """[0, 1] images to roughly zero mean, unit spread (fixed constants: BN follows the first conv)."""
    return (x - 0.45) / 0.25


def _gather(x: Tensor) -> Tensor:
    """x (B, ...) of every DDP rank, concatenated (x itself on one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out)


@register
class Contrastive(Method):
    name = "contrastive"
    config_class = ContrastiveConfig
    layers = {"hypercolumns": "features", "clusters": "heatmaps"}
    evaluations = ("head", "keypoints")
    sync_batchnorm = False  # per-device BN, as MoCo's shuffle-BN needs
    readout_state = ("centroids", "fitted")  # refit on each run's own features (recipe step 4)

    def __init__(self, config: ContrastiveConfig):
        super().__init__(config)
        c = config
        self.encoder_q = resnet(c.model, c.feat_dim, bn_splits=c.bn_splits, mlp=c.mlp)
        self.encoder_k = copy.deepcopy(self.encoder_q).requires_grad_(False)  # starts as the query encoder
        self.register_buffer("queue", F.normalize(torch.randn(c.feat_dim, c.nce_k), dim=0))  # (D, nce_k)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.projection = nn.Conv2d(self.hypercolumn_channels, c.proj_dim, 1) if c.use_projection else None
        self.register_buffer("centroids", torch.zeros(c.n_parts, self.feature_channels))  # (K, C) unit rows
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self._ema_pending = False  # a training loss() ran and no momentum update followed yet

    @property
    def hypercolumn_channels(self) -> int:
        ch = STAGE_CHANNELS[self.config.model][: self.config.layer]
        return sum(ch) if self.config.use_hypercol else ch[-1]

    @property
    def feature_channels(self) -> int:
        return self.config.proj_dim if self.config.use_projection else self.hypercolumn_channels

    # 1. MoCo
    def views(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Two independent random views of each image (B, 3, H, W) in [0, 1]: (2B, 3, n, n) normalised network
        inputs, n = `input_size`, views b and B + b of image b. One sampling grid per view composes the
        centre crop, the TPS bend and the resized crop with its flip; then colour jitter and lighting."""
        c, dev = self.config, images.device
        x = resize(images, c.image_size, antialias=True).repeat(2, 1, 1, 1)  # (2B, 3, S, S)
        b, n = x.shape[0], c.input_size
        g = grid(n, n, device=dev).reshape(1, n * n, 2) * ((n - 1) / (c.image_size - 1))  # the centre crop
        if c.tps > 0:  # view point p shows crop point T(p)
            g = tps_points(random_tps(b, shift=c.tps, rotate=0.0, zoom=0.0, device=dev, generator=generator), g)
        crop = random_resized_crop(b, scale=(c.crop_scale, 1.0), flip=c.flip, device=dev, generator=generator)
        src = g @ crop[:, :, :2].transpose(1, 2) + crop[:, None, :, 2]  # (2B, n n, 2) points of x
        v = F.grid_sample(x, src.reshape(b, n, n, 2).to(x.dtype), mode="bilinear", align_corners=True)
        v = lighting(self._jitter(v, generator), c.lighting, generator=generator)
        return _normalise(v)

    def _jitter(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The seed's ColorJitter(jitter, jitter, jitter) (brightness, contrast, saturation; no hue), per image."""
        j = self.config.jitter
        return colour_jitter(images, ColourJitter(j, j, j), generator=generator)[0] if j > 0 else images

    def _moco_loss(self, images: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        if self.training and self._ema_pending:  # a trainer without after_step: update before the keys,
            self.after_step(0)  # as MoCo's own forward does (the same order of operations)
        v_q, v_k = self.views(images).chunk(2)  # (B, 3, n, n) each
        q = F.normalize(embed(self.encoder_q, stages(self.encoder_q, v_q)[-1]).float(), dim=1)  # (B, D)
        with torch.no_grad():  # shuffle-BN: the keys are normalised in other groups than their queries
            perm = torch.randperm(v_k.shape[0], device=v_k.device)
            k = embed(self.encoder_k, stages(self.encoder_k, v_k[perm])[-1])
            k = F.normalize(k.float(), dim=1)[torch.argsort(perm)]  # (B, D), un-shuffled
        loss, acc = info_nce(q, k, self.queue.clone(), self.config.nce_t)  # card: logits [q.k+, q.queue] / t
        if self.training:
            enqueue(self.queue, self.queue_ptr, _gather(k))
            self._ema_pending = True
        return loss, {"acc": acc.detach(), "pos_sim": (q * k).sum(1).mean().detach()}

    def after_step(self, step: int) -> None:
        """Key encoder <- nce_m key + (1 - nce_m) query (MoCo eq. 2), after each optimiser step."""
        if self.config.stage == "moco":
            momentum_update(self.encoder_k, self.encoder_q, self.config.nce_m)
        self._ema_pending = False

    @torch.no_grad()
    def diagnostics(self, images: Tensor) -> dict[str, float]:
        """How well the query encoder tells the images of a batch apart (instance discrimination, what MoCo
        trains): two fixed random views (seed 0) of each image, in-batch InfoNCE at `nce_t` of view 1
        against all view-2 embeddings (`view_nce`; log B at chance) and the fraction whose nearest view 2
        is its own (`view_acc`; 1 / B at chance)."""
        if images.shape[0] < 2:
            return {}
        v1, v2 = self.views(images, generator=torch.Generator(images.device).manual_seed(0)).chunk(2)
        z1, z2 = (F.normalize(embed(self.encoder_q, stages(self.encoder_q, v)[-1]).float(), dim=1) for v in (v1, v2))
        logits = z1 @ z2.T / self.config.nce_t  # (B, B): the diagonal holds the positives
        labels = torch.arange(len(z1), device=z1.device)
        return {"view_nce": float(F.cross_entropy(logits, labels)),
                "view_acc": float((logits.argmax(1) == labels).float().mean())}

    # 2. hypercolumns, 3. projection
    def hypercolumns(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, C, s, s): the query encoder's stages resized to s and stacked."""
        c = self.config
        x = _normalise(resize(images, c.input_size, antialias=True))
        maps = stages(self.encoder_q, x, c.layer)
        return hypercolumn(maps if c.use_hypercol else maps[-1:], c.hypercol_size or c.input_size // 2)

    def features(self, images: Tensor) -> Tensor:
        """Dense features (B, C, s, s) for the supervised head: hypercolumns, or with `use_projection`
        their `proj_dim` unit descriptors."""
        h = self.hypercolumns(images)
        return h if self.projection is None else F.normalize(self.projection(h), dim=1)

    def _projection_loss(self, images: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Dense InfoNCE between an image's view a (recoloured) and view b (TPS-warped, recoloured):
        `proj_points` random positions of b against the corresponding points of a (ICCV version)."""
        c = self.config
        x = resize(images, c.input_size, antialias=True)
        b = x.shape[0]
        warp = random_tps(b, shift=c.proj_tps, device=x.device)  # view b at p shows x at T(p)
        pair = self._jitter(torch.cat([x, warp_images_tps(x, warp)]))  # (2B, 3, n, n): views a and b
        self.encoder_q.eval()  # frozen backbone, running BN statistics
        with torch.no_grad():
            h = self.hypercolumns(pair)  # (2B, C, s, s)
        za, zb = F.normalize(self.projection(h).float(), dim=1).chunk(2)  # (B, D, s, s) each
        s = za.shape[-1]
        idx = torch.randint(s * s, (b, min(c.proj_points, s * s)), device=x.device)  # (B, P) positions of b
        pts = grid(s, s, device=x.device).reshape(s * s, 2)[idx]  # (B, P, 2)
        zb_p = zb.flatten(2).gather(2, idx[:, None].expand(-1, zb.shape[1], -1)).transpose(1, 2)  # (B, P, D)
        loss = dense_nce(zb_p, za, tps_points(warp, pts), c.proj_t)
        return loss, {}

    def loss(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        images = batch["image"]
        return self._moco_loss(images) if self.config.stage == "moco" else self._projection_loss(images)

    # 4. keypoints without labels
    @torch.no_grad()
    def fit_keypoints(self, data, *, batch_size: int = 64, seed: int = 0) -> Tensor:
        """Cluster the unit-normalised features of up to `kp_images` images of `data` (a Dataset of
        {"image"} items, or an image tensor (N, 3, H, W)) into `n_parts` centroids (seeded spherical
        k-means on `kp_points` sampled positions); stores and returns them (K, C)."""
        import faiss

        c, dev = self.config, self.centroids.device
        n = min(len(data), c.kp_images)
        per_image = max(1, c.kp_points // n)
        g = torch.Generator().manual_seed(seed)
        was_training = self.training
        self.eval()
        rows = []
        for s in range(0, n, batch_size):
            ims = data[s:s + batch_size] if torch.is_tensor(data) else \
                torch.stack([data[i]["image"] for i in range(s, min(n, s + batch_size))])
            f = F.normalize(self.features(ims[: n - s].to(dev)).float(), dim=1).flatten(2)  # (b, C, s s)
            pick = torch.randint(f.shape[-1], (f.shape[0], per_image), generator=g).to(dev)  # (b, P)
            rows.append(f.gather(2, pick[:, None].expand(-1, f.shape[1], -1)).transpose(1, 2).flatten(0, 1).cpu())
        x = torch.cat(rows).contiguous().numpy()  # (N P, C)
        km = faiss.Kmeans(x.shape[1], c.n_parts, niter=25, seed=seed, spherical=True, verbose=False)
        km.train(x)
        self.centroids.copy_(F.normalize(torch.from_numpy(km.centroids), dim=1))
        self.fitted.fill_(True)
        self.train(was_training)
        return self.centroids

    def fit_readout(self, data) -> None:
        self.fit_keypoints(data)

    def keypoints_ready(self) -> bool:
        return bool(self.fitted)

    def cluster_maps(self, images: Tensor) -> Tensor:
        """(B, K, s, s) probability maps: softmax over positions of cosine similarity to each centroid
        / kp_temperature (uniform before `fit_keypoints`)."""
        f = F.normalize(self.features(images).float(), dim=1)  # (B, C, s, s)
        sim = torch.einsum("bchw,kc->bkhw", f, self.centroids.float())
        return spatial_softmax(sim, self.config.kp_temperature)

    def keypoints(self, images: Tensor) -> Tensor:
        if not bool(self.fitted):
            raise RuntimeError("Contrastive.keypoints: no clusters yet; run fit_keypoints(data) after "
                               "pre-training (the recipe does), or evaluate with the head on features()")
        return soft_argmax(self.cluster_maps(images))  # (B, K, 2)

    def visuals(self, images: Tensor) -> dict[str, Tensor]:
        return {"hypercolumns": self.features(images), "clusters": self.cluster_maps(images)}

    def optimizers(self, steps: int):
        """The stage's optimiser: the query encoder's (SGD, or Adam with `adam`) for `moco`, Adam on the
        projection for `projection`. Only the trained module keeps requires_grad, so that DDP finds no unused
        parameters (the key encoder never has gradients)."""
        c = self.config
        trained = self.encoder_q if c.stage == "moco" else self.projection
        if trained is None:
            raise ValueError("stage='projection' needs use_projection=True")
        self.requires_grad_(False)
        trained.requires_grad_(True)
        if c.stage == "projection":
            opt = torch.optim.Adam(self.projection.parameters(), lr=c.proj_lr)
        elif c.adam:
            opt = torch.optim.Adam(self.encoder_q.parameters(), lr=c.learning_rate, weight_decay=c.weight_decay)
        else:
            opt = torch.optim.SGD(self.encoder_q.parameters(), lr=c.learning_rate, momentum=0.9,
                                  weight_decay=c.weight_decay)
        return opt, lr_schedule(opt, "cosine" if c.cosine else "constant", steps)

    @classmethod
    def recipe(cls, method: Contrastive, data, cfg) -> list:
        """MoCo, then the projection (with `use_projection`), then the keypoint clusters: `pretrain`."""
        return pretrain(method, data, cfg)

    def run_name(self, dataset: str, resolution: int, steps: int) -> str:
        c = self.config
        return (f"contrastive_k{c.n_parts}_{dataset}-{c.input_size}_{steps}_{c.model}_nk{c.nce_k}"
                f"_t{c.nce_t:g}_m{c.nce_m:g}_l{c.layer}" + ("_hc" if c.use_hypercol else "")
                + (f"_proj{c.proj_dim}" if c.use_projection else ""))


# the recipe: MoCo, then the projection (use_projection), then the keypoint clusters

def pretrain(method: Contrastive, data, cfg, *, fit_data=None) -> list:
    """The recipe (`Contrastive.recipe`, run by `lmkcore.train.run_recipe`): stage `moco` (cfg.steps), then
    with `use_projection` stage `projection` (`proj_steps`, the backbone frozen, started from `moco`'s weights),
    each a run of `<out_dir>/<experiment>/<stage>` (`lmkcore.train.stage`); with `cfg.steps` 0 and `cfg.init_from`
    the `moco` stage is that run's backbone, trained no further; then `fit_keypoints(fit_data or
    data)`, stored into the last stage's checkpoints. Returns the stages' `RunResult`s. Called directly,
    the experiment is `cfg.experiment`, else `cfg.run_name`, else the method's run name."""
    from ..train import default_run_name, stage, store_weights, train

    if not cfg.experiment:
        cfg = dataclasses.replace(cfg, experiment=cfg.run_name or default_run_name(method, data, cfg), run_name="")
    method.config.stage = "moco"
    results = [train(method, data, stage(cfg, "moco"))]
    if method.config.use_projection:
        method.config.stage = "projection"
        results.append(train(method, data, stage(cfg, "projection", after=results[0],
                                                  steps=method.config.proj_steps)))
    method.fit_keypoints(fit_data if fit_data is not None else data, seed=cfg.seed)
    store_weights(method, results[-1].run_dir)
    return results
