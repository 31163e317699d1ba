"""Video frames in folders (Tai-Chi-HD and other video data sets), optionally with keypoints.

Layout (Tai-Chi-HD as prepared by the first-order-motion-model scripts; root = e.g. `taichi/train`)::

    root/<video>/<frame>.png | .jpg     frames sorted by natural order (frame2 before frame10)

No labels by default (keypoints of shape (0, 3)). Optional keypoints come from a csv file
(`keypoints_csv`, relative to root or absolute) with a header `name,<k>_x,<k>_y,...` and one row per
annotated frame: `name` = `<video>/<frame>` as yielded, coordinates in pixels of that frame, -1
(or empty) = not annotated (invisible). Frames without a row get all keypoints invisible. Taichi's
own `taichi_*_gt.pkl` (a pandas pickle) is not read: convert it to this csv once.
`pairs(gap)` lists (frame, frame + gap) name pairs inside each video — the temporal pairs of
methods that reconstruct one frame from another.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..source import BadInputError, Sample, SourceInfo, check_keypoints
from .common import (
    IMAGE_EXTENSIONS,
    ListingSource,
    csv_rows,
    natural_key,
    need_file,
    sample_at,
)


class Frames(ListingSource):
    def __init__(self, root, *, keypoints_csv: str | None = None, dataset: str = "frames",
                 normalisation: str = "image_size", on_bad: str = "raise"):
        self.root = Path(root)
        self._start(on_bad)
        if not self.root.is_dir():
            raise BadInputError(f"{self.root}: folder not found")
        self.videos: dict[str, list[str]] = {}
        for v in sorted((d for d in self.root.iterdir() if d.is_dir()), key=lambda d: natural_key(d.name)):
            frames = sorted((f.name for f in v.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS),
                            key=natural_key)
            if frames:
                self.videos[v.name] = [f"{v.name}/{f}" for f in frames]
        names = [n for frames in self.videos.values() for n in frames]
        kps, k_names = {}, []
        if keypoints_csv is not None:
            kps, k_names = self._read_csv(need_file(self.root / keypoints_csv), set(names))
        self.info = SourceInfo(dataset, k_names, [], normalisation)
        empty = np.zeros((len(k_names), 3), np.float32)
        self.records = [(n, kps.get(n, empty)) for n in names]
        self._listing_done()

    def _read_csv(self, path: Path, known: set[str]):
        header, rows = csv_rows(path, self.problems)
        if len(header) < 3 or len(header) % 2 == 0 or header[0] != "name":
            raise BadInputError(f"{path}:1: header must be name,<k>_x,<k>_y,... got {header}")
        k_names = [h[:-2] if h.endswith("_x") else h for h in header[1::2]]
        out = {}
        for where, row in rows:
            if row[0] not in known:
                self.problems(where, f"{row[0]} is not a frame under {self.root}")
                continue
            try:
                v = np.array([float(x) if x.strip() else -1.0 for x in row[1:]], np.float32).reshape(-1, 2)
            except ValueError as e:
                self.problems(where, f"not a number ({e})")
                continue
            vis = ~((v[:, 0] == -1) & (v[:, 1] == -1))
            kp = np.concatenate([np.where(vis[:, None], v, 0.0), vis[:, None]], 1).astype(np.float32)
            if check_keypoints(kp, where, self.problems):
                out[row[0]] = kp
        return out, k_names

    def clip_of(self, name: str) -> str:
        """The video a frame `<video>/<frame>` belongs to (a store written from this source keeps it)."""
        return name.split("/", 1)[0]

    def pairs(self, gap: int = 1) -> list[tuple[str, str]]:
        """(frame i, frame i + gap) of every video, in order."""
        return [(f[i], f[i + gap]) for f in self.videos.values() for i in range(len(f) - gap)]

    def load(self, record) -> Sample | None:
        name, kp = record
        return sample_at(self.problems, self.root / name, name, kp)
