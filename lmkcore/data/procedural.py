"""Procedural data: 2D articulated figures that need no download.

Each figure has the 14 joints of LSP (same names and order as `sources.lsp`), drawn as textured
capsules in a random pose, scale, position, colour and depth order over a smooth random background.
Two styles share the poses, colours and backgrounds:

    capsule  a wide torso (one capsule from pelvis to shoulders), head and upper and lower limbs
             ("procedural"); the torso hides the hip-shoulder and shoulder-neck bones.
    stick    one capsule along every skeleton edge, all limbs alike ("procedural-stick"): the
             figure is its skeleton drawn thick, so the skeleton is what the images show.

Everything is deterministic by (seed, index) and rendered with vectorised tensor ops, fast enough
to train on directly.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from ..ops.coords import grid, norm_to_pixels
from ..ops.edges import segment_distance2
from .source import Sample, Source, SourceInfo

JOINTS = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
          "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
          "neck", "head_top"]
SKELETON = [(0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 8), (9, 10), (10, 11),
            (2, 3), (2, 8), (3, 9), (8, 12), (9, 12), (12, 13)]
INFO = SourceInfo("procedural", JOINTS, SKELETON, "bbox")

# Rendered parts: (joint a, joint b, radius as a fraction of body scale, colour slot).
# Colour slots: 0 skin, 1 shirt, 2 trousers. -1 / -2 index the pelvis / shoulder midpoints.
# Depth: torso and head in the middle (the head slightly behind), limbs (swing 1) randomly in front or behind.
_PARTS = {
    "capsule": [(-1, -2, 0.16, 1),  # torso
                (2, 1, 0.085, 2), (1, 0, 0.07, 2), (3, 4, 0.085, 2), (4, 5, 0.07, 2),  # legs
                (8, 7, 0.065, 1), (7, 6, 0.055, 0), (9, 10, 0.065, 1), (10, 11, 0.055, 0),  # arms
                (12, 13, 0.11, 0)],  # head (a capsule from neck to head top)
    "stick": [(2, 3, 0.08, 2), (2, 8, 0.08, 1), (3, 9, 0.08, 1), (8, 12, 0.08, 1), (9, 12, 0.08, 1),  # torso
              (2, 1, 0.08, 2), (1, 0, 0.08, 2), (3, 4, 0.08, 2), (4, 5, 0.08, 2),  # legs
              (8, 7, 0.08, 1), (7, 6, 0.08, 0), (9, 10, 0.08, 1), (10, 11, 0.08, 0),  # arms
              (12, 13, 0.11, 0)],  # head
}
_LIMBS = {"capsule": [0] + [1] * 8 + [0], "stick": [0] * 5 + [1] * 8 + [0]}
STYLES = tuple(_PARTS)
PROCEDURAL = {"procedural": "capsule", "procedural-stick": "stick"}  # data set name -> style


def _rot(v: Tensor, a: Tensor) -> Tensor:
    c, s = torch.cos(a)[..., None], torch.sin(a)[..., None]
    return torch.cat([c * v[..., :1] - s * v[..., 1:], s * v[..., :1] + c * v[..., 1:]], -1)


def sample_poses(n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random joint positions `(n, 14, 2)` (normalised x, y) and body scales `(n,)`."""
    u = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    s = 0.6 + 0.3 * u(n)  # body scale
    pelvis = torch.stack([(u(n) - 0.5) * 0.5, 0.12 + (u(n) - 0.5) * 0.3], -1)
    tilt = (u(n) - 0.5) * 0.8
    up = _rot(torch.tensor([0.0, -1.0]).expand(n, 2), tilt)
    side = _rot(up, torch.full((n,), math.pi / 2))  # person's left on the image's right
    sc = s[:, None]
    neck = pelvis + up * 0.55 * sc
    hips = [pelvis - side * 0.1 * sc, pelvis + side * 0.1 * sc]
    shoulders = [neck - side * 0.17 * sc + up * -0.05 * sc, neck + side * 0.17 * sc + up * -0.05 * sc]
    head = neck + _rot(up, (u(n) - 0.5) * 0.6) * 0.28 * sc

    def limb(root, turn, a1, a2, l1, l2):
        """A limb hanging from `root`, swung `a1` away from the body (radians from straight down) and
        bent by `a2` at its middle joint (positive: back towards the body). turn: +1 for the person's
        right limbs (a positive rotation of `down` points to -side, the image's left), -1 for the left."""
        d1 = _rot(down, turn * a1)
        mid = root + d1 * l1 * sc
        return mid, mid + _rot(d1, -turn * a2) * l2 * sc

    down = -up
    r_knee, r_ankle = limb(hips[0], 1.0, 0.9 * u(n) - 0.2, 1.3 * u(n), 0.38, 0.36)
    l_knee, l_ankle = limb(hips[1], -1.0, 0.9 * u(n) - 0.2, 1.3 * u(n), 0.38, 0.36)
    r_elbow, r_wrist = limb(shoulders[0], 1.0, u(n) * 2.8 - 0.3, (u(n) - 0.5) * 3.0, 0.27, 0.25)
    l_elbow, l_wrist = limb(shoulders[1], -1.0, u(n) * 2.8 - 0.3, (u(n) - 0.5) * 3.0, 0.27, 0.25)
    joints = torch.stack([r_ankle, r_knee, hips[0], hips[1], l_knee, l_ankle, r_wrist, r_elbow,
                          shoulders[0], shoulders[1], l_elbow, l_wrist, neck, head], 1)
    return joints, s


