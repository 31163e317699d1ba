"""Pair data sets: two views of one image, or two frames of one clip.

The part-based (Lorenz et al. 2019) and pose / appearance / background (Dundar et al. 2020) methods learn
from pairs that share the object's shape but not its appearance, or its appearance but not its pose:

    TwoViews(data, preset, colour, seed)   each item's image under two random TPS warps + colour changes
                                           (`ops.views.two_views`, the same function a method may call on
                                           a batch on the GPU), deterministic by (seed, index);
    FramePairs(frames, gap)                two frames of one clip (video data: Tai-Chi-HD, BBC Pose-like
                                           frame folders), from a store written from a `Frames` source
                                           (it keeps clip ids) or from the `Frames` source itself.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..ops.colour import ColourJitter
from ..ops.tps import TpsPreset
from ..ops.views import two_views
from .sources.frames import Frames
from .store import LandmarkStore, resample


def _seed(seed: int, index: int, salt: int = 0) -> int:
    return (seed * 1_000_003 + index * 7919 + salt) % (2**63 - 1)


class TwoViews(Dataset):
    """Items of `data` plus two random views of their "image" `(3, H, W)`: "view1", "view2", "warp1",
    "warp2" (TPS params: a keypoint q of "image" is at `tps.map_points(warp1, q)` in view 1 after collation),
    "colour1", "colour2" (`(4,)` colour parameters). The original item's fields stay as they are ("image"
    is the unwarped original, "index" its position). Item i is the same for the same (seed, i) in every
    epoch and worker, so a resumed run sees the same pairs. `identity_first`: view 1 is only recoloured.
    Wrap an `InMemory` data set in it, not the reverse: the views are cheap to redraw, and the nested
    warp params are not the flat tensors `InMemory` stacks."""

    def __init__(self, data: Dataset, preset: str | TpsPreset = "lorenz",
                 colour: str | ColourJitter | tuple = "lorenz", seed: int = 0, identity_first: bool = False):
        self.data, self.preset, self.colour, self.seed = data, preset, colour, seed
        self.identity_first = identity_first
        self.info = getattr(data, "info", getattr(getattr(data, "dataset", None), "info", None))  # through a Subset
        two_views(torch.zeros(1, 3, 4, 4), preset, colour)  # unknown preset / colour names fail here, not in a worker

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.data[i])
        g = torch.Generator().manual_seed(_seed(self.seed, i % len(self)))
        views = two_views(item["image"][None], self.preset, self.colour, generator=g,
                          identity_first=self.identity_first)
        for k, v in views.items():
            item[k] = {n: t[0] for n, t in v.items()} if isinstance(v, dict) else v[0]
        return item


def _runs(clips: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """Positions of each clip's items in frame order: by `rows` (a store's rows are written in clip order),
    whatever order a split lists them in."""
    order = np.lexsort((rows, clips))
    bounds = np.flatnonzero(np.diff(clips[order])) + 1
    return [r for r in np.split(order, bounds) if len(r)]


class FramePairs(Dataset):
    """Pairs of frames `gap` apart in one clip.

    frames: a `LandmarkStore` written from a frame-folder source (it keeps clip ids: `LandmarkStore.clips`),
    or a `Frames` source with a `resolution` (frames are then read and resized like `write_store` does,
    `crop="full"`). gap: an int (every (frame j, frame j + gap) of every clip, one item each), or a range
    (lo, hi) as Dundar et al.'s temporal partner (U{3..39}): one item per frame with a partner at least lo
    away, the partner hi at most away, drawn by (seed, index), later in the clip where there is room, else
    earlier.

    Items: frame a's fields ("image", "keypoints", "visible", "box", "row" for a store), frame b's with a
    "2" suffix ("image2", "keypoints2", ...), "index" (the pair's position here) and "frames" `(2,)` (the
    two frames' positions in `frames`)."""

    def __init__(self, frames: LandmarkStore | Frames, gap: int | tuple[int, int] = 1, *,
                 resolution: int | None = None, seed: int = 0):
        lo, hi = (gap, gap) if isinstance(gap, int) else (int(gap[0]), int(gap[1]))
        if not 1 <= lo <= hi:
            raise ValueError(f"FramePairs: gap must be an int >= 1 or a range (lo, hi) with 1 <= lo <= hi, got {gap!r}")
        self.frames, self.lo, self.hi, self.seed = frames, lo, hi, seed
        if isinstance(frames, Frames):
            if resolution is None:
                raise ValueError("FramePairs: a Frames source needs `resolution` (the size its frames are read at)")
            self.resolution = resolution
            clip_ids = {c: i for i, c in enumerate(frames.videos)}
            clips = np.array([clip_ids[frames.clip_of(r[0])] for r in frames.records], np.int64)
            rows = np.arange(len(clips))
            self.info = frames.info
        elif isinstance(frames, LandmarkStore):
            clips = frames.clips()
            if clips is None:
                raise ValueError(f"FramePairs: the store {frames.path} keeps no clip ids (it was not written from a "
                                 f"frame-folder source, or before stores kept them): write it again from a "
                                 f"`Frames` source, or pass the `Frames` source with a resolution")
            self.info, rows = frames.info, np.asarray(frames.indices)
        else:
            raise TypeError(f"FramePairs: frames must be a LandmarkStore with clips or a Frames source, "
                            f"got {type(frames).__name__}")
        self.runs = _runs(clips, rows)
        if isinstance(gap, int):  # (clip, position in clip) of frame a; frame b is gap later
            self.items = [(c, j) for c, run in enumerate(self.runs) for j in range(len(run) - gap)]
        else:  # every frame with a partner at least lo away
            self.items = [(c, j) for c, run in enumerate(self.runs) for j in range(len(run))
                          if max(len(run) - 1 - j, j) >= lo]
        if not self.items:
            raise ValueError(f"FramePairs: no clip has two frames {gap} apart ({len(self.runs)} clips, the longest "
                             f"{max((len(r) for r in self.runs), default=0)} frames)")

    def __len__(self) -> int:
        return len(self.items)

    def pair(self, i: int) -> tuple[int, int]:
        """Positions in `frames` of pair i's two frames."""
        c, j = self.items[i]
        run = self.runs[c]
        if self.lo == self.hi and j + self.lo < len(run):
            return int(run[j]), int(run[j + self.lo])
        reach = max(len(run) - 1 - j, j)
        g = torch.Generator().manual_seed(_seed(self.seed, i))
        step = int(torch.randint(self.lo, min(self.hi, reach) + 1, (1,), generator=g))
        return int(run[j]), int(run[j + step] if j + step < len(run) else run[j - step])

    def _frame(self, k: int) -> dict:
        if isinstance(self.frames, LandmarkStore):
            return self.frames[k]
        s = self.frames.load(self.frames.records[k])
        if s is None:
            raise ValueError(f"FramePairs: frame {self.frames.records[k][0]} could not be read")
        s = resample(s, self.resolution)
        r = self.resolution
        kp = torch.from_numpy(s.keypoints)
        return {"image": torch.tensor(s.image).permute(2, 0, 1).float().div_(255.0),
                "keypoints": kp[:, :2] / (r - 1) * 2.0 - 1.0, "visible": kp[:, 2] > 0, "box": torch.from_numpy(s.box)}

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(f"FramePairs: pair {i} of {len(self)}")
        a, b = self.pair(i)
        first, second = self._frame(a), self._frame(b)
        item: dict[str, Tensor | int] = {k: v for k, v in first.items() if k != "index"}
        item.update({f"{k}2": v for k, v in second.items() if k != "index"})
        item.update(index=i, frames=torch.tensor([a, b]))
        return item
