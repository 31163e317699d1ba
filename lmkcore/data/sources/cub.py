"""CUB-200-2011: birds with 15 part locations, visibility flags and boxes.

Official layout (Wah et al. 2011, `CUB_200_2011.tgz`; root = the CUB_200_2011 folder)::

    root/images.txt               <image_id> <path below images/>
    root/images/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg ...
    root/parts/parts.txt          <part_id> <part name>          (15 parts; names may hold spaces)
    root/parts/part_locs.txt      <image_id> <part_id> <x> <y> <visible>
    root/bounding_boxes.txt       <image_id> <x> <y> <width> <height>
    root/train_test_split.txt     <image_id> <is_training_image>

`split="train" | "test" | None` (all). Coordinates: CUB's files are MATLAB-style 1-based pixels
(the convention of the CMR/AutoLink preprocessing, which subtracts 1); they are converted to the
workbook's 0-based pixel centres (`one_based=False` keeps them as written). Invisible parts are
written as (0, 0) and stay at (0, 0). The box becomes (x-1, y-1, x-1 + w-1, y-1 + h-1).
Normalisation "bbox"; the common protocols score visible parts only (AutoLink: error / crop size;
Cheng et al.: PCK at 5 %).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..source import (
    BadInputError,
    Sample,
    SourceInfo,
    check_keypoints,
    parse_floats,
)
from .common import ListingSource, sample_at, text_lines, xywh_box

PARTS = ["back", "beak", "belly", "breast", "crown", "forehead", "left_eye", "left_leg", "left_wing",
         "nape", "right_eye", "right_leg", "right_wing", "tail", "throat"]
_EDGES = [("beak", "forehead"), ("forehead", "crown"), ("crown", "nape"), ("nape", "back"), ("back", "tail"),
          ("beak", "throat"), ("throat", "breast"), ("breast", "belly"), ("belly", "tail"),
          ("forehead", "left_eye"), ("forehead", "right_eye"), ("back", "left_wing"), ("back", "right_wing"),
          ("belly", "left_leg"), ("belly", "right_leg")]
SKELETON = [(PARTS.index(a), PARTS.index(b)) for a, b in _EDGES]


def _table(path: Path, n_fields: int, problems) -> list[tuple[str, list[str]]]:
    """(where, fields) of the lines of a CUB table with `n_fields` whitespace-separated fields."""
    out = []
    for no, line in text_lines(path):
        fields = line.split()
        if len(fields) != n_fields:
            problems(f"{path}:{no}", f"expected {n_fields} fields, got {len(fields)}")
            continue
        out.append((f"{path}:{no}", fields))
    return out


def _by_id(rows: list[tuple[str, list[str]]], problems) -> dict[str, tuple[str, list[str]]]:
    """{id: (where, fields)} of a table's rows keyed by their first field; an id listed again is reported
    (the first row is kept)."""
    out: dict[str, tuple[str, list[str]]] = {}
    for where, fields in rows:
        if fields[0] in out:
            problems(where, f"id {fields[0]} is listed again (first at {out[fields[0]][0]})")
            continue
        out[fields[0]] = (where, fields)
    return out


class CUB(ListingSource):
    def __init__(self, root, split: str | None = None, *, one_based: bool = True, on_bad: str = "raise"):
        self.root = Path(root)
        self._start(on_bad)
        if split not in ("train", "test", None):
            raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
        p = self.problems
        names = [line.split(maxsplit=1)[1].strip().lower().replace(" ", "_")
                 for _, line in text_lines(self.root / "parts" / "parts.txt") if len(line.split()) > 1]
        if len(names) != len(PARTS):
            raise BadInputError(f"{self.root / 'parts' / 'parts.txt'}: expected {len(PARTS)} parts, "
                                f"got {len(names)}")
        self.info = SourceInfo("cub", names, SKELETON, "bbox")
        images = {i: f[1] for i, (_, f) in _by_id(_table(self.root / "images.txt", 2, p), p).items()}
        shift = 1.0 if one_based else 0.0
        boxes = {}
        for where, f in _by_id(_table(self.root / "bounding_boxes.txt", 5, p), p).values():
            v = parse_floats(f[1:], where, p)
            if v is not None:
                boxes[f[0]] = xywh_box(*v, offset=shift)
        parts: dict[str, np.ndarray] = {}
        first: dict[str, str] = {}
        seen = defaultdict(set)
        for where, f in _table(self.root / "parts" / "part_locs.txt", 5, p):
            v = parse_floats(f[1:], where, p)
            if v is None:
                continue
            k = int(v[0]) - 1
            if not 0 <= k < len(PARTS) or v[0] != k + 1:
                p(where, f"part id {f[1]} is not in 1..{len(PARTS)}")
                continue
            if k in seen[f[0]]:
                p(where, f"part {k + 1} of image {f[0]} is listed again")
                continue
            kp = parts.setdefault(f[0], np.zeros((len(PARTS), 3), np.float32))
            first.setdefault(f[0], where)
            kp[k] = (v[1], v[2], float(v[3] > 0))
            if v[3] > 0:
                kp[k, :2] -= shift
            seen[f[0]].add(k)
        keep = None
        if split is not None:
            keep = {f[0] for _, f in _table(self.root / "train_test_split.txt", 2, p)
                    if f[1] == ("1" if split == "train" else "0")}
        self.records = []
        for image_id, rel in images.items():
            if keep is not None and image_id not in keep:
                continue
            where = first.get(image_id, str(self.root / "parts" / "part_locs.txt"))
            if len(seen[image_id]) != len(PARTS):
                p(where, f"image {image_id} has {len(seen[image_id])} of {len(PARTS)} parts")
                continue
            if image_id not in boxes:
                p(str(self.root / "bounding_boxes.txt"), f"no box for image {image_id}")
                continue
            if check_keypoints(parts[image_id], where, p):
                self.records.append((rel, parts[image_id], boxes[image_id]))
        self._listing_done()

    def load(self, record) -> Sample | None:
        name, kp, box = record
        return sample_at(self.problems, self.root / "images" / name, name, kp, box)