def _coverage(joints: Tensor, scale: Tensor, size: int, style: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The figures' geometry: each drawn part's first joint `(E,)`, pixel distances to its axis `(B, E, P)`,
    radii `(B, E)` and soft coverage `(B, E, P)` (P = size^2 pixels, row-major)."""
    parts = _PARTS[style]
    pts = grid(size, size).reshape(-1, 2)  # (P, 2)
    ext = torch.cat([joints, joints[:, 2:4].mean(1, keepdim=True), joints[:, 8:10].mean(1, keepdim=True)], 1)
    ia = torch.tensor([p[0] for p in parts]) % ext.shape[1]
    ib = torch.tensor([p[1] for p in parts]) % ext.shape[1]
    radius = torch.tensor([p[2] for p in parts])[None] * scale[:, None]  # (B, E)
    d = segment_distance2(pts, ext[:, ia], ext[:, ib]).sqrt()  # (B, E, P)
    px = 2.0 / (size - 1)
    alpha = torch.sigmoid((radius[..., None] - d) / (0.5 * px))  # (B, E, P) soft coverage
    return ia, d, radius, alpha


def figure_masks(joints: Tensor, scale: Tensor, size: int, style: str = "capsule") -> Tensor:
    """The true foreground of `render`'s figures: joints `(B, 14, 2)`, scale `(B,)` -> `(B, 1, size, size)` in
    [0, 1], the fraction of each pixel the figure's parts cover, 1 - prod_e (1 - alpha_e): exactly the weight
    the figure gets over the background when `render` composites it (the parts' geometry is shared)."""
    if style not in _PARTS:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    alpha = _coverage(joints, scale, size, style)[3]  # (B, E, P)
    return (1.0 - torch.prod(1.0 - alpha, 1)).reshape(-1, 1, size, size)


def render(joints: Tensor, scale: Tensor, size: int, g: torch.Generator, style: str = "capsule") -> Tensor:
    """Draw figures: joints `(B, 14, 2)`, scale `(B,)` -> images `(B, 3, size, size)` in [0, 1]."""
    if style not in _PARTS:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    parts = _PARTS[style]
    b = joints.shape[0]
    u = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    pts = grid(size, size).reshape(-1, 2)  # (P, 2)
    ia, d, radius, alpha = _coverage(joints, scale, size, style)
    # colours: three slots per figure, a stripe texture on the clothes, shading across the limb
    palette = u(b, 3, 3) * 0.8 + 0.1  # (B, slot, rgb)
    slot = torch.tensor([p[3] for p in parts])
    colour = palette[:, slot]  # (B, E, 3)
    freq, phase, theta = 10 + 20 * u(b, 1, 1), 2 * math.pi * u(b, 1, 1), math.pi * u(b, 1, 1)
    stripes = torch.sin(freq * (pts[None, None, :, 0] * torch.cos(theta) + pts[None, None, :, 1]
                                * torch.sin(theta)) + phase)  # (B, 1, P)
    clothed = (slot > 0).float()[None, :, None]
    shade = 1.0 - 0.35 * (d / radius[..., None]).clamp(0, 1) ** 2
    tex = shade * (1.0 + 0.18 * stripes * clothed)  # (B, E, P)
    part_rgb = (colour[..., None] * tex[:, :, None]).clamp(0, 1)  # (B, E, 3, P)
    # depth order: torso and head in the middle, limbs randomly in front of or behind
    limb = torch.tensor(_LIMBS[style], dtype=torch.float32)
    depth = 0.1 * (ia == 12).float() + (u(b, len(parts)) - 0.5) * 2.0 * limb
    order = depth.argsort(dim=1, descending=True)  # back to front
    alpha = alpha.gather(1, order[..., None].expand_as(alpha))
    part_rgb = part_rgb.gather(1, order[..., None, None].expand_as(part_rgb))
    # background: a colour with smooth noise at two scales
    bg = u(b, 3, 1, 1) * 0.6 + 0.2
    noise = sum(F.interpolate(u(b, 3, k, k) - 0.5, size=(size, size), mode="bicubic", align_corners=False)
                * a for k, a in ((3, 0.35), (9, 0.15)))
    img = (bg + noise).clamp(0, 1).reshape(b, 3, -1)  # (B, 3, P)
    # over-compositing back to front: img = a * c + (1 - a) * img, vectorised over parts
    trans = torch.flip(torch.cumprod(torch.flip(1.0 - alpha, [1]), 1), [1])  # prod_{e'>=e}(1 - a)
    front = torch.cat([trans[:, 1:], torch.ones_like(trans[:, :1])], 1)  # prod_{e'>e}(1 - a)
    img = img * trans[:, :1] + (alpha * front)[:, :, None].mul(part_rgb).sum(1)
    return img.reshape(b, 3, size, size).clamp(0, 1)


def figures(n: int, size: int, seed: int, style: str = "capsule") -> tuple[Tensor, Tensor]:
    """`n` figures from one seed: images `(n, 3, S, S)` in [0, 1], joints `(n, 14, 2)` normalised."""
    g = torch.Generator().manual_seed(seed)
    joints, scale = sample_poses(n, g)
    return render(joints, scale, size, g, style), joints


def _item_seed(seed: int, index: int) -> int:
    return (seed * 1_000_003 + index) % (2**63 - 1)


class ProceduralFigures(Dataset):
    """`n` figures at `size` px in one `style`; item i is the same for the same (seed, i). Same items
    as `LandmarkStore`."""

    info = INFO

    def __init__(self, n: int = 4096, size: int = 64, seed: int = 0, style: str = "capsule"):
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {style!r}")
        self.n, self.size, self.seed, self.style = n, size, seed, style

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        img, kp = figures(1, self.size, _item_seed(self.seed, i), self.style)
        kp = kp[0]
        lo, hi = norm_to_pixels(kp.min(0).values, self.size), norm_to_pixels(kp.max(0).values, self.size)
        return {"image": img[0], "keypoints": kp, "visible": torch.ones(len(JOINTS), dtype=torch.bool),
                "box": torch.cat([lo, hi]), "index": i}

    def mask(self, i: int) -> Tensor:
        """The true foreground of item i, `(1, size, size)` in [0, 1] (`figure_masks`; the pose drawn again
        from the item's seed, as `__getitem__` draws it)."""
        if not 0 <= i < self.n:
            raise IndexError(i)
        joints, scale = sample_poses(1, torch.Generator().manual_seed(_item_seed(self.seed, i)))
        return figure_masks(joints, scale, self.size, self.style)[0]


class ProceduralPairs(Dataset):
    """Two frames of one figure moving in front of a still background: the video pairs of Dundar et al.
    (card section 2) for data that has no video. Item i's first frame is `ProceduralFigures(n, size, seed,
    style)[i]`; its second frame shows the same figure (size, colours, texture, depth order) and the same
    background in another pose (drawn from a second seed), its pelvis moved by up to `motion` (normalised
    units). Items as `data.pairs.FramePairs` gives them: "image", "keypoints", "visible", "box", "index" and
    "image2", "keypoints2", "visible2"."""

    info = INFO

    def __init__(self, n: int = 4096, size: int = 64, seed: int = 0, style: str = "capsule", motion: float = 0.3):
        self.first = ProceduralFigures(n, size, seed, style)
        self.n, self.size, self.seed, self.style, self.motion = n, size, seed, style, motion

    def __len__(self) -> int:
        return self.n

    def mask(self, i: int) -> Tensor:
        """The true foreground of item i's first frame, `(1, size, size)`."""
        return self.first.mask(i)

    def __getitem__(self, i: int) -> dict:
        item = self.first[i]
        g = torch.Generator().manual_seed(_item_seed(self.seed, i))
        joints, scale = sample_poses(1, g)  # the first frame's pose, as ProceduralFigures draws it
        state = g.get_state()  # what render draws next: colours, texture, depth order, background
        other, other_scale = sample_poses(1, torch.Generator().manual_seed(_item_seed(self.seed + 7919, i)))
        pelvis, other_pelvis = joints[:, 2:4].mean(1, keepdim=True), other[:, 2:4].mean(1, keepdim=True)
        step = (torch.rand(1, 1, 2, generator=g) * 2.0 - 1.0) * self.motion
        joints2 = pelvis + step + (other - other_pelvis) * (scale / other_scale)[:, None, None]  # (1, 14, 2)
        g.set_state(state)
        image2 = render(joints2, scale, self.size, g, self.style)[0]
        return {**item, "image2": image2, "keypoints2": joints2[0], "visible2": item["visible"].clone()}


class ProceduralSource(Source):
    """The same figures as a `Source`, to be written to a store like any real data set."""

    info = INFO

    def __init__(self, n: int = 4096, size: int = 64, seed: int = 0, style: str = "capsule"):
        self.data = ProceduralFigures(n, size, seed, style)

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self):
        for i in range(len(self.data)):
            item = self.data[i]
            img = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            kp = norm_to_pixels(item["keypoints"], self.data.size).numpy()
            yield Sample(f"figure_{self.data.seed}_{i:06d}", img,
                         np.concatenate([kp, np.ones((len(kp), 1))], 1).astype(np.float32),
                         item["box"].numpy())
