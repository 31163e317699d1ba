"""Part-based disentangling of shape and appearance.

Lorenz, Bereska, Milbich, Ommer, "Unsupervised Part-Based Disentangling of Object Shape and
Appearance", CVPR 2019 (card: shared/methods/lorenz_part_disentangling.md; seed 002).

1. Two views (card section 2): every image is warped twice by a random thin-plate spline, and each
   warp is recoloured twice; the encoder sees view a in colours c1, view b in colours c2.
2. Shape stream (section 3): an hourglass gives K softmax part maps; each part is its mean (the
   keypoint) and covariance (`ops.parts.part_statistics`).
3. Appearance stream (section 3): a second hourglass stage gives features, pooled under each part
   map into one vector per part (`ops.parts.pool_appearance`).
4. Generator (section 3): view a is rebuilt from its OWN part statistics and the appearance vectors
   of its partner b, rendered as heavy-tailed part heats and splatted features at every resolution.
   Its target is view a in b's colours, so appearance must come through the appearance vectors and
   geometry through the parts.
5. Losses (section 5): masked reconstruction (`c_l2` 1), equivariance of the means (`c_trans` 5) and of
   the covariances (`c_precision_trans` 0.1) of the two warps in the original frame, optional patch
   adversarial term (`c_g` 2e-4, its own optimiser).

Where the public TensorFlow code and the paper differ, this follows the paper: the code runs a
circular mask and circular feature heats because two flags it reads are never defined (card section
12); here `covariance` chooses the heats and the mask is the card's circular one (as in both). The
equivariance carries each view's moments through the warp's local linearisation (mu' = T(mu),
Sigma' = J Sigma J^T) rather than re-integrating the sampling grid weighted by |det J|. Keypoints are
read from the un-warped image, so there is no test-time zoom to undo (card section 12). The
generator feeds every part's appearance at each of the `feature_levels` coarsest sizes, where the code
spreads the parts over those sizes (4 at 16 px, 2 at 8, 2 at 4). Additions: `rec_loss` may choose the
workbook's weight-free perceptual loss instead of the card's pixel loss; the compact recipe (the defaults)
starts part k at its own spot (`prior`) and keeps part means apart (`sep`), because under the card's masked
loss parts that gather on one spot are only asked to rebuild that spot (the `paper` profile turns both off).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nets import PartEncoder, PartGenerator, generator_sizes
from ..ops import loss_gain, random_colour, random_tps, reconstruction_loss, resize, separation_loss, warp_images_tps
from ..ops.parts import (encode_parts, equivariance_losses, layout_diagnostics, masked_pixel_loss, part_statistics,
                         pool_appearance, precision_factor, render_parts, transport_statistics)
from . import register
from .base import (SCHEDULES, Method, add_term, additions_suffix, lr_schedule, require, require_choice,
                   schedule_suffix)


@dataclass
class PartBasedConfig:
    # the seed's flags
    n_parts: int = 10  # number of parts K (paper default 16)
    static: bool = True  # image data: the two views are two warps of one image (False: video, consecutive items are two frames)
    covariance: bool = True  # part heats use each part's covariance (False: circular heats of precision `heat_scale`)
    L1: bool = False  # pixel loss |.| instead of squared error
    adversarial: bool = False  # add the patch discriminator (its own optimiser)
    bn: int = 8  # images per step (the seed's --bn; the notebook trains with batch_size = bn; 2 bn views per step)
    in_dim: int = 64  # input size of the encoder (paper 128 or 256)
    reconstr_dim: int = 64  # size of the reconstruction (paper 128 or 256)
    # architecture (paper: map_dim 64, stem 64, channels 256, depth 4, n_features 64, dropout 0.2, gen 64 / 512)
    map_dim: int = 32  # part-map size (in_dim / 2, 4, ...)
    stem: int = 32  # width of the first convolution
    channels: int = 64  # hourglass width
    depth: int = 3  # shape-hourglass depth (map_dim divisible by 2^depth)
    app_depth: int = 1  # appearance-hourglass depth
    n_features: int = 32  # appearance vector length
    dropout: float = 0.0  # dropout before the stage heads
    gen_base: int = 16  # generator width at reconstr_dim (doubling towards coarse sizes)
    gen_max: int = 128  # generator's widest stage
    feature_levels: int = 3  # coarsest generator sizes that receive the splatted appearance
    L_inv_scal: float = 0.8  # scale of the precision factor (covariance heats)
    heat_scale: float = 10.0  # precision of the circular heats (covariance=False)
    # views (card section 6): warps by `ops.warp.random_tps` with these strengths; their params are `ops.tps` params
    tps_scal: float = 0.05  # thin-plate control point shift (normalised units)
    rot_scal: float = 0.1  # rotation range, radians
    zoom: float = 0.3  # zoom range: crops of side in [1 - zoom, 1]
    augm: float = 0.3  # colour change strength of the two colourings (ops.colour.random_colour)
    # losses and optimisation (card sections 5, 7)
    rec_loss: str = "pixel"  # pixel (card: masked L2, or L1 with L1) | pyramid (weight-free perceptual) | l1 | vgg16 | vgg19
    c_l2: float = 1.0  # reconstruction weight
    c_trans: float = 5.0  # mean-equivariance weight
    c_precision_trans: float = 0.1  # covariance-equivariance weight
    c_g: float = 2e-4  # adversarial weight
    patch: float = 0.2  # half side of the adversarial patches (normalised units; paper 49 px at 256 px)
    lr: float = 1e-3  # Adam learning rate (card)
    lr_d: float = 1e-3  # discriminator's Adam learning rate
    schedule: str = "constant"  # lr: constant (card) | cosine | decay (to 0 over the last fifth); fitted to a time cap
    # additions of the compact recipe, not in the paper (AutoLink's: ops.heatmaps.spot_logits, ops.losses.separation_loss);
    # the `paper` profile turns them off. At CPU budgets without them most parts gather on one feature
    # (reports/partbased/README.md, "Choices")
    prior: float = 0.3  # >0: learned logits added to the part logits, started as bumps this wide at K spots (0: paper)
    sep: float = 1.0  # >0: weight of a separation term that keeps part means apart (0: paper)
    sep_sigma: float = 0.08  # its range, normalised units

    ABSENT: ClassVar[dict] = dict(prior=0.0, sep=0.0)  # what checkpoints from before these fields ran

    def __post_init__(self):
        require(self, n_parts=1, in_dim=16, reconstr_dim=16, map_dim=4, bn=1, n_features=1, stem=1, channels=1,
                depth=1)
        require_choice(self, rec_loss=("pixel", "pyramid", "l1", "vgg16", "vgg19"), schedule=SCHEDULES)
        if self.feature_levels < 1:
            raise ValueError(f"feature_levels must be >= 1, got {self.feature_levels}")

    @property
    def resolution(self) -> int:  # the name the trainer's command line and checkpoints use
        return self.in_dim


class PatchDiscriminator(nn.Module):
    """Real or generated, per patch: `(N, 3 + 1, P, P)` (image and the part's heat) -> logits `(N,)`.
    Card section 5: four 4 x 4 stride-2 convolutions (BN, leaky ReLU) of widths base, 2, 4, 8 base, then linear."""

    def __init__(self, base: int = 32):
        super().__init__()
        layers, cin = [], 4
        for i in range(4):
            layers += [nn.Conv2d(cin, base * 2**i, 4, stride=2, padding=1), nn.BatchNorm2d(base * 2**i),
                       nn.LeakyReLU(0.2)]
            cin = base * 2**i
        self.body, self.linear = nn.Sequential(*layers), nn.Linear(cin, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.body(x).mean((2, 3)))[:, 0]


@register
class PartBased(Method):
    name = "partbased"
    config_class = PartBasedConfig
    layers = {"parts": "heatmaps", "covariances": "covariances", "reconstruction": "image", "swap": "image"}

    def __init__(self, config: PartBasedConfig):
        super().__init__(config)
        c = config
        self.encoder = PartEncoder(c.n_parts, in_dim=c.in_dim, map_dim=c.map_dim, stem=c.stem, channels=c.channels,
                                   depth=c.depth, app_depth=c.app_depth, n_features=c.n_features, dropout=c.dropout,
                                   prior=c.prior)
        self.sizes = generator_sizes(c.reconstr_dim)
        enc = [c.n_parts + (c.n_features if i < c.feature_levels else 0) for i in range(len(self.sizes))]
        self.generator = PartGenerator(enc, c.reconstr_dim, base=c.gen_base, max_width=c.gen_max)
        self.recon = None if c.rec_loss == "pixel" else reconstruction_loss(c.rec_loss)
        self.discriminator = PatchDiscriminator() if c.adversarial else None

    # 2, 3: shape and appearance streams
    def encode(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """`(B, 3, H, W)` in [0, 1] -> part maps `(B, K, m, m)`, means `(B, K, 2)`, covariances `(B, K, 2, 2)`,
        appearance `(B, K, C)`."""
        maps, feats = self.encoder(resize(images, self.config.in_dim, antialias=True))
        mu, cov = part_statistics(maps)
        return maps, mu, cov, pool_appearance(feats, maps)

    def keypoints(self, images: Tensor) -> Tensor:
        return self.encode(images)[1]  # (B, K, 2) part means

    def covariances(self, images: Tensor) -> Tensor:
        return self.encode(images)[2]  # (B, K, 2, 2)

    # 4: generator
    def decode(self, mu: Tensor, cov: Tensor, appearance: Tensor) -> Tensor:
        """Image `(B, 3, R, R)` from part statistics `(B, K, 2), (B, K, 2, 2)` and appearance `(B, K, C)`."""
        c = self.config
        prec = precision_factor(cov, c.L_inv_scal) if c.covariance else c.heat_scale
        return self.generator(encode_parts(mu, prec, appearance, self.sizes, c.feature_levels))

    def transfer(self, shape_images: Tensor, appearance_images: Tensor) -> Tensor:
        """Image b drawn with the parts of `shape_images[b]` and the appearance of `appearance_images[b]`."""
        _, mu, cov, _ = self.encode(shape_images)
        return self.decode(mu, cov, self.encode(appearance_images)[3])

    # 1: views
    def partner(self, n: int, device) -> Tensor:
        """Whose appearance item i of the n = 2B views is drawn with: the other warp of its image (`static`),
        or the neighbouring item, the other frame of its pair (video). An involution: partner(partner(i)) = i."""
        i = torch.arange(n, device=device)
        return (i + n // 2) % n if self.config.static else i ^ 1

    def views(self, images: Tensor) -> tuple[Tensor, Tensor, list[dict]]:
        """Encoder inputs and targets `(2B, 3, H, W)`: items i and i + B are two warps of image i. In each
        pair (a, b) of partners the encoder sees a in colours c1 and b in c2, and the target of a is a in c2
        (b's colours: what b's appearance vectors carry), the target of b is b in c1 (card section 2)."""
        c, b, dev = self.config, images.shape[0], images.device
        warps = [random_tps(b, shift=c.tps_scal, rotate=math.degrees(c.rot_scal), zoom=c.zoom,
                            device=dev) for _ in range(2)]
        views = torch.cat([warp_images_tps(images, w) for w in warps])  # (2B, 3, H, W)
        partner = self.partner(2 * b, dev)
        first = (torch.arange(2 * b, device=dev) < partner).nonzero()[:, 0]  # a of each pair, pair j = row j
        second = partner[first]  # its b
        seeds = torch.randint(0, 2**62, (2,)).tolist()  # a colouring = a generator seed: row j's factors, any images

        def colour(idx: Tensor, s: int) -> Tensor:
            return random_colour(views[idx], c.augm, generator=torch.Generator(device=dev).manual_seed(s))

        inputs, targets = torch.empty_like(views), torch.empty_like(views)
        inputs[first], inputs[second] = colour(first, seeds[0]), colour(second, seeds[1])
        targets[first], targets[second] = colour(first, seeds[1]), colour(second, seeds[0])
        return inputs, targets, warps

    # 5: losses
    def loss(self, batch: dict, opt_index: int = 0) -> tuple[Tensor, dict[str, Tensor]]:
        """Optimiser 0 (the networks): c_l2 rec + c_trans mean-equivariance + c_precision_trans
        covariance-equivariance (+ c_g adversarial); optimiser 1 (with `adversarial`): the discriminator."""
        c = self.config
        images = resize(batch["image"], c.in_dim, antialias=True)
        if not c.static and images.shape[0] % 2:
            raise ValueError(f"static=False pairs consecutive batch items; the batch has {images.shape[0]} images")
        b = images.shape[0]
        inputs, targets, warps = self.views(images)
        if opt_index == 1:
            return self._discriminator_loss(inputs, targets)
        maps, feats = self.encoder(inputs)  # (2B, K, m, m), (2B, C, m, m)
        mu, cov = part_statistics(maps)
        appearance = pool_appearance(feats, maps)[self.partner(2 * b, images.device)]  # (2B, K, C) of the partner
        recon = self.decode(mu, cov, appearance)  # (2B, 3, R, R)
        target = resize(targets, c.reconstr_dim, antialias=True)
        # reconstruction (card section 5, `c_l2`): the view from its own parts and its partner's appearance
        if self.recon is None:  # card: sum over the masked pixels and channels, batch mean
            rec = masked_pixel_loss(recon, target, mu, l1=c.L1)
        else:
            rec = self.recon(recon.float(), target)
        # equivariance (card section 5, `c_trans`, `c_precision_trans`): both warps' parts in the original frame
        stats = [transport_statistics(mu[s], cov[s], w) for s, w in zip((slice(0, b), slice(b, 2 * b)), warps)]
        trans, prec = equivariance_losses(*stats[0], *stats[1])
        loss = c.c_l2 * rec + c.c_trans * trans + c.c_precision_trans * prec
        logs = {"rec": rec.detach(), "trans": trans.detach(), "precision_trans": prec.detach()}
        if c.sep > 0:  # compact-recipe addition: no two part means on one spot
            loss = add_term(loss, logs, "sep", c.sep, separation_loss(mu, c.sep_sigma))
        if self.discriminator is not None:  # generator's side: patches of reconstructions should look real
            fake = self.discriminator(self._patches(recon, mu, cov))
            loss = add_term(loss, logs, "g", c.c_g, F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)))
        return loss, logs

    def _patches(self, images: Tensor, mu: Tensor, cov: Tensor) -> Tensor:
        """Square patches of side 2 `patch` around each part mean, of the image and the part's heat:
        `(B, 3, R, R) -> (B K, 4, P, P)`, P = 16 (card: 49 px crops at 256 px)."""
        c, (b, k) = self.config, mu.shape[:2]
        size = images.shape[-1]
        heats = render_parts(mu, precision_factor(cov, c.L_inv_scal) if c.covariance else c.heat_scale, size, size)
        x = torch.cat([images.float()[:, None].expand(-1, k, -1, -1, -1), heats[:, :, None]], 2).flatten(0, 1)
        theta = torch.zeros(b * k, 2, 3, device=mu.device, dtype=x.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = c.patch
        theta[:, :, 2] = mu.detach().flatten(0, 1)
        g = F.affine_grid(theta, [b * k, 4, 16, 16], align_corners=True)
        return F.grid_sample(x, g, mode="bilinear", padding_mode="zeros", align_corners=True)

    def _discriminator_loss(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Card section 5: sigmoid cross-entropy of the patch discriminator, targets real, reconstructions fake."""
        with torch.no_grad():
            maps, feats = self.encoder(inputs)
            mu, cov = part_statistics(maps)
            fake = self.decode(mu, cov, pool_appearance(feats, maps)[self.partner(len(inputs), inputs.device)])
        real = resize(targets, self.config.reconstr_dim, antialias=True)
        lr, lf = self.discriminator(self._patches(real, mu, cov)), self.discriminator(self._patches(fake, mu, cov))
        d = (F.binary_cross_entropy_with_logits(lr, torch.ones_like(lr))
             + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf)))
        return d, {"d": d.detach()}

    # read-outs
    def visuals(self, images: Tensor) -> dict[str, Tensor]:
        maps, mu, cov, app = self.encode(images)
        return {"parts": maps, "covariances": cov, "reconstruction": self.decode(mu, cov, app),
                "swap": self.decode(mu, cov, app.roll(1, 0))}  # shape of image b, appearance of image b - 1

    def diagnostics(self, images: Tensor) -> dict[str, float]:
        """`shape_gain`: % by which the reconstruction's squared error rises when the generator is given
        another image's parts (image b - 1's) with the image's own appearance. Near 0, the generator
        ignores the parts and the keypoints carry nothing. `part_spread`, `part_size`: `ops.parts.layout_diagnostics`
        (a spread far below the size: the parts collapsed onto one blob)."""
        _, mu, cov, app = self.encode(images)
        target = resize(images, self.config.reconstr_dim, antialias=True)
        own = (self.decode(mu, cov, app) - target).pow(2).mean()
        other = (self.decode(mu.roll(1, 0), cov.roll(1, 0), app) - target).pow(2).mean()
        return {"shape_gain": loss_gain(own, other), **layout_diagnostics(mu, cov)}

    def optimizers(self, steps: int):
        c = self.config
        main = [p for n, p in self.named_parameters() if not n.startswith("discriminator.")]
        opt = torch.optim.Adam(main, lr=c.lr)
        sched = lr_schedule(opt, c.schedule, steps)
        if self.discriminator is None:
            return opt, sched
        return [(opt, sched), (torch.optim.Adam(self.discriminator.parameters(), lr=c.lr_d), None)]

    def run_name(self, dataset: str, resolution: int, steps: int) -> str:
        c = self.config
        flags = "".join(f"_{f}" for f, on in (("static", c.static), ("cov", c.covariance), ("L1", c.L1),
                                              ("adv", c.adversarial)) if on)
        extra = additions_suffix(prior=c.prior, sep=c.sep) + schedule_suffix(c.schedule)
        return f"partbased_k{c.n_parts}_{dataset}-{c.in_dim}_{steps}{flags}_r{c.reconstr_dim}_bn{c.bn}_{c.rec_loss}{extra}"
