"""A plain folder of images without labels.

Layout::

    root/**/*.jpg | .jpeg | .png | .bmp | .webp | .tif | .tiff   (recursive, any case)

Images are sorted by their path relative to root (which is also their name); keypoints have shape
(0, 3) and `info.keypoint_names` is empty. Hidden files and folders (starting with '.') are ignored.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..source import BadInputError, Sample, SourceInfo, load_image
from .common import IMAGE_EXTENSIONS, ListingSource


class Folder(ListingSource):
    def __init__(self, root, *, dataset: str = "folder", on_bad: str = "raise"):
        self.root = Path(root)
        self._start(on_bad)
        if not self.root.is_dir():
            raise BadInputError(f"{self.root}: folder not found")
        self.info = SourceInfo(dataset, [])
        files = (p.relative_to(self.root) for p in self.root.rglob("*")
                 if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        self.records = sorted(p.as_posix() for p in files
                              if not any(part.startswith(".") for part in p.parts))
        self._listing_done()

    def record_name(self, record) -> str:
        return record

    def load(self, record) -> Sample | None:
        image = load_image(self.root / record, self.problems)
        if image is None:
            return None
        return Sample(record, image, np.zeros((0, 3), np.float32), None)
