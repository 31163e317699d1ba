"""AutoLink: keypoints linked by a learned graph, trained by masked-image inpainting.

He, Wandt, Rhodin, "AutoLink: Self-supervised Learning of Human Skeletons and Object Outlines by
Linking Keypoints", NeurIPS 2022 (card: shared/methods/autolink.md).

1. A detector predicts K heatmaps; keypoints are their soft-argmax (card section 4).
2. One K x K table of edge weights, shared by the whole data set, links keypoints (section 3).
3. Keypoints and weights are rendered into an edge map of soft line segments (section 3).
4. A U-Net repaints the full image from a block-masked copy and the edge map (sections 3, 6).
5. The only loss is a perceptual reconstruction loss (section 5).

Compact-recipe additions (not in the paper; on in `AutoLinkConfig`'s defaults, the workbook's recipe,
and off in the `paper` profile and `lmkcore.profiles.PAPER_OBJECTIVE`): at CPU budgets the decoder learns to repaint from the visible blocks
alone before the edge map carries any information, so keypoints get no consistent signal. `equiv`
ties them to image content (two border-free crops of one image must agree; `tps` also bends the
crop by a thin-plate spline, so they must follow local content; `jitter`, on for MTFL in the `cpu`
profile, recolours it, so they cannot follow colour or lighting), `sep` keeps them from
collapsing onto one feature, `prior` starts them apart, `decode_scale` makes steps cheaper.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nets import Detector, UNet
from ..ops import (
    loss_gain,
    resize,
    block_mask,
    edge_map,
    pair_index,
    random_affine,
    random_colour,
    random_tps,
    reconstruction_loss,
    separation_loss,
    soft_argmax,
    spatial_softmax,
    spot_logits,
    tps_points,
    warp_images,
    warp_images_tps,
    warp_points,
)
from . import register
from .base import SCHEDULES, Method, add_term, lr_schedule, require, require_choice


@dataclass
class AutoLinkConfig:
    # a run recorded before one of these fields existed trained without that addition (`base.recorded_config`)
    ABSENT: ClassVar[dict] = dict(prior=0.0, equiv=0.0, tps=0.0, jitter=0.0, sep=0.0, decode_scale=1.0)
    # the seed's flags
    n_parts: int = 10  # number of keypoints K
    missing: float = 0.8  # ratio of hidden mask blocks
    block: int = 16  # the image is split into block x block patches
    thick: float = 5e-3  # edge thickness tau of exp(-d^2 / tau), squared normalised units (paper 2.5e-3 at 128 px)
    sklr: float = 64.0  # learning-rate multiplier of the edge weights (paper 512 with lr 1e-4)
    graph_init: float = -2.0  # initial edge logit: weights start at softplus(graph_init) (paper -4)
    head_init: float = 0.1  # scale of the heatmap head's initial weights (paper 1; small: keypoints start alike everywhere)
    prior: float = 0.3  # >0: learned per-keypoint logit maps, started as bumps this wide at K spots (0: off, paper)
    equiv: float = 50.0  # >0: weight of an equivariance term between two random crops (0: off, paper)
    tps: float = 0.08  # >0: the crops are also bent by a thin-plate spline, control points moved this much (0: similarity)
    jitter: float = 0.0  # >0: the second crop is also recoloured, factors within 1 +- this (0: same colours)
    sep: float = 1.0  # >0: weight of a separation term that keeps keypoints apart (0: off, paper)
    sep_sigma: float = 0.08  # its range, normalised units (Gaussian of the distance between two keypoints)
    # architecture (paper: resolution 128, det_base 64, det_down 4, det_up 2, dec_base 64, dec_depth 4)
    resolution: int = 64  # input size the networks see
    det_base: int = 32  # detector width
    det_down: int = 3  # residual down blocks of the detector
    det_up: int = 1  # up blocks after them (heatmaps at resolution / 2^(down - up))
    dec_base: int = 16  # decoder width
    dec_depth: int = 3  # U-Net levels (paper 4)
    decode_scale: float = 0.5  # the edge map is drawn and the image repainted at resolution x this (paper 1)
    norm: str = "batch"  # batch | group | instance
    # loss and optimisation (paper: vgg16, AdamW 1e-4, wd 1e-3, no schedule)
    loss: str = "pyramid"  # pyramid (weight-free) | l1 | vgg16 | vgg19
    ssim: float = 1.0  # weight of the pyramid loss's (1 - SSIM) term (0: Laplacian-pyramid and gradient L1 only)
    lr: float = 1.5e-3  # (paper 1e-4)
    weight_decay: float = 1e-3
    schedule: str = "cosine"  # cosine (with warmup) | constant | decay (constant, then to 0 over the last fifth)
    warmup: int = 100  # linear warm-up steps of the cosine schedule
    flip: bool = True  # random horizontal flips (paper: faces, Taichi, H36M)

    def __post_init__(self):
        require(self, n_parts=1, resolution=16, block=1, det_base=1, det_down=1, dec_base=1, dec_depth=1, thick=1e-9,
                missing=0)
        require_choice(self, schedule=SCHEDULES)
        if self.missing >= 1:
            raise ValueError(f"AutoLinkConfig.missing must be in [0, 1) (a share of blocks), got {self.missing}")
        if not 0 < self.decode_scale <= 1:
            raise ValueError(f"decode_scale must be in (0, 1] (a fraction of resolution), got {self.decode_scale}")


@register
class AutoLink(Method):
    name = "autolink"
    config_class = AutoLinkConfig
    layers = {"heatmaps": "heatmaps", "graph": "graph", "edges": "map", "masked": "image", "reconstruction": "image"}

    def __init__(self, config: AutoLinkConfig):
        super().__init__(config)
        c = config
        self.detector = Detector(c.n_parts, base=c.det_base, n_down=c.det_down, n_up=c.det_up, norm=c.norm)
        with torch.no_grad():
            self.detector.head.weight.mul_(c.head_init)
        if c.prior > 0:  # (K, h, w) logits: keypoint k starts at its own spot, the same in every image
            self.prior = nn.Parameter(spot_logits(c.n_parts, self.detector.out_size(c.resolution), c.prior))
        else:
            self.prior = None
        self.decoder = UNet(4, 3, base=c.dec_base, depth=c.dec_depth, norm=c.norm)
        # edge logits theta, w = softplus(sklr * theta): sklr acts as the graph's LR multiplier
        self.theta = nn.Parameter((torch.randn(c.n_parts, c.n_parts) / 10 + c.graph_init) / c.sklr)
        self.alpha = nn.Parameter(torch.ones(()))  # scales the masked image fed to the decoder
        self.recon = reconstruction_loss(c.loss, ssim=c.ssim)

    # 1. detector -> heatmaps -> keypoints
    def heatmaps(self, images: Tensor) -> Tensor:
        """`(B, 3, H, W)` in [0, 1] -> probability maps `(B, K, h, w)`."""
        logits = self.detector(resize(images, self.config.resolution) * 2.0 - 1.0)  # (B, K, h, w)
        return spatial_softmax(logits if self.prior is None else logits + self.prior)

    def keypoints(self, images: Tensor) -> Tensor:
        return soft_argmax(self.heatmaps(images))  # (B, K, 2)

    # 2. the graph
    def edge_weights(self) -> Tensor:
        """Weights of the K(K-1)/2 pairs i < j, in `ops.pair_index` order."""
        i, j = pair_index(self.config.n_parts, self.theta.device)
        return F.softplus(self.config.sklr * self.theta[i, j])

    def graph(self) -> Tensor:
        """Symmetric `(K, K)` edge-weight matrix (zero diagonal), for display and analysis."""
        k = self.config.n_parts
        i, j = pair_index(k, self.theta.device)
        g = self.theta.new_zeros(k, k)
        g[i, j] = self.edge_weights()
        return g + g.T

    # 3. edge map, 4. inpainting
    def reconstruct(self, images: Tensor, kp: Tensor, mask: Tensor, weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Repaint `images` (B, 3, H, W) from the masked copy and the edge map of `kp` linked by the learned
        graph (or by given pair `weights`, as `edge_map` takes them); returns (recon, edges)."""
        weights = self.edge_weights() if weights is None else weights
        edges = edge_map(kp, weights, images.shape[-2:], self.config.thick)  # (B, 1, H, W)
        masked = (images * 2.0 - 1.0) * mask  # hidden pixels become 0 (mid-grey)
        out = self.decoder(torch.cat([self.alpha * masked, edges], 1))  # (B, 3, H, W) in [-1, 1]
        return out * 0.5 + 0.5, edges

    def inputs(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """The detector's input (`resolution`) and the repainting target (`resolution * decode_scale`)."""
        x = resize(images, self.config.resolution)
        return x, resize(x, round(self.config.resolution * self.config.decode_scale), antialias=True)

    # 5. the loss
    def loss(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        images = batch["image"]
        if self.config.flip and self.training:
            flip = torch.rand(images.shape[0], device=images.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        x, target = self.inputs(images)
        mask = block_mask(target.shape[0], target.shape[-2:], self.config.block, self.config.missing,
                          device=target.device)
        kp = self.keypoints(x)  # (B, K, 2)
        recon, _ = self.reconstruct(target, kp, mask)
        loss = self.recon(recon.float(), target.float())
        logs = {"graph_mean": self.edge_weights().detach().mean()}
        if self.config.equiv > 0:  # compact-config addition: keypoints must follow the image under a warp
            eq, inside = self._equivariance(x, kp)  # (B, K) squared errors, (B, K) keypoints the crop shows
            loss = add_term(loss, logs, "equiv", self.config.equiv, (eq * inside).sum() / inside.sum().clamp_min(1))
        if self.config.sep > 0:  # compact-config addition: no two keypoints on the same spot
            loss = add_term(loss, logs, "sep", self.config.sep, separation_loss(kp, self.config.sep_sigma))
        return loss, logs

    def _equivariance(self, x: Tensor, kp: Tensor) -> tuple[Tensor, Tensor]:
        """Squared distance `(B, K)` between the keypoints `kp` of `x` and those of a warped crop of `x`,
        and which keypoints the crop shows. A rotated, zoomed crop (no border shown); with `tps`, also
        bent by a thin-plate spline and compared in `x`'s frame (where the crop's keypoints came from);
        with `jitter`, also recoloured."""
        if self.config.tps > 0:
            warp = random_tps(x.shape[0], shift=self.config.tps, device=x.device)
            view = random_colour(warp_images_tps(x, warp), self.config.jitter)
            back = tps_points(warp, self.keypoints(view))  # (B, K, 2) in x's frame
            theta = warp["theta"]
            eq = (back - kp).pow(2).sum(-1)
        else:
            theta = random_affine(x.shape[0], device=x.device)  # (B, 2, 3)
            view = random_colour(warp_images(x, theta), self.config.jitter)
            eq = (self.keypoints(view) - warp_points(kp, theta)).pow(2).sum(-1)  # in the crop's frame
        inside = (warp_points(kp.detach(), theta).abs() < 0.95).all(-1)  # keypoints the crop can show
        return eq, inside

    def _fixed_mask(self, target: Tensor) -> Tensor:
        """The same block masks every call (figures, diagnostics): `(B, 1, H, W)` for `target`."""
        g = torch.Generator(device=target.device).manual_seed(0)
        return block_mask(target.shape[0], target.shape[-2:], self.config.block, self.config.missing,
                          device=target.device, generator=g)

    def visuals(self, images: Tensor) -> dict[str, Tensor]:
        x, target = self.inputs(images)
        mask = self._fixed_mask(target)
        heat = self.heatmaps(x)
        recon, edges = self.reconstruct(target, soft_argmax(heat), mask)
        return {"heatmaps": heat, "graph": self.graph(), "edges": edges / edges.amax((2, 3), keepdim=True).clamp_min(1e-6),
                "masked": target * mask + 0.5 * (1 - mask), "reconstruction": recon.clamp(0, 1)}

    def diagnostics(self, images: Tensor) -> dict[str, float]:
        """`edge_gain`: % by which the reconstruction loss rises when the decoder is given another image's
        keypoints (same masks). Near 0, the decoder repaints from the visible blocks alone and ignores the
        edge map, so the keypoints get no signal: the failure of short CPU runs (README)."""
        x, target = self.inputs(images)
        mask = self._fixed_mask(target)
        kp = self.keypoints(x)  # (B, K, 2)
        own = self.recon(self.reconstruct(target, kp, mask)[0], target)
        other = self.recon(self.reconstruct(target, kp.roll(1, 0), mask)[0], target)  # image b gets b-1's keypoints
        return {"edge_gain": loss_gain(own, other)}

    def optimizers(self, steps: int):
        c = self.config
        decay, no_decay = [], []
        for n, p in self.named_parameters():
            (no_decay if p.dim() < 2 or n in ("theta", "prior") else decay).append(p)
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": c.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=c.lr)
        return opt, lr_schedule(opt, c.schedule, steps, c.warmup)

    def run_name(self, dataset: str, resolution: int, steps: int) -> str:
        c = self.config
        return (f"autolink_k{c.n_parts}_{dataset}-{c.resolution}_{steps}"
                f"_m{c.missing}_b{c.block}_t{c.thick:g}_sklr{c.sklr:g}")
