"""LSP / LSPET: people with 14 body joints, `images/` + `joints.mat`.

Official layouts (Johnson & Everingham, BMVC 2010 / CVPR 2011)::

    root/joints.mat    MATLAB matrix `joints`
                       LSPET: 14 x 3 x N  (x, y, visible: 1 visible, 0 not)
                       LSP:   3 x 14 x N  (x, y, occluded flag: visible = 1 - flag)
    root/images/       im00001.jpg ... (LSPET, 5 digits) or im0001.jpg ... (LSP, 4 digits)

The layout is detected from the matrix shape; any other shape is an error naming the file and
the shape. Images are matched to columns by the standard names `im%05d` / `im%04d` (1-based);
when those do not exist but `images/` holds exactly N images (e.g. a test folder holding the
remaining LSPET images im08001...), they are matched in sorted order. Joint order and skeleton are
those of `procedural.JOINTS` / `SKELETON`. Coordinates are kept as written. Invisible joints may
hold arbitrary or zero coordinates. `box` = tight box of the visible joints (None when no joint
is visible); person-centred square crops come from `write_store(..., crop="box",
margin=DEFAULT_MARGIN)`.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.io

from ..procedural import JOINTS, SKELETON
from ..source import BadInputError, Sample, SourceInfo, check_keypoints, float32_trouble
from .common import IMAGE_EXTENSIONS, ListingSource, box_of, need_file, sample_at

DEFAULT_MARGIN = 0.15  # margin of the person-centred square crop, as a fraction of the box side
INFO = SourceInfo("lsp", JOINTS, SKELETON, "bbox")


def read_joints(path: Path) -> tuple[np.ndarray, str]:
    """(N, 14, 3) x, y, visible and the layout name ('lspet' or 'lsp') of a joints.mat."""
    need_file(path)
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as e:  # scipy raises several types for corrupt files
        raise BadInputError(f"{path}: unreadable .mat file ({type(e).__name__}: {e})") from e
    if "joints" not in mat:
        have = sorted(k for k in mat if not k.startswith("__"))
        raise BadInputError(f"{path}: no matrix 'joints' (has {have})")
    j = np.asarray(mat["joints"])
    if (trouble := float32_trouble(j)) is not None:
        raise BadInputError(f"{path}: 'joints' {trouble}")
    if j.ndim == 3 and j.shape[:2] == (14, 3):
        return np.ascontiguousarray(j.transpose(2, 0, 1), dtype=np.float32), "lspet"
    if j.ndim == 3 and j.shape[:2] == (3, 14):
        kp = np.ascontiguousarray(j.transpose(2, 1, 0), dtype=np.float32)
        kp[:, :, 2] = 1.0 - kp[:, :, 2]  # occluded flag -> visible
        return kp, "lsp"
    raise BadInputError(f"{path}: 'joints' has shape {j.shape}, expected 14 x 3 x N (LSPET) "
                        f"or 3 x 14 x N (LSP)")


def image_names(images: Path, n: int, layout: str) -> list[str]:
    """Names (relative to root) of the images of the N columns.

    The standard names (`im%05d` / `im%04d` from 1) when at least half of them exist: a missing one is reported while
    iterating and never shifts the others. Otherwise (a test folder holding, say, the remaining LSPET images
    im08001...) images numbered without a gap, N of them, are matched in numeric order; anything else is an
    error naming the folder, since matching by order would give later people the wrong joints."""
    files = {p.name for p in images.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS} if images.is_dir() else set()
    patterns = ["im%05d", "im%04d"] if layout == "lspet" else ["im%04d", "im%05d"]
    for pat in patterns:
        for ext in (".jpg", ".png"):
            standard = [f"{pat % (i + 1)}{ext}" for i in range(n)]
            if 0 < (found := sum(f in files for f in standard)) and found * 2 >= n:
                return [f"images/{f}" for f in standard]
    if not files:  # nothing there: the standard names; every image is reported missing while iterating
        return [f"images/{patterns[0] % (i + 1)}.jpg" for i in range(n)]
    numbered = sorted((int(m.group(1)), f) for f in files if (m := re.fullmatch(r"im(\d+)\.\w+", f)))
    numbers = [k for k, _ in numbered]
    if len(numbered) == len(files) == n and numbers == list(range(numbers[0], numbers[0] + n)):
        return [f"images/{f}" for _, f in numbered]
    gaps = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))[:5] if numbers else []
    raise BadInputError(f"{images}: cannot match the {n} joint columns to its {len(files)} images: they are neither "
                        f"the standard im00001... names nor {n} images numbered without a gap"
                        + (f" (missing numbers, e.g. {gaps})" if gaps else ""))


class LSP(ListingSource):
    """LSP or LSPET (detected from joints.mat)."""

    def __init__(self, root, *, joints: str = "joints.mat", margin: float = DEFAULT_MARGIN,
                 on_bad: str = "raise", dataset: str | None = None):
        self.root = Path(root)
        self._start(on_bad)
        self.margin = margin
        mat = self.root / joints
        kp, self.layout = read_joints(mat)
        self.info = SourceInfo(dataset or self.layout, INFO.keypoint_names, INFO.skeleton, INFO.normalisation)
        names = image_names(self.root / "images", len(kp), self.layout)
        self.records = []
        for i, (name, k) in enumerate(zip(names, kp)):
            where = f"{mat} (sample {i + 1})"
            if check_keypoints(k, where, self.problems):
                self.records.append((name, k, where))
        self._listing_done()

    def load(self, record) -> Sample | None:
        name, kp, _ = record
        return sample_at(self.problems, self.root / name, name, kp, box_of(kp))
