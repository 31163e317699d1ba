"""MTFL: faces with 5 landmarks, from a listing text file.

Official layout (Zhang et al., ECCV 2014, `MTFL.zip`)::

    root/training.txt   lfw_5590\\Aaron_Eckhart_0001.jpg x1..x5 y1..y5 gender smile glasses pose
    root/testing.txt    AFLW\\2780-image11569.jpg ...   (same columns; the AFLW test faces)
    root/lfw_5590/ root/net_7876/ root/AFLW/         the images (paths relative to the listing's folder)

Paths use backslashes and there are 4 attribute columns. The workbook's 80x80 variant
(the shared `data/mtfl`) uses the same listing with forward slashes and without the attribute
columns; both are read by `MTFL`. Landmark order: left eye, right eye, nose, left mouth corner,
right mouth corner ("left" = image left). Coordinates are kept as written (`one_based=False`);
pass `one_based=True` to subtract 1 from listings written with MATLAB 1-based pixels (DVE does
this for the original MTFL / AFLW files).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..source import Sample, SourceInfo, check_keypoints, parse_floats
from .common import ListingSource, sample_at, text_lines, with_visibility

KEYPOINTS = ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"]
SKELETON = [(0, 1), (0, 2), (1, 2), (2, 3), (2, 4), (3, 4)]
INFO = SourceInfo("mtfl", KEYPOINTS, SKELETON, "interocular:0,1")


def parse_mtfl_listing(listing: Path, problems, one_based: bool = False) -> list[tuple]:
    """Records (name, keypoints (5, 3), where) of an MTFL-format listing; bad lines go to `problems`."""
    records = []
    for no, line in text_lines(listing):
        where = f"{listing}:{no}"
        fields = line.split()
        if len(fields) not in (11, 15):
            problems(where, f"expected 11 fields (path + 10 coordinates) or 15 (+ 4 attributes), "
                            f"got {len(fields)}")
            continue
        values = parse_floats(fields[1:], where, problems)
        if values is None:
            continue
        xy = np.stack([values[0:5], values[5:10]], 1) - (1.0 if one_based else 0.0)
        kp = with_visibility(xy)
        if not check_keypoints(kp, where, problems):
            continue
        records.append((fields[0].replace("\\", "/"), kp, where))
    return records


class MTFL(ListingSource):
    """Faces listed in an MTFL-format text file (training.txt, testing.txt or any other)."""

    def __init__(self, root, listing: str = "training.txt", *, one_based: bool = False,
                 on_bad: str = "raise", dataset: str = "mtfl"):
        self.root = Path(root)
        self._start(on_bad)
        self.info = SourceInfo(dataset, INFO.keypoint_names, INFO.skeleton, INFO.normalisation)
        self.listing = self.root / listing  # image paths are relative to the listing's folder
        self.base = self.listing.parent
        self.records = parse_mtfl_listing(self.listing, self.problems, one_based)
        self._listing_done()

    def load(self, record) -> Sample | None:
        name, kp, _ = record
        return sample_at(self.problems, self.base / name, name, kp)
