"""Self-training correspondence: generic keypoints, clustered into landmarks, then a detector trained on its
own pseudo-labels.

Mallis, Sanchez, Bell, Tzimiropoulos, "Unsupervised Learning of Object Landmarks via Self-Training
Correspondence", NeurIPS 2020 (card: shared/methods/mallis_self_training.md).

0. Bootstrap (card section 3, weight-free per section 11): corners + SIFT descriptors at three zooms,
   clustered into M landmark classes; pseudo-label = (x, y, cluster), each cluster once per image
   (`data.pseudo_labels.bootstrap`).
1. Step 1 (section 5): a FAN (stem + hourglass, `nets.fan`) with a detector and a descriptor head trained
   on pairs of independently warped views: detector MSE on a one-hot target per view, plus a contrastive
   loss that pulls together the descriptors of one cluster in both views and pushes apart different ones.
   After each round the labels are re-detected and re-clustered (`data.pseudo_labels.relabel`).
2. Step 2 (section 6): from the last Step-1 weights, one heatmap per surviving cluster trained by masked
   heatmap regression; channels that keep firing at the same place are merged. Keypoints are the
   arg-max per channel, the confidence its peak value (threshold 0.2): a varying number of landmarks.
   Channels detected in fewer than 80 % of the training images are discarded (section 8,
   `min_detection`; the share is measured on unlabelled training images by `fit_readout`, never on the
   images that are scored).

The recipe (`run`) calls the shared trainer once per round and once for Step 2, all under one
experiment folder `out_dir/<experiment_name>/` (run names `step1_round01`, ..., `step2`), with the
labels of every round beside them (`labels_round00.pt`, ...).
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ..nets.fan import FAN
from ..ops import random_affine, random_colour, warp_images, warp_points
from ..ops.clusters import merge_channels
from ..ops.interest import argmax_points, map_nms, sample_descriptors, stamp_maps
from . import register
from .base import Method, additions_suffix, require
from ..data.pseudo_labels import PseudoLabels


# The paper's values where the workbook's recipe (the defaults below: a compact network and schedule that
# learn on 2 CPU cores in minutes, notebook 03) differs; the `paper` benchmark profile passes these.
PAPER = dict(bootstrap_size=256, bootstrap_nms=6, n_clusters=100, max_points=100, resolution=256, stride=4, stem=64,
             width=256, depth=4, descriptor_dim=256, rounds=30, round1_steps=20000, round_steps=10000, batch_size=16,
             min_labels=9, rotate=40.0, lr=5e-4, det_sigma=0.0, detect_threshold=0.2, min_cluster_share=0.003,
             step2_steps=80000, step2_batch_size=64, stamp_sigma=0.75, step2_milestones=(0.625, 0.8125),
             merge_start=25000, merge_every=10000)


@dataclass
class SelfTrainConfig:
    """The workbook's recipe for the self-training method; `PAPER` holds the paper's values where they differ."""

    # the seed's flags
    dataset_name: str = "procedural"  # data set name (seed: CelebA | LS3D | Human3.6)
    experiment_name: str = "selftrain"  # one folder for both steps: out_dir/<experiment_name>
    # bootstrap (card sections 3, 11)
    superpoint: str = ""  # local SuperPoint v1 weights (the paper's bootstrap; never downloaded); empty: weight-free
    detector: str = "corners"  # corners (Shi-Tomasi) | sift (DoG), both with SIFT descriptors
    bootstrap_size: int = 128  # images are searched for points at this size (paper: the full image, 256)
    zooms: tuple = (1.0, 1.3, 1.6)  # detection zooms (paper x1, x1.3, x1.6)
    bootstrap_nms: int = 3  # box-NMS half-size, px at bootstrap_size (paper 6 at 256)
    corner_quality: float = 0.01  # corners: min-eigenvalue threshold as a share of the image's maximum
    desc_size: float = 12.0  # SIFT descriptor patch, px at bootstrap_size (SuperPoint's is its receptive field)
    in_box: bool = True  # keep only points inside the item's "box" (faces; MTFL: the image border filter)
    box_margin: float = 0.1  # the box enlarged by this share of its size on every side (negative: shrunk)
    outlier_drop: float = 0.4  # share of descriptors dropped as outliers (median distance to 100 nearest)
    n_clusters: int = 24  # M landmark classes (paper 100 faces, 250 Human3.6M)
    max_points: int = 60  # points per image at most, strongest first (paper 100)
    seed: int = 0  # k-means seed (faiss)
    # network (card section 4)
    resolution: int = 64  # input size (paper 256)
    stride: int = 2  # maps at resolution / stride, 2 or 4 (paper 4)
    stem: int = 16  # stem width (paper 64)
    width: int = 32  # hourglass and head width (paper 256)
    depth: int = 3  # hourglass levels (paper 4)
    descriptor_dim: int = 32  # descriptor size D (paper 256)
    # Step 1 (card section 5)
    stage: int = 1  # 1: detector + descriptors (Step 1); 2: landmark heatmaps (Step 2); set by the recipe
    round: int = 1  # the Step-1 round (1: constant LR; later: one cosine cycle); set by the recipe
    rounds: int = 2  # Step-1 rounds (paper 30)
    round1_steps: int = 150  # iterations of round 1 (paper 20 000)
    round_steps: int = 75  # iterations of every later round (paper: one warm-restart cycle, ~10 000)
    batch_size: int = 8  # Step-1 pairs per step (paper 16)
    min_labels: int = 4  # images with fewer pseudo-labels are not trained on (paper 9)
    same_image: float = 0.5  # probability that view B is image A itself (else another image)
    margin: float = 0.8  # contrastive margin on descriptor distances (paper 0.8)
    desc_weight: float = 10.0  # weight of the descriptor loss, the detector terms weigh 1 (paper 10)
    max_pairs: int = 3000  # descriptor pairs per sample, negatives counted down to fit (paper 3000)
    rotate: float = 20.0  # augmentation: rotation within +- degrees (paper 40)
    zoom: float = 0.2  # augmentation: crop side in [1 - zoom, 1] (paper scale 0.8-1.2)
    jitter: float = 0.3  # augmentation: colour factors within 1 +- jitter (paper: contrast, multiply, hue)
    lr: float = 1e-3  # RMSprop learning rate, both steps (paper 5e-4)
    weight_decay: float = 1e-5  # (paper 1e-5)
    lr_min: float = 5e-6  # end of each later round's cosine (paper eta_min 5e-6)
    det_sigma: float = 1.5  # Step-1 detector target: Gaussian of this many map pixels (paper 0: one-hot, too thin here)
    detect_threshold: float = 0.1  # re-labelling: detector output above this (paper 0.2)
    # Step 2 (card section 6)
    n_parts: int = 0  # Step-2 channels: the clusters that survive min_cluster_share (set by the recipe)
    min_cluster_share: float = 0.05  # drop clusters with fewer labels than this share of images (paper 500 of 160k)
    step2_steps: int = 500  # Step-2 iterations (paper 80 000)
    step2_batch_size: int = 16  # (paper 32 x 2 accumulated)
    stamp_sigma: float = 2.0  # Step-2 target: Gaussian of this many map pixels (paper 0.75, its 3 x 3 stamp)
    step2_milestones: tuple = (0.8,)  # LR x 0.1 at these shares of step2_steps (paper 50k, 65k of 80k)
    merge_start: int = 250  # first merging after this many Step-2 steps (paper 25 000)
    merge_every: int = 100  # then every this many steps (paper: every second epoch); 0: never
    merge_dist: float = 0.045  # peaks closer than this (normalised; paper 5.7 px at 256) fire together
    merge_ratio: float = 0.7  # merge when together in more than this share of the rarer channel's detections
    # read-out (card section 8)
    min_detection: float = 0.8  # keep channels detected (peak >= 0.2) in at least this share of images (paper 0.8)
    detection_images: int = 1000  # training images that share is measured on (paper: the 1,000-image regression set)

    # a run recorded before `min_detection` existed read out every active channel (`base.recorded_config`)
    ABSENT: ClassVar[dict] = dict(min_detection=0.0)

    def __post_init__(self):
        require(self, n_clusters=1, max_points=1, resolution=16, stride=1, stem=1, width=1, depth=1, descriptor_dim=1,
                rounds=0, round1_steps=1, round_steps=1, batch_size=1, step2_steps=1, step2_batch_size=1,
                bootstrap_size=16, detection_images=1, desc_size=1)
        if not 0.0 <= self.min_detection <= 1.0:
            raise ValueError(f"min_detection is a share of images in [0, 1], got {self.min_detection}")


@dataclass
class CosineCycle:
    """LR factor for `LambdaLR`: a cosine from 1 to `floor` over `steps` (one warm-restart cycle of the paper's
    `CosineAnnealingWarmRestarts`, which spans one later round). An object, so the scheduler saves it."""

    steps: int
    floor: float

    def __call__(self, s: int) -> float:
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * min(s, self.steps) / max(self.steps, 1)))


@register
class SelfTrain(Method):
    name = "selftrain"
    config_class = SelfTrainConfig
    layers = {"detector": "map", "heatmaps": "heatmaps", "points": "points"}
    confidence_threshold = 0.2  # a landmark counts where its peak reaches this (card sections 6, 9)

    def __init__(self, config: SelfTrainConfig):
        super().__init__(config)
        c = config
        if c.stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {c.stage}")
        if c.stage == 2 and c.n_parts < 1:
            raise ValueError("stage 2 needs n_parts >= 1 (the surviving clusters; the recipe sets it)")
        self.net = FAN(stem=c.stem, width=c.width, depth=c.depth, descriptor_dim=c.descriptor_dim,
                       n_landmarks=c.n_parts if c.stage == 2 else 0, stride=c.stride)
        m = self.n_channels
        # Step 1's clusters in this network's descriptor space (set after re-labelling; 0: not yet)
        self.register_buffer("centroids", torch.zeros(c.n_clusters, c.descriptor_dim))
        self.register_buffer("thresholds", torch.zeros(c.n_clusters))
        # Step 2: channels not merged away, and those detected often enough to be read out (`fit_readout`);
        # saved in Step 2 only, so Step-1 weights load key for key
        self.register_buffer("active", torch.ones(m, dtype=torch.bool), persistent=c.stage == 2)
        self.register_buffer("detected", torch.ones(m, dtype=torch.bool), persistent=c.stage == 2)
        # pseudo-label tables by item "index" (kept in the experiment folder, not in checkpoints)
        self.register_buffer("label_points", torch.zeros(1, m, 2), persistent=False)
        self.register_buffer("label_present", torch.zeros(1, m, dtype=torch.bool), persistent=False)
        self.register_buffer("seen_pos", torch.zeros(1, m, 2), persistent=False)  # Step 2: last peaks per image
        self.register_buffer("seen_conf", torch.zeros(1, m), persistent=False)
        self.register_buffer("seen", torch.zeros(1, dtype=torch.bool), persistent=False)
        self.label_index = torch.zeros(0, dtype=torch.long)
        self._label_clusters = (torch.zeros(m, c.descriptor_dim), torch.zeros(m))
        self.merges = 0  # merging passes run (Step 2)

    @property
    def recipe_fields(self) -> tuple[str, ...]:
        """A Step-1 round trains the same under any number of rounds, so more rounds reuse the finished
        ones; Step 2 learns the last round's labels, so it is retrained (resuming it is an error)."""
        return ("rounds",) if self.config.stage == 1 else ()

    @property
    def n_channels(self) -> int:
        return self.config.n_clusters if self.config.stage == 1 else self.config.n_parts

    @property
    def n_keypoints(self) -> int:
        return self.n_channels if self.config.stage == 1 else int(self.readout_channels.sum())

    @property
    def readout_channels(self) -> Tensor:
        """`(M,)` bool: the Step-2 channels whose landmarks are read out (not merged away, detected often)."""
        return self.active & self.detected

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a Step-2 checkpoint from before `detected` existed read out every active channel
        if self.config.stage == 2 and prefix + "active" in state_dict and prefix + "detected" not in state_dict:
            state_dict[prefix + "detected"] = torch.ones_like(state_dict[prefix + "active"])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # pseudo-labels
    def set_labels(self, labels: PseudoLabels) -> None:
        """Train on `labels` (clusters = this step's channels); looked up by each item's "index"."""
        if labels.n_clusters != self.n_channels:
            raise ValueError(f"labels have {labels.n_clusters} clusters, the stage-{self.config.stage} network "
                             f"{self.n_channels} channels")
        pts, present = labels.dense()
        dev = self.label_points.device
        self.label_points, self.label_present = pts.to(dev), present.to(dev)
        self.seen_pos, self.seen_conf = torch.zeros_like(self.label_points), torch.zeros(present.shape, device=dev)
        self.seen = torch.zeros(len(present), dtype=torch.bool, device=dev)
        self.label_index, self._label_clusters = labels.index.clone(), (labels.centroids, labels.thresholds)

    def labels(self) -> PseudoLabels:
        """The current labels (Step 2: after merging), as a `PseudoLabels`."""
        return PseudoLabels.from_dense(self.label_index, self.label_points.cpu(), self.label_present.cpu(),
                                       *self._label_clusters)

    def set_clusters(self, centroids: Tensor, thresholds: Tensor) -> None:
        """Step 1's read-out clusters, in this network's descriptor space (after `relabel`)."""
        self.centroids.copy_(centroids)
        self.thresholds.copy_(thresholds)

    def lookup(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """Labels of a batch by item index: points `(B, M, 2)`, present `(B, M)` (none for unknown items)."""
        idx = index.to(self.label_points.device).long()
        known = (idx >= 0) & (idx < len(self.label_present))
        idx = idx.clamp(0, len(self.label_present) - 1)
        return self.label_points[idx], self.label_present[idx] & known[:, None]

    # the network
    def prepare(self, images: Tensor) -> Tensor:
        """`(B, 3, H, W)` in [0, 1] at `resolution` (align_corners=True keeps normalised coordinates)."""
        r = self.config.resolution
        if images.shape[-2:] == (r, r):
            return images
        return F.interpolate(images, size=(r, r), mode="bilinear", align_corners=True)

    def view(self, x: Tensor, pts: Tensor, present: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """An augmented view (card section 7): rotated, zoomed, recoloured images `(B, 3, R, R)`, the labels
        moved exactly with the warp `(B, M, 2)` and which of them it still shows `(B, M)`."""
        c = self.config
        theta = random_affine(x.shape[0], rotate=c.rotate, zoom=c.zoom, device=x.device)  # (B, 2, 3)
        images = random_colour(warp_images(x, theta), c.jitter)
        moved = warp_points(pts.float(), theta.float())
        return images, moved, present & (moved.abs() <= 1).all(-1)

    # Step 1
    def loss(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        return self._step1(batch) if self.config.stage == 1 else self._step2(batch)

    def _step1(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        c = self.config
        x = self.prepare(batch["image"])
        pts, present = self.lookup(batch["index"])
        b = x.shape[0]
        # view B: image A itself (p = same_image) or another image of the batch
        other = (torch.arange(b, device=x.device) + torch.randint(1, max(b, 2), (1,), device=x.device)) % b
        j = torch.where(torch.rand(b, device=x.device) < c.same_image, torch.arange(b, device=x.device), other)
        enough = present.sum(1) >= c.min_labels  # (B,)
        use = (enough & enough[j]).float()
        xa, pa, oka = self.view(x, pts, present)
        xb, pb, okb = self.view(x[j], pts[j], present[j])
        feats = self.net.features(torch.cat([xa, xb]))
        det, desc = self.net.detect(feats).float(), self.net.describe(feats).float()  # (2B, 1, h, w), (2B, D, h, w)
        h, w = det.shape[-2:]
        sigma = c.det_sigma  # paper: 0, value 1 at every pseudo-label pixel
        target = stamp_maps(torch.cat([pa, pb]), torch.cat([oka, okb]), h, w, sigma,
                            max(1, math.ceil(2 * sigma))).amax(1, keepdim=True)  # (2B, 1, h, w)
        err = ((det - target) ** 2).mean((1, 2, 3))  # (2B,)
        n = use.sum().clamp_min(1)
        det_a, det_b = (err[:b] * use).sum() / n, (err[b:] * use).sum() / n  # MSE per view (card: A and B)
        desc_loss, pairs = self.contrastive(sample_descriptors(desc[:b], pa), sample_descriptors(desc[b:], pb),
                                            oka & okb & (use[:, None] > 0))
        loss = c.desc_weight * desc_loss + det_a + det_b  # card: 10 * descriptor + detector(A) + detector(B)
        return loss, {"det": (det_a + det_b).detach(), "desc": desc_loss.detach(), "pairs": pairs,
                      "labels": present.sum(1).float().mean()}

    def contrastive(self, da: Tensor, db: Tensor, both: Tensor) -> tuple[Tensor, Tensor]:
        """Contrastive descriptor loss (card section 5): descriptors `(B, M, D)` of each cluster in views A
        and B, `both` `(B, M)` clusters shown in both. Positives (c in A, c in B): squared distance;
        negatives (c in A, c' != c in B): max(0, margin - distance)^2; the mean over pairs, with at most
        `max_pairs` per sample (the negatives' weight scaled to fill what the positives leave: in
        expectation a random subset). Returns (loss, pairs per sample)."""
        d2 = (da.pow(2).sum(-1)[:, :, None] + db.pow(2).sum(-1)[:, None, :] - 2 * da @ db.transpose(1, 2)).clamp_min(0)
        eye = torch.eye(da.shape[1], dtype=torch.bool, device=da.device)
        pair = both[:, :, None] & both[:, None, :]  # (B, M, M)
        pos, neg = pair & eye, pair & ~eye
        n_pos, n_neg = pos.sum((1, 2)).float(), neg.sum((1, 2)).float()
        k = (self.config.max_pairs - n_pos).clamp_min(0).minimum(n_neg)  # negatives counted per sample
        hinge = F.relu(self.config.margin - (d2 + 1e-12).sqrt()) ** 2
        cost = (d2 * pos).sum((1, 2)) + (hinge * neg).sum((1, 2)) * k / n_neg.clamp_min(1)
        total = (n_pos + k).sum()
        return cost.sum() / total.clamp_min(1), (total / max(len(da), 1)).detach()

    # Step 2
    def heatmaps(self, images: Tensor) -> Tensor:
        """Step 2's landmark heatmaps `(B, n_parts, h, w)` (all channels, merged ones included)."""
        return self.net.heatmaps(self.net.features(self.prepare(images))).float()

    def _step2(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        x = self.prepare(batch["image"])
        pts, present = self.lookup(batch["index"])
        present = present & self.active[None]
        xv, pv, ok = self.view(x, pts, present)
        heat = self.net.heatmaps(self.net.features(xv)).float()  # (B, K, h, w)
        h, w = heat.shape[-2:]
        sigma = self.config.stamp_sigma  # 3 x 3 at the paper's 0.75 px; wider stamps reach 2 sigma
        target = stamp_maps(pv, ok, h, w, sigma, max(1, math.ceil(2 * sigma)))  # empty where the view lost it
        mask = present.float()[:, :, None, None]  # only channels labelled in the image (card section 6)
        loss = ((heat - target) ** 2 * mask).sum() / (mask.sum() * h * w).clamp_min(1)
        with torch.no_grad():  # the latest peaks per image, for merging (positions in the view's frame)
            pos, peak = argmax_points(heat.detach())
            idx = batch["index"].to(heat.device).long().clamp(0, len(self.seen) - 1)
            self.seen_pos[idx], self.seen_conf[idx], self.seen[idx] = pos, peak, True
        return loss, {"labels": present.sum(1).float().mean(), "active": self.active.sum().float()}

    def after_step(self, step: int) -> None:
        c = self.config
        if c.stage == 2 and c.merge_every > 0 and step >= c.merge_start and (step - c.merge_start) % c.merge_every == 0:
            self.merge()

    @torch.no_grad()
    def merge(self) -> int:
        """Merge channels that fire at the same place (card section 6) on the peaks seen since the last
        merge; the absorbed channel's labels move to the kept one where it has none. Returns how many merged."""
        c, rows = self.config, self.seen
        if not rows.any():
            return 0
        into = merge_channels(self.seen_pos[rows].cpu(), self.seen_conf[rows].cpu(), self.label_present.sum(0).cpu(),
                              self.active.cpu(), threshold=self.confidence_threshold, dist=c.merge_dist,
                              ratio=c.merge_ratio)
        merged = [(j, int(i)) for j, i in enumerate(into.tolist()) if i >= 0 and i != j]
        for j, i in merged:  # channels (at most K), not pixels
            take = self.label_present[:, j] & ~self.label_present[:, i]
            self.label_points[take, i] = self.label_points[take, j]
            self.label_present[:, i] |= take
            self.label_present[:, j] = False
            self.active[j] = False
        self.seen.zero_()
        self.merges += 1
        return len(merged)

    # read-out
    @torch.no_grad()
    def detection_share(self, data, batch_size: int = 64) -> Tensor:
        """`(M,)` share of the first `detection_images` images of `data` in which each channel's peak reaches
        `confidence_threshold` (Step 2; merged channels included, for the record)."""
        n = min(len(data), self.config.detection_images)
        if n == 0:
            raise ValueError("detection_share: the data set is empty")
        hits = torch.zeros(self.n_channels)
        dev = self.active.device
        for s in range(0, n, batch_size):
            x = torch.stack([data[i]["image"] for i in range(s, min(n, s + batch_size))]).to(dev)
            _, peak = argmax_points(self.net.heatmaps(self.net.features(self.prepare(x))).float())  # (B, M)
            hits += (peak >= self.confidence_threshold).sum(0).cpu()
        return hits / n

    def fit_readout(self, data) -> None:
        """Step 2: keep the active channels detected in at least `min_detection` of the training images
        (card section 8). Unlabelled images only; where no channel reaches the share, every active channel
        is kept, with a warning naming the best share."""
        if self.config.stage != 2:
            return
        n = min(len(data), self.config.detection_images)
        self.detected.copy_(self.keep_detected(self.detection_share(data).to(self.active.device), n))

    def keep_detected(self, share: Tensor, n_images: int) -> Tensor:
        """`(M,)` bool: the card's rule on `share` `(M,)`, each channel's detection share over `n_images`
        training images: the channels detected in at least `min_detection`; where no active one is, all."""
        keep = share >= self.config.min_detection
        if not (keep & self.active).any():
            best = float(share[self.active].max()) if self.active.any() else 0.0
            warnings.warn(f"selftrain: no active channel is detected in {self.config.min_detection:.0%} of "
                          f"{n_images} training images (best {best:.0%}): "
                          "every active channel is read out; lower min_detection or train Step 2 longer")
            keep = torch.ones_like(keep)
        return keep

    def _readout(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Keypoints `(B, K, 2)` and confidences `(B, K)`. Step 2: arg-max and peak of each read-out channel.
        Step 1: per cluster, the pixel whose descriptor is nearest its centroid, confidence 1 where that
        distance is within the cluster's threshold (the cluster is found in the image), else 0."""
        feats = self.net.features(self.prepare(images))
        if self.config.stage == 2:
            kp, peak = argmax_points(self.net.heatmaps(feats).float()[:, self.readout_channels])
            return kp, peak.clamp(0, 1)
        desc = F.normalize(self.net.describe(feats).float(), dim=1)  # (B, D, h, w)
        b, _, h, w = desc.shape
        dist = torch.cdist(self.centroids[None].expand(b, -1, -1), desc.flatten(2).transpose(1, 2))  # (B, M, hw)
        kp, _ = argmax_points((2.0 - dist).view(b, -1, h, w))
        return kp, (dist.min(-1).values < self.thresholds).float()

    def keypoints(self, images: Tensor) -> Tensor:
        return self._readout(images)[0]

    def features(self, images: Tensor) -> Tensor:
        """The hourglass's dense features `(B, width, h, w)` (for the supervised-head evaluation)."""
        return self.net.features(self.prepare(images)).float()

    def confidence(self, images: Tensor) -> Tensor:
        return self._readout(images)[1]

    def visuals(self, images: Tensor) -> dict[str, Tensor]:
        """detector map `(B, 1, h, w)`; heatmaps `(B, K, h, w)` (Step 2: read-out channels; Step 1: similarity
        to each centroid); points `(B, N, 3)`: Step 1 the detector's points (> detect_threshold, NMS)
        labelled by nearest cluster within its threshold (-1: none), Step 2 the landmarks labelled by
        channel where confident; unused rows are (NaN, NaN, -1)."""
        feats = self.net.features(self.prepare(images))
        det = self.net.detect(feats).float()
        b, _, h, w = det.shape
        if self.config.stage == 2:
            heat = self.net.heatmaps(feats).float()[:, self.readout_channels]
            kp, peak = argmax_points(heat)
            lab = torch.arange(kp.shape[1], device=kp.device).expand(b, -1).float()
            points = torch.cat([kp, torch.where(peak >= self.confidence_threshold, lab, -1.0)[..., None]], -1)
            return {"detector": det, "heatmaps": heat.clamp(0, 1), "points": points}
        desc = F.normalize(self.net.describe(feats).float(), dim=1)
        sim = 1.0 - torch.cdist(self.centroids[None].expand(b, -1, -1), desc.flatten(2).transpose(1, 2)) / 2
        score = det * (map_nms(det, 1) & (det > self.config.detect_threshold))
        top = score.flatten(1).topk(min(self.config.max_points, h * w), dim=1)
        xy = torch.stack([top.indices % w, top.indices // w], -1).float() / torch.tensor(
            [w - 1, h - 1], device=det.device) * 2 - 1  # (B, N, 2)
        d = torch.cdist(F.normalize(sample_descriptors(desc, xy), dim=-1), self.centroids[None].expand(b, -1, -1))
        dmin, lab = d.min(-1)
        lab = torch.where(dmin < self.thresholds[lab], lab.float(), -1.0)
        pad = torch.tensor([float("nan"), float("nan"), -1.0], device=det.device)  # no point: not drawn
        points = torch.where((top.values > 0)[..., None], torch.cat([xy, lab[..., None]], -1), pad)
        return {"detector": det, "heatmaps": sim.clamp(0, 1).view(b, -1, h, w), "points": points}

    def optimizers(self, steps: int):
        c = self.config
        opt = torch.optim.RMSprop(self.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        if c.stage == 2:  # StepLR x 0.1 at the milestones (card section 6)
            marks = sorted({max(1, round(m * steps)) for m in c.step2_milestones})
            return opt, torch.optim.lr_scheduler.MultiStepLR(opt, marks, gamma=0.1)
        if c.round == 1:  # round 1: constant LR
            return opt, None
        # later rounds: one cosine cycle from lr to lr_min (the paper's warm-restart cycle is one round)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, CosineCycle(steps, c.lr_min / c.lr))

    def run_name(self, dataset: str, resolution: int, steps: int) -> str:
        """`steps` is the trainer's, which the recipe does not use; a schedule other than the recipe's
        (rounds, round1_steps, round_steps, step2_steps) is named: `_r2x1000-500_s3000`; the read-out's
        `min_detection` where > 0: `_det0.8`; an in-box filter of another margin than the default: `_box-0.25`;
        Step-1 pairs per step other than the default: `_b32`."""
        c, default = self.config, SelfTrainConfig()
        schedule = ""
        if any(getattr(c, f) != getattr(default, f) for f in ("rounds", "round1_steps", "round_steps", "step2_steps")):
            schedule = f"_r{c.rounds}x{c.round1_steps}-{c.round_steps}_s{c.step2_steps}"
        schedule += f"_b{c.batch_size}" if c.batch_size != default.batch_size else ""
        box = f"_box{c.box_margin:g}" if c.in_box and c.box_margin != default.box_margin else ""
        det = additions_suffix(det=c.min_detection)  # the read-out rule: on the experiment's name, as the schedule
        return f"selftrain_m{c.n_clusters}_{dataset}-{c.resolution}_{steps}{schedule}{box}{det}_step{c.stage}"

    @classmethod
    def recipe(cls, method: "SelfTrain", data, cfg) -> list:
        """The trainer's entry (`train.run_recipe`, `python -m lmkcore.train --method selftrain`): both steps
        with `method`'s config in the experiment `cfg.experiment` (`run`); the stages' `RunResult`s. The data
        set's name is the trainer's `dataset` where one is given (the command line's `--dataset`, the bench),
        else the config's `dataset_name`."""
        from ..train import TrainConfig

        name = cfg.dataset if cfg.dataset != TrainConfig.dataset else method.config.dataset_name
        return run(dataclasses.replace(method.config, dataset_name=name), data, cfg)[1]["results"]


# the recipe: bootstrap, Step-1 rounds, Step 2, each a stage (a run) of the shared trainer

def save_method(method: SelfTrain, path: Path, *, step: int, dataset: str, resolution: int) -> None:
    """A checkpoint in the trainer's layout (`checkpoint.load_method` and `init_from` read it), written to a
    temporary file and renamed (as `checkpoint.save_atomic`, which imports the method registry: a circle)."""
    import os

    from ..provenance import git_commit

    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({"method": method.name, "config": method.config_dict(), "run": path.stem, "dataset": dataset,
                "resolution": resolution, "commit": git_commit(), "model": method.state_dict(), "step": step}, tmp)
    os.replace(tmp, path)


def run(config: SelfTrainConfig, data, train_cfg=None, *, log=print) -> tuple[SelfTrain, dict]:
    """Both steps on `data` (items with "image", "index", and "box" where `in_box`), in the experiment
    `out_dir/<experiment>/` (`train_cfg.experiment`, else `config.experiment_name`): labels_round00.pt
    (bootstrap); per round a trainer stage step1_roundNN/ started from the previous round's weights
    (`init_from`) and labels_roundNN.pt (re-labelled after it); step1.pt (the last Step-1 network with its
    clusters); labels_step2_start.pt; the stage step2/ started from step1.pt; and after merging
    labels_step2.pt and step2.pt (the network to evaluate). With `train_cfg.resume`, finished stages and
    label files are reused. Returns the Step-2 method and {"dir", "counts" (labels per cluster, per
    round), "results" (the stages' `RunResult`s)}."""
    from ..train import TrainConfig, stage, store_weights, train
    from ..data.pseudo_labels import bootstrap, relabel

    train_cfg = train_cfg or TrainConfig()
    base = dataclasses.replace(train_cfg, experiment=train_cfg.experiment or config.experiment_name,
                               dataset=config.dataset_name)
    exp = Path(base.out_dir) / base.experiment
    device = "cuda" if torch.cuda.is_available() and base.device in ("auto", "cuda") else "cpu"
    resolution = int(data[0]["image"].shape[-1])

    def labels_at(name: str, make) -> PseudoLabels:
        f = exp / name
        if base.resume and f.is_file():
            return PseudoLabels.load(f)
        labels = make()
        labels.save(f)
        return labels

    labels = labels_at("labels_round00.pt", lambda: bootstrap(data, config))
    counts, results = [labels.counts()], []
    log(f"bootstrap: {len(labels.points)} labels on {len(labels.index)} images, {config.n_clusters} clusters")
    for r in range(1, config.rounds + 1):
        method = SelfTrain(dataclasses.replace(config, stage=1, round=r))
        method.set_labels(labels)
        results.append(train(method, data, stage(
            base, f"step1_round{r:02d}", results[-1] if results else None,
            steps=config.round1_steps if r == 1 else config.round_steps, batch_size=config.batch_size)))
        labels = labels_at(f"labels_round{r:02d}.pt", lambda: relabel(method, data, labels, device=device))
        method.set_clusters(labels.centroids.to(method.centroids.device), labels.thresholds.to(method.centroids.device))
        counts.append(labels.counts())
        log(f"round {r}: {len(labels.points)} labels, {labels.per_image().float().mean():.1f} per image")
    save_method(method, exp / "step1.pt", step=results[-1].step, dataset=config.dataset_name, resolution=resolution)

    # Step 2: one channel per cluster with enough labels, from the last Step-1 weights (fresh landmark layer)
    keep = labels.counts() >= max(1, math.ceil(config.min_cluster_share * len(labels.index)))
    if not keep.any():
        raise RuntimeError(f"no cluster has {config.min_cluster_share:.3%} of the images' labels: lower "
                           "min_cluster_share or train Step 1 longer")
    start = labels.select(keep)
    start.save(exp / "labels_step2_start.pt")
    method = SelfTrain(dataclasses.replace(config, stage=2, n_parts=int(keep.sum())))
    method.set_labels(start)
    step2 = stage(base, "step2", steps=config.step2_steps, batch_size=config.step2_batch_size)
    results.append(train(method, data, dataclasses.replace(step2, init_from=str(exp / "step1.pt"))))
    if config.merge_every > 0 and method.merges == 0 and results[-1].step >= config.merge_start:
        method.merge()  # a trainer without `after_step` never merged: merge once on the peaks of the last steps
    method.eval()
    method.fit_readout(data)  # channels detected in fewer than min_detection of the training images are not read out
    store_weights(method, results[-1].run_dir)  # the stage's checkpoints (what is evaluated) with merges and read-out
    method.labels().save(exp / "labels_step2.pt")
    save_method(method, exp / "step2.pt", step=results[-1].step, dataset=config.dataset_name, resolution=resolution)
    log(f"step 2: {int(keep.sum())} channels, {int(method.active.sum())} after merging, {method.n_keypoints} "
        f"detected in {config.min_detection:.0%} of {min(len(data), config.detection_images)} training images")
    return method, {"dir": exp, "counts": counts, "results": results}
