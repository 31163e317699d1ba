"""DeepFashion (In-shop) keypoints: the split of Lorenz et al.'s public reproduction.

Layout (CompVis/unsupervised-disentangling `transfer-demo/.../datasets/deepfashion`, as read by
AutoLink)::

    root/data_train.csv, data_test.csv     header `id,filename`; filename below img/
    root/data_train.json, data_test.json   list of {"image_path", "keypoints": 17 x [x, y] (256-px
                                           image), "keypoints_confidence", "bbox": [x, y, w, h],
                                           "joint_order", ...}
    root/img/ (or images/)                 the In-shop images, WOMEN/Dresses/id_00000002/02_1_front.jpg

Keypoints were estimated by AlphaPose (COCO order) and the subset keeps images whose 17 confidences
all exceed 0.5, so every keypoint is marked visible. Rows are matched to json entries by image path
(AutoLink matches them by position; both agree on the released files). `box` = the json bbox as
(x, y, x + w - 1, y + h - 1). The protocol scores PCK at 6 px on the 256-px images, i.e. a threshold
of 6/256 of the image size: normalisation "image_size".
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..source import BadInputError, Sample, SourceInfo, check_keypoints
from .common import (
    ListingSource,
    csv_rows,
    find_dir,
    need_file,
    sample_at,
    with_visibility,
    xywh_box,
)

KEYPOINTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
             "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
             "left_knee", "right_knee", "left_ankle", "right_ankle"]
SKELETON = [(0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12),
            (11, 12), (11, 13), (13, 15), (12, 14), (14, 16)]


class DeepFashion(ListingSource):
    def __init__(self, root, split: str = "train", *, listing: str | None = None, on_bad: str = "raise"):
        self.root = Path(root)
        self._start(on_bad)
        self.info = SourceInfo("deepfashion", KEYPOINTS, SKELETON, "image_size")
        table = need_file(self.root / (listing or f"data_{split}.csv"))
        ann = need_file(table.with_suffix(".json"))
        self.images = find_dir(self.root, ["img", "images"], "image folder")
        try:
            entries = json.loads(ann.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadInputError(f"{ann}: not valid json ({e})") from e
        by_path = {}
        for i, e in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(e, dict) and "image_path" in e:
                by_path[e["image_path"]] = (i, e)
        header, rows = csv_rows(table, self.problems)  # rows with a field count other than 2 are reported
        if len(header) != 2:
            raise BadInputError(f"{table}:1: expected a header `id,filename`, got {header}")
        self.records = []
        for where, row in rows:
            name = row[1].strip()
            if name not in by_path:
                self.problems(where, f"{name} has no entry in {ann.name}")
                continue
            i, e = by_path[name]
            kp = self._keypoints(e, f"{ann} (entry {i + 1}, {name})")
            if kp is None:
                continue
            box = e.get("bbox")
            box = xywh_box(*box) if isinstance(box, list) and len(box) == 4 else None
            self.records.append((name, kp, box))
        self._listing_done()

    def _keypoints(self, entry: dict, where: str) -> np.ndarray | None:
        try:
            xy = np.asarray(entry["keypoints"], np.float32)
        except (KeyError, TypeError, ValueError) as e:
            self.problems(where, f"no numeric 'keypoints' ({type(e).__name__}: {e})")
            return None
        if xy.shape != (len(KEYPOINTS), 2):
            self.problems(where, f"'keypoints' has shape {xy.shape}, expected ({len(KEYPOINTS)}, 2)")
            return None
        kp = with_visibility(xy)
        return kp if check_keypoints(kp, where, self.problems) else None

    def load(self, record) -> Sample | None:
        name, kp, box = record
        return sample_at(self.problems, self.images / name, name, kp, box)
