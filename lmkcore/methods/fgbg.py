"""Pose, appearance and background: Gaussian landmarks, a foreground mask and a background branch.

Dundar, Shih, Garg, Pottorff, Tao, Catanzaro, "Unsupervised Disentanglement of Pose, Appearance and
Background from Images and Videos", arXiv 2001.09518 (card: shared/methods/dundar_pose_appearance_background.md;
seed 003). Built on the part-based machinery (`ops.parts`, `nets.PartEncoder`, `nets.PartGenerator`); what is
new here is the pair, the Gaussian read-out, the mask and the background.

1. Pair (card section 2): image a and a partner b with the same appearance in another pose: a later frame
   of the clip (`use_temporal`, items with "image2", `data.pairs.FramePairs`) and / or a thin-plate-spline
   warp (`use_warped`, made in the loss). The shape stream sees a colour-jittered a; the target is clean a.
2. Landmarks (section 4): K softmax maps, each summarised as a Gaussian: mean and covariance
   (`ops.parts.part_statistics`), or the fixed `fixed_covar` I (`use_identity_covariance`), rendered as
   G_k(u) = 1 / (1 + (u - mu_k)^T Sigma_k^-1 (u - mu_k)) (`ops.parts.render_parts`).
3. Appearance (section 3): per-landmark vectors pooled under b's part maps (`ops.parts.pool_appearance`),
   splatted onto a's Gaussians; the generator paints the FOREGROUND from them.
4. Foreground / background (section 3, `use_fg_bg_mask`): mask m = sigmoid(U-Net(G(a))); the background
   net paints the background from b with b's own predicted foreground removed, b (1 - m_b); the output is
   m_a * foreground + (1 - m_a) * background.
5. Losses (section 5): perceptual reconstruction of clean a (`vgg_lambda`; VGG-19 where its ImageNet
   weights are in the torch cache, else the workbook's weight-free pyramid loss), optional multi-scale
   PatchGAN with LSGAN targets (`use_gan`, its own optimiser). The paper has no equivariance term: the pair
   does it.

Differences from the public code: the shape/appearance encoder is the part-based hourglass (the card's
U-Nets add their skips; here the appearance stage sees the stem features plus the part maps, as the card's
appearance U-Net sees the shape encoder's first features plus the part maps); the generator is the
part-based U-shaped decoder, not SPADE; the pair's warp and colour jitter are the shared `ops.tps` /
`ops.colour` "dundar" presets (the card's values, made on the batch in the loss); appearance is pooled as a sum under the maps (the code's mean over
64 x 64 pixels is the same up to 1/4096); the VGG loss is the workbook's (L1 on ImageNet-normalised inputs at
relu1_2 .. relu4_4), not the card's MSE at relu*_2 on [-1, 1] inputs; no gradient clipping (BBC config: off).
The compact recipe (the defaults) adds four terms of the part-based method: `prior` and `sep` (landmarks start
apart and stay apart) and, where the partner is a known warp of a (`use_warped` without `use_temporal`), its
mean and covariance equivariance `c_trans`, `c_precision_trans` (a's Gaussians and the partner's, carried back
through the warp, agree: what ties landmarks to places on the object rather than to the warp); the `paper`
profile turns all four off.
`rec_loss=pixel` reconstructs with the part-based card's loss instead, squared error under discs around a's
landmarks (`ops.parts.masked_pixel_loss`; the cpu profile's choice on faces, reports/fgbg).
`symmetric` makes the pair the part-based method's: the partner is rebuilt too, from a's appearance over a's
background, its target recoloured by a's jitter (the colours that appearance carries).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import LandmarkStore, ProceduralFigures
from ..data.pairs import FramePairs
from ..data.procedural import ProceduralPairs
from ..nets import PartEncoder, PartGenerator, UNet, generator_sizes
from ..ops import (COLOUR_PRESETS, TPS_PRESETS, adjust_colour, colour_jitter, loss_gain, random_tps_views,
                   reconstruction_loss, resize, separation_loss)
from ..ops.colour import colour_of
from ..ops.parts import (encode_parts, equivariance_losses, layout_diagnostics, masked_pixel_loss, part_statistics,
                         pool_appearance, precision_factor, render_parts, transport_statistics)
from ..ops.tps import unmap_points
from . import register
from .base import (SCHEDULES, Method, add_term, additions_suffix, lr_schedule, require, require_choice,
                   schedule_suffix)


@dataclass
class FgBgConfig:
    # the seed's options (configs/defaults.yaml)
    n_landmarks: int = 10  # number of landmarks K (paper and BBC config 30)
    use_identity_covariance: bool = False  # Gaussians of fixed covariance fixed_covar I instead of fitted ones
    fixed_covar: float = 0.05  # the diagonal of that covariance, normalised units (BBC config 0.008)
    use_temporal: bool = True  # partner = another frame of the clip (items with "image2": `training_pairs`)
    use_warped: bool = False  # partner = a thin-plate-spline warp (of the image, or of the other frame; still images)
    use_gan: bool = False  # add the multi-scale PatchGAN (LSGAN) with its own optimiser
    use_fg_bg_mask: bool = True  # foreground mask and background branch (the paper's contribution)
    use_DDP: bool = False  # recorded; DDP is launched by torchrun (the trainer reads RANK / WORLD_SIZE)
    dataset_path: str = "procedural"  # data the run trains on (a store or a procedural name)
    save_path: str = "runs"  # where run directories go
    img_size: int = 64  # input and output size (paper 128); landmark maps at img_size / 2
    # architecture (paper: nsf / naf U-Nets, SPADE ngf 64, n_filters 32, mask and background U-Nets of 32)
    stem: int = 32  # width of the encoder's first convolution
    channels: int = 64  # hourglass width
    depth: int = 3  # shape-hourglass depth
    app_depth: int = 1  # appearance-hourglass depth
    n_filters: int = 32  # appearance vector length (card: 32)
    gen_base: int = 16  # generator width at img_size (doubling towards coarse sizes)
    gen_max: int = 128  # generator's widest stage
    feature_levels: int = 3  # coarsest generator sizes that receive the splatted appearance
    mask_base: int = 16  # mask U-Net width (card 32)
    mask_depth: int = 2  # mask U-Net depth (card 3)
    bg_base: int = 16  # background U-Net width (card 32)
    bg_depth: int = 2  # background U-Net depth (card 3)
    # views (card sections 2, 6; the shared presets of ops.colour / ops.tps)
    colour_jitter: str = "dundar"  # colour change of the shape stream's input (dundar: ColorJitter 0.4, 0.4, 0.4, hue 0.3; none)
    tps_preset: str = "dundar"  # warp of the partner (dundar: 10 x 10 grid, +-2 px, rotation +-pi/8, scale 1.05-1.15, +-10 px at 128)
    # losses and optimisation (card sections 5, 7)
    rec_loss: str = "auto"  # auto (vgg19 if its weights are cached, else pyramid) | pyramid | l1 | vgg19 | vgg16 |
    # pixel (the part-based card's: squared error under discs around the output's landmarks, not in this paper)
    vgg_lambda: float = 1.0  # reconstruction weight (BBC config 5)
    gan_lambda: float = 1.0  # generator's adversarial weight
    lr: float = 1e-3  # Adam learning rate (card default; BBC 1e-4)
    lr_d: float = 1e-3  # discriminator's Adam learning rate
    weight_decay: float = 5e-6  # Adam weight decay (card)
    schedule: str = "constant"  # lr: constant (card) | cosine | decay (to 0 over the last fifth); fitted to a time cap
    # additions of the compact recipe, not in the paper (the part-based method's and AutoLink's:
    # ops.heatmaps.spot_logits, ops.losses.separation_loss); the `paper` profile turns them off
    prior: float = 0.3  # >0: learned logits added to the landmark logits, started as bumps this wide at K spots (0: paper)
    sep: float = 1.0  # >0: weight of a separation term that keeps landmark means apart (0: paper)
    sep_sigma: float = 0.08  # its range, normalised units
    c_trans: float = 5.0  # >0: weight of the part-based mean equivariance between a and its warp (0: paper); only
    # where the partner IS a warp of a (use_warped, use_temporal off): another frame has no known map to a
    c_precision_trans: float = 1.0  # >0: weight of the part-based covariance equivariance, on the same premise and
    # with fitted covariances (0: paper): 14.41 against 17.57 % IOD without it on held-out fit faces at 1,000 steps
    symmetric: bool = False  # also rebuild the partner from a's appearance over a's background (the part-based
    # method's pair: both views are targets; the partner's target takes a's colour jitter). Off: the paper, and
    # the recipe (it lost on held-out fit faces, reports/fgbg)

    # what checkpoints from before these fields ran
    ABSENT: ClassVar[dict] = dict(prior=0.0, sep=0.0, c_trans=0.0, c_precision_trans=0.0, symmetric=False)

    def __post_init__(self):
        require(self, n_landmarks=1, img_size=16, stem=1, channels=1, depth=1, n_filters=1, c_trans=0, c_precision_trans=0)
        require_choice(self, rec_loss=("auto", "pyramid", "l1", "vgg16", "vgg19", "pixel"),
                       schedule=SCHEDULES, colour_jitter=sorted(COLOUR_PRESETS), tps_preset=sorted(TPS_PRESETS))
        if not (self.use_temporal or self.use_warped):
            raise ValueError("use_temporal or use_warped must be on: the partner must show another pose")
        if self.fixed_covar <= 0:
            raise ValueError(f"fixed_covar must be > 0, got {self.fixed_covar}")
        generator_sizes(self.img_size)  # raises unless img_size / 4 is a power of two >= 2

    @property
    def resolution(self) -> int:  # the name the trainer's command line and checkpoints use
        return self.img_size

    @property
    def equivariance_weights(self) -> tuple[float, float]:
        """(c_trans, c_precision_trans) as they act: both need a partner that IS a known warp of a (`use_warped`
        without `use_temporal`), the covariance term fitted covariances (not `use_identity_covariance`)."""
        warped_only = self.use_warped and not self.use_temporal
        return (self.c_trans if warped_only else 0.0,
                self.c_precision_trans if warped_only and not self.use_identity_covariance else 0.0)


def training_pairs(data, config: FgBgConfig, gap: tuple[int, int] = (3, 39)):
    """The data a `config` trains on: with `use_temporal`, items with a second frame "image2" (procedural
    figures -> `ProceduralPairs`, the same figures in a second pose over the same background; a store of clips ->
    `data.pairs.FramePairs` with the card's offsets of 3-39 frames); data that already has "image2", or any data
    without `use_temporal`, as it is."""
    if not config.use_temporal or "image2" in data[0]:
        return data
    if isinstance(data, ProceduralFigures):
        return ProceduralPairs(data.n, data.size, data.seed, data.style)
    if isinstance(data, LandmarkStore):
        return FramePairs(data, gap=gap)
    raise ValueError(f"use_temporal=True needs pairs of frames; {type(data).__name__} has no 'image2' and is not a "
                     "procedural data set or a store of clips (still images: use_temporal=False, use_warped=True)")


def rec_loss_kind(kind: str) -> str:
    """`auto` -> "vgg19" where torchvision's ImageNet VGG-19 weights are in the torch cache, else "pyramid"."""
    if kind != "auto":
        return kind
    from ..ops.losses import _cached_vgg_weights

    try:
        _cached_vgg_weights("vgg19")
        return "vgg19"
    except (FileNotFoundError, ImportError, AttributeError):
        return "pyramid"


def composite(mask: Tensor, foreground: Tensor, background: Tensor) -> Tensor:
    """m * foreground + (1 - m) * background: `(B, 1, H, W), (B, 3, H, W), (B, 3, H, W) -> (B, 3, H, W)`."""
    return mask * foreground + (1.0 - mask) * background


class PatchGAN(nn.Module):
    """pix2pixHD's multi-scale PatchGAN (card section 5): at `scales` sizes (the image, then halved),
    `layers` 4 x 4 stride-2 convolutions (InstanceNorm after the first, LeakyReLU 0.2) then a 4 x 4
    convolution to one logit per patch. `(B, 3, H, W)` in [0, 1] -> a list of `(B, 1, h_s, w_s)`."""

    def __init__(self, base: int = 64, layers: int = 3, scales: int = 2):
        super().__init__()

        def one() -> nn.Sequential:
            mods, cin = [], 3
            for i in range(layers):
                w = base * min(2**i, 8)
                mods += [nn.Conv2d(cin, w, 4, stride=2, padding=1)] + ([nn.InstanceNorm2d(w)] if i else [])
                mods += [nn.LeakyReLU(0.2)]
                cin = w
            return nn.Sequential(*mods, nn.Conv2d(cin, 1, 4, padding=1))

        self.nets = nn.ModuleList(one() for _ in range(scales))

    def forward(self, images: Tensor) -> list[Tensor]:
        x, out = images * 2.0 - 1.0, []
        for net in self.nets:
            out.append(net(x))
            x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        return out


@register
class FgBg(Method):
    name = "fgbg"
    config_class = FgBgConfig
    layers = {"gaussians": "heatmaps", "covariances": "covariances", "mask": "map", "background": "image",
              "foreground": "image", "reconstruction": "image", "transfer": "image"}

    def __init__(self, config: FgBgConfig):
        super().__init__(config)
        c, k = config, config.n_landmarks
        self.encoder = PartEncoder(k, in_dim=c.img_size, map_dim=c.img_size // 2, stem=c.stem, channels=c.channels,
                                   depth=c.depth, app_depth=c.app_depth, n_features=c.n_filters, dropout=0.0,
                                   prior=c.prior)
        self.sizes = generator_sizes(c.img_size)
        enc = [k + (c.n_filters if i < c.feature_levels else 0) for i in range(len(self.sizes))]
        self.generator = PartGenerator(enc, c.img_size, base=c.gen_base, max_width=c.gen_max)
        if c.use_fg_bg_mask:
            self.mask_net = UNet(k, 1, base=c.mask_base, depth=c.mask_depth, norm="instance")
            self.background_net = UNet(3, 3, base=c.bg_base, depth=c.bg_depth, norm="instance")
        else:  # the instance's layers: no mask, no background
            self.layers = {n: kind for n, kind in type(self).layers.items() if n not in ("mask", "background")}
        self.rec_kind = rec_loss_kind(c.rec_loss)
        self.recon = None if self.rec_kind == "pixel" else reconstruction_loss(self.rec_kind)
        self.discriminator = PatchGAN() if c.use_gan else None

    @property
    def n_keypoints(self) -> int:
        return self.config.n_landmarks

    def training_data(self, data):
        """What this method trains on, made from a data set of single images: `training_pairs` (a hook for the
        trainer's command line and the bench: with `use_temporal`, frame pairs)."""
        return training_pairs(data, self.config)

    # 2, 3: landmarks as Gaussians, appearance under the part maps
    def encode(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """`(B, 3, H, W)` in [0, 1] -> part maps `(B, K, m, m)`, means `(B, K, 2)`, covariances `(B, K, 2, 2)`
        (fixed_covar I with `use_identity_covariance`), appearance `(B, K, n_filters)`."""
        c = self.config
        maps, feats = self.encoder(resize(images, c.img_size, antialias=True))
        mu, cov = part_statistics(maps)
        if c.use_identity_covariance:
            cov = c.fixed_covar * torch.eye(2, device=mu.device, dtype=mu.dtype).expand_as(cov)
        return maps, mu, cov, pool_appearance(feats, maps)

    def precision(self, cov: Tensor) -> Tensor | float:
        """What `render_parts` takes for G_k = 1 / (1 + d^T Sigma^-1 d): Sigma^-1/2 factors, or 1 / sqrt(fixed_covar)."""
        c = self.config
        return 1.0 / math.sqrt(c.fixed_covar) if c.use_identity_covariance else precision_factor(cov, 1.0)

    def gaussians(self, mu: Tensor, cov: Tensor, size: int) -> Tensor:
        """Rendered landmarks `(B, K, size, size)`, peak 1 at each mean (card section 4)."""
        return render_parts(mu, self.precision(cov), size, size)

    def keypoints(self, images: Tensor) -> Tensor:
        return self.encode(images)[1]  # (B, K, 2) Gaussian means

    def covariances(self, images: Tensor) -> Tensor:
        return self.encode(images)[2]  # (B, K, 2, 2)

    # 3, 4: foreground, mask, background
    def foreground(self, mu: Tensor, cov: Tensor, appearance: Tensor) -> Tensor:
        """The generator's image `(B, 3, S, S)` in [0, 1] from Gaussians and per-landmark appearance `(B, K, C)`."""
        enc = encode_parts(mu, self.precision(cov), appearance, self.sizes, self.config.feature_levels)
        return self.generator(enc)

    def mask_of(self, mu: Tensor, cov: Tensor) -> Tensor:
        """Foreground mask `(B, 1, S, S)` in [0, 1] predicted from the rendered Gaussians alone."""
        s = self.config.img_size
        return torch.sigmoid(self.mask_net(self.gaussians(mu, cov, s)))

    def background(self, partner: Tensor, partner_mask: Tensor) -> Tensor:
        """The background `(B, 3, S, S)` in [0, 1] painted from the partner `(B, 3, S, S)` with its own
        predicted foreground removed: U-Net(partner * (1 - partner_mask))."""
        return torch.sigmoid(self.background_net(partner * (1.0 - partner_mask)))

    def render(self, mu: Tensor, cov: Tensor, appearance: Tensor, partner: Tensor | None = None,
               partner_stats: tuple[Tensor, Tensor] | None = None) -> dict[str, Tensor]:
        """The output for pose (mu, cov) and appearance, over the background of `partner`, whose own predicted
        foreground (from its Gaussians `partner_stats`, a (mu, cov) pair) is removed: "foreground", and with
        `use_fg_bg_mask` "mask", "background"; "output" `(B, 3, S, S)`."""
        fg = self.foreground(mu, cov, appearance)
        if not self.config.use_fg_bg_mask:
            return {"foreground": fg, "output": fg}
        mask = self.mask_of(mu, cov)
        bg = self.background(partner, self.mask_of(*partner_stats))
        return {"foreground": fg, "mask": mask, "background": bg, "output": composite(mask, fg, bg)}

    def transfer(self, pose_images: Tensor, appearance_images: Tensor) -> Tensor:
        """Image b with the landmarks of `pose_images[b]` and the appearance (and background) of
        `appearance_images[b]`: `(B, 3, H, W), (B, 3, H, W) -> (B, 3, S, S)`."""
        _, mu, cov, _ = self.encode(pose_images)
        _, mu_b, cov_b, app_b = self.encode(appearance_images)
        partner = resize(appearance_images, self.config.img_size, antialias=True)
        return self.render(mu, cov, app_b, partner, (mu_b, cov_b))["output"]

    def mask(self, images: Tensor) -> Tensor:
        """Each image's predicted foreground `(B, 1, S, S)` in [0, 1], from its own Gaussians."""
        if not self.config.use_fg_bg_mask:
            raise ValueError("this model has no foreground mask (use_fg_bg_mask=False)")
        _, mu, cov, _ = self.encode(images)
        return self.mask_of(mu, cov)

    # 1: the pair
    def pair(self, batch: dict) -> tuple[Tensor, Tensor, Tensor, dict | None, Tensor]:
        """(shape input, target, partner) `(B, 3, S, S)` each: colour-jittered a, clean a, and the partner
        (the other frame and / or a TPS warp); the warp's params where the partner is a warp of a itself
        (`use_warped` without `use_temporal`; else None), for `ops.tps.unmap_points`; the jitter's params
        `(B, 4)` (`ops.colour.adjust_colour`)."""
        c = self.config
        image = resize(batch["image"], c.img_size, antialias=True)
        if c.use_temporal:
            if "image2" not in batch:
                raise ValueError("use_temporal=True needs items with 'image2' (another frame of the clip: "
                                 "lmkcore.data.pairs.FramePairs); for still images use use_temporal=False, use_warped=True")
            partner = resize(batch["image2"], c.img_size, antialias=True)
        else:
            partner = image
        warp = None
        if c.use_warped:
            partner, _, warp = random_tps_views(partner, c.tps_preset)  # (B, 3, S, S), border replicated
        jittered, colour = colour_jitter(image, c.colour_jitter)
        return jittered, image, partner, None if c.use_temporal else warp, colour

    # 5: losses
    def loss(self, batch: dict, opt_index: int = 0) -> tuple[Tensor, dict[str, Tensor]]:
        c = self.config
        shape_in, target, partner, warp, colour = self.pair(batch)
        if opt_index == 1:
            return self._discriminator_loss(shape_in, target, partner)
        b = len(target)
        inputs = torch.cat([shape_in, partner])  # (2B, 3, S, S)
        maps, feats = self.encoder(inputs)  # (2B, K, m, m), (2B, C, m, m): one pass
        mu, cov = part_statistics(maps)
        if c.use_identity_covariance:
            cov = c.fixed_covar * torch.eye(2, device=mu.device, dtype=mu.dtype).expand_as(cov)
        if c.symmetric:  # a from the partner's appearance and background, and the partner from a's
            swap = torch.arange(2 * b, device=mu.device).roll(b)  # (2B,): item i's partner
            app = pool_appearance(feats, maps)[swap]  # (2B, K, C)
            out = self.render(mu, cov, app, inputs[swap], (mu[swap], cov[swap]))
            # the partner's target wears a's jitter: the colours its appearance and background come from
            additive = colour_of(c.colour_jitter).additive_brightness
            target = torch.cat([target, adjust_colour(partner, colour, additive)])
        else:
            app_b = pool_appearance(feats[b:], maps[b:])  # (B, K, C): the partner's appearance
            out = self.render(mu[:b], cov[:b], app_b, partner, (mu[b:], cov[b:]))
        if self.recon is None:  # `pixel`: the part-based card's loss, under the landmarks of what is rebuilt
            rec = masked_pixel_loss(out["output"], target, mu if c.symmetric else mu[:b])
        else:
            rec = self.recon(out["output"].float(), target.float())  # card section 5
        loss = c.vgg_lambda * rec
        logs = {"rec": rec.detach()}
        if c.sep > 0:  # compact-recipe addition: no two landmarks on one spot
            loss = add_term(loss, logs, "sep", c.sep, separation_loss(mu, c.sep_sigma))
        w_trans, w_prec = c.equivariance_weights
        if w_trans > 0 or w_prec > 0:  # compact-recipe addition: a's Gaussians = the partner's, carried back to a's frame
            # the partner's Gaussians in a's frame; the warp's Jacobian only where the covariances are compared
            back = transport_statistics(mu[b:], cov[b:], warp) if w_prec > 0 else (unmap_points(warp, mu[b:].float()), cov[b:])
            trans, prec = equivariance_losses(mu[:b].float(), cov[:b].float(), *back)
            if w_trans > 0:
                loss = add_term(loss, logs, "trans", w_trans, trans)
            if w_prec > 0:
                loss = add_term(loss, logs, "precision_trans", w_prec, prec)
        if "mask" in out:
            logs["mask"] = out["mask"].detach().mean()
        if self.discriminator is not None:  # LSGAN, generator's side: outputs should score 1
            g = sum((d - 1).pow(2).mean() for d in self.discriminator(out["output"].float()))
            loss = add_term(loss, logs, "g", c.gan_lambda, g)
        return loss, logs

    def _discriminator_loss(self, shape_in: Tensor, target: Tensor, partner: Tensor):
        """LSGAN, discriminator's side (card section 5): real targets score 1, outputs 0; 0.5 (real + fake)."""
        with torch.no_grad():
            _, mu, cov, _ = self.encode(shape_in)
            _, mu_b, cov_b, app_b = self.encode(partner)
            fake = self.render(mu, cov, app_b, partner, (mu_b, cov_b))["output"].float()
        real = sum((d - 1).pow(2).mean() for d in self.discriminator(target.float()))
        fake = sum(d.pow(2).mean() for d in self.discriminator(fake))
        d = 0.5 * (real + fake)
        return d, {"d": d.detach()}

    # read-outs
    def visuals(self, images: Tensor) -> dict[str, Tensor]:
        """Each image rebuilt from its own Gaussians, appearance and background; "transfer": the landmarks of
        image b with the appearance and background of image b - 1."""
        _, mu, cov, app = self.encode(images)
        own = resize(images, self.config.img_size, antialias=True)
        out = self.render(mu, cov, app, own, (mu, cov))
        vis = {"gaussians": self.gaussians(mu, cov, self.config.img_size // 2), "covariances": cov,
               "foreground": out["foreground"], "reconstruction": out["output"],
               "transfer": self.transfer(images, images.roll(1, 0))}
        if "mask" in out:
            vis.update(mask=out["mask"], background=out["background"])
        return vis

    @torch.no_grad()
    def diagnostics(self, images: Tensor) -> dict[str, float]:
        """`shape_gain`: % by which the reconstruction's squared error rises when the generator is given image
        b - 1's landmarks with image b's appearance (near 0: the landmarks carry nothing); `mask_mean`: the
        share of the image the predicted foreground covers (near 0 or 1: the factorisation collapsed);
        `part_spread`, `part_size`: `ops.parts.layout_diagnostics` of the landmark maps' own statistics (also with
        `use_identity_covariance`; a spread far below the size: the landmarks collapsed onto one blob)."""
        maps, mu, cov, app = self.encode(images)
        own = resize(images, self.config.img_size, antialias=True)
        err = [(self.render(m, s, app, own, (mu, cov))["output"] - own).pow(2).mean()
               for m, s in ((mu, cov), (mu.roll(1, 0), cov.roll(1, 0)))]
        out = {"shape_gain": loss_gain(*err), **layout_diagnostics(*part_statistics(maps))}
        if self.config.use_fg_bg_mask:
            out["mask_mean"] = float(self.mask_of(mu, cov).mean())
        return out

    def optimizers(self, steps: int):
        c = self.config
        main = [p for n, p in self.named_parameters() if not n.startswith("discriminator.")]
        opt = torch.optim.Adam(main, lr=c.lr, weight_decay=c.weight_decay)
        sched = lr_schedule(opt, c.schedule, steps)
        if self.discriminator is None:
            return opt, sched
        return [(opt, sched), (torch.optim.Adam(self.discriminator.parameters(), lr=c.lr_d), None)]

    def run_name(self, dataset: str, resolution: int, steps: int) -> str:
        c = self.config
        flags = "".join(f"_{f}" for f, on in (("temporal", c.use_temporal), ("warped", c.use_warped),
                                              ("fgbg", c.use_fg_bg_mask), ("gan", c.use_gan),
                                              ("sym", c.symmetric)) if on)
        cov = f"_idcov{c.fixed_covar:g}" if c.use_identity_covariance else ""
        trans, ptrans = c.equivariance_weights
        lr = "" if c.lr == type(c).lr else f"_lr{c.lr:g}"  # a rate other than the card's names its runs
        extra = additions_suffix(prior=c.prior, sep=c.sep, trans=trans, ptrans=ptrans) + lr + schedule_suffix(c.schedule)
        return f"fgbg_k{c.n_landmarks}_{dataset}-{c.img_size}_{steps}{flags}{cov}_{self.rec_kind}{extra}"
