"""CelebA and its MAFL subsets: faces with 5 landmarks.

Official layout (Liu et al., ICCV 2015; the Google-Drive release)::

    root/Anno/list_landmarks_align_celeba.txt   202599            (line 1: number of images)
                                                lefteye_x lefteye_y ... rightmouth_y   (line 2: header)
                                                000001.jpg 69 109 106 113 77 142 73 152 108 154
    root/Anno/list_landmarks_celeba.txt         the same for the unaligned ("in the wild") photos
    root/Anno/list_bbox_celeba.txt              count, header `image_id x_1 y_1 width height`, rows
    root/Img/img_align_celeba/000001.jpg        aligned 178x218 crops
    root/Img/img_celeba/000001.jpg              unaligned photos
    root/MAFL/training.txt, testing.txt         MAFL split (Zhang et al.): one image name a line

The `Anno/`, `Img/` and `MAFL/` levels are optional (files directly in root are found too).
`subset` (a file of names, relative to root, root/MAFL or absolute) selects images; names it lists
that are not annotated are reported as bad input. Boxes (`list_bbox_celeba.txt`, x_1 y_1 width
height, describing the unaligned photos) are used only when `aligned=False`. Coordinates are kept
as written. Landmark order as MTFL: left eye, right eye, nose, left / right mouth corner.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..source import (
    BadInputError,
    Sample,
    SourceInfo,
    check_keypoints,
    parse_floats,
)
from .common import (
    ListingSource,
    find_dir,
    find_file,
    sample_at,
    text_lines,
    with_visibility,
    xywh_box,
)
from .mtfl import KEYPOINTS, SKELETON


def read_celeba_table(path: Path, n_values: int, problems) -> dict[str, tuple[np.ndarray, str]]:
    """name -> (values, where) of a CelebA annotation table (count line, header line, rows)."""
    out: dict[str, tuple[np.ndarray, str]] = {}
    lines = list(text_lines(path))
    if len(lines) < 2:
        problems(f"{path}:1", "expected a count line and a header line")
        return out
    count_no, count = lines[0]
    if not (count.isascii() and count.isdigit()):  # e.g. no count line: the header would be taken for it
        problems(f"{path}:{count_no}", f"expected the number of entries on the first line, got {count[:40]!r}")
    header_no, header = lines[1]
    fields = header.split()
    if len(fields) == n_values + 1 and all(_is_number(f) for f in fields[1:]):  # a row would be lost as the header
        problems(f"{path}:{header_no}", "a data row where the header line should be (is the count or the header "
                                        "line missing?)")
    for no, line in lines[2:]:
        where = f"{path}:{no}"
        fields = line.split()
        if len(fields) != n_values + 1:
            problems(where, f"expected {n_values + 1} fields (name + {n_values} values), got {len(fields)}")
            continue
        if fields[0] in out:
            problems(where, f"{fields[0]} is listed again (first at {out[fields[0]][1]})")
            continue
        values = parse_floats(fields[1:], where, problems)
        if values is not None:
            out[fields[0]] = (values, where)
    if count.isascii() and count.isdigit() and int(count) != len(lines) - 2:
        problems(f"{path}:{count_no}", f"count line says {count} entries, the file has {len(lines) - 2}")
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


class CelebA(ListingSource):
    """CelebA landmarks (aligned or unaligned photos), optionally restricted to a name list."""

    def __init__(self, root, *, aligned: bool = True, subset: str | None = None, on_bad: str = "raise",
                 dataset: str = "celeba"):
        self.root = Path(root)
        self._start(on_bad)
        self.info = SourceInfo(dataset, KEYPOINTS, SKELETON, "interocular:0,1")
        stem = "list_landmarks_align_celeba.txt" if aligned else "list_landmarks_celeba.txt"
        landmarks = find_file(self.root, [stem, f"Anno/{stem}"], "landmark file")
        folder = "img_align_celeba" if aligned else "img_celeba"
        self.images = find_dir(self.root, [folder, f"Img/{folder}"], "image folder")
        table = read_celeba_table(landmarks, 10, self.problems)
        boxes = {}
        if not aligned:
            try:  # boxes are optional
                bbox_file = find_file(self.root, ["list_bbox_celeba.txt", "Anno/list_bbox_celeba.txt"],
                                      "boxes")
            except BadInputError:
                bbox_file = None
            if bbox_file is not None:
                boxes = read_celeba_table(bbox_file, 4, self.problems)
        names = list(table)
        if subset is not None:
            split = find_file(self.root, [subset, f"MAFL/{subset}"], "subset file") \
                if not Path(subset).is_absolute() else Path(subset)
            names = []
            for no, line in text_lines(split):
                name = line.split()[0]
                if name in table:
                    names.append(name)
                else:
                    self.problems(f"{split}:{no}", f"{name} has no landmarks in {landmarks.name}")
        self.records = []
        for name in names:
            values, where = table[name]
            kp = with_visibility(values.reshape(5, 2))
            if not check_keypoints(kp, where, self.problems):
                continue
            box = xywh_box(*boxes[name][0]) if name in boxes else None
            self.records.append((name, kp, box))
        self._listing_done()

    def load(self, record) -> Sample | None:
        name, kp, box = record
        return sample_at(self.problems, self.images / name, name, kp, box)


class MAFL(CelebA):
    """The MAFL split of aligned CelebA: `split="train"` (MAFL/training.txt) or "test" (testing.txt)."""

    def __init__(self, root, split: str = "train", *, on_bad: str = "raise"):
        files = {"train": "training.txt", "test": "testing.txt"}
        super().__init__(root, aligned=True, subset=files.get(split, split), on_bad=on_bad, dataset="mafl")
