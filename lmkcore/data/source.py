"""What every data source yields, and how sources report bad input.

A source is a small class that reads one data set's *official* layout and iterates `Sample`s
with keypoints in pixels of the original image. `data.store.write_store` turns any source into
the workbook's one HDF5 format.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image


class BadInputError(ValueError):
    """An input file, line or value that cannot be used; the message names where."""


@dataclass
class SourceInfo:
    """Data-set facts stored as attributes beside the images."""

    dataset: str
    keypoint_names: list[str]
    skeleton: list[tuple[int, int]] = field(default_factory=list)  # ground-truth edges, for drawing
    # How errors are normalised: "interocular:i,j" | "image_size" | "bbox".
    normalisation: str = "image_size"


@dataclass
class Sample:
    name: str  # path relative to the source root, or a frame id
    image: np.ndarray  # (H, W, 3) uint8
    keypoints: np.ndarray  # (K, 3) float32: x, y, visible (pixels of `image`)
    box: np.ndarray | None = None  # (4,) x0, y0, x1, y1 of the object, pixels; None = whole image


class Problems:
    """Collects bad inputs: raises at once (`on_bad="raise"`) or records and reports them ("skip")."""

    def __init__(self, on_bad: str = "raise"):
        if on_bad not in ("raise", "skip"):
            raise ValueError(f"on_bad must be 'raise' or 'skip', got {on_bad!r}")
        self.on_bad = on_bad
        self.skipped: list[str] = []

    def __call__(self, where: str, reason: str) -> None:
        msg = f"{where}: {reason}"
        if self.on_bad == "raise":
            raise BadInputError(msg)
        self.skipped.append(msg)

    def report(self, what: str) -> None:
        if self.skipped:
            shown = "\n  ".join(self.skipped[:20])
            more = f"\n  ... and {len(self.skipped) - 20} more" if len(self.skipped) > 20 else ""
            warnings.warn(f"{what}: skipped {len(self.skipped)} bad input(s):\n  {shown}{more}", stacklevel=3)


def load_image(path: Path, problems: Problems) -> np.ndarray | None:
    """RGB uint8 `(H, W, 3)`, or None after reporting a missing / unreadable file."""
    if not path.is_file():
        problems(str(path), "image file not found")
        return None
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:  # PIL raises several types for corrupt files
        problems(str(path), f"unreadable image ({type(e).__name__}: {e})")
        return None


def check_keypoints(kp: np.ndarray, where: str, problems: Problems) -> bool:
    """Visible keypoints must be finite; invisible ones may be NaN (they are zeroed)."""
    vis = kp[:, 2] > 0
    if not np.isfinite(kp[vis, :2]).all():
        problems(where, "non-finite keypoint coordinates")
        return False
    kp[~vis, :2] = np.nan_to_num(kp[~vis, :2])
    return True


def parse_floats(fields: list[str], where: str, problems: Problems) -> np.ndarray | None:
    try:
        return np.asarray([float(f) for f in fields], dtype=np.float32)
    except ValueError as e:
        problems(where, f"not a number ({e})")
        return None


class Source:
    """Base of the sources: `info`, `__len__`, `__iter__` over `Sample`s, and `problems`."""

    info: SourceInfo
    problems: Problems

    def __len__(self) -> int:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Sample]:
        raise NotImplementedError
