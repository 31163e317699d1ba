"""Human3.6M, the "simplified" frame release used by Jakab/Lorenz/AutoLink (32 2D joints).

Layout (as read by the public AutoLink code; the release itself has no written description)::

    root/S1/WithBackground/Directions.54138969/000001.jpg     person-centred square frames
    root/S1/Landmarks/Directions.54138969/000001.mat          `keypoints_2d`: (32, 2) x, y
    ... subjects S1 S5 S6 S7 S8 S9 (train) and S11 (test); sequence folders start with the activity
    (`withBackground/`, as some re-creations spell it, is accepted too)

`subjects` (default: all S* folders) and `activities` (default: the six of the simplified protocol:
Directions, Discussion, Posing, Waiting, Greeting, Walking; None = every sequence) select frames.
Frames without a landmark file are bad input (reported). `keypoints_2d` values all within [-0.5, 1.5]
are taken as normalised image coordinates, [0, 1] = first / last pixel centre (what AutoLink's
regression assumes), and converted to pixels; anything larger is taken as pixels (`units` forces
one or the other). All joints are visible; `box` = joint extent. Normalisation "image_size".
Joint order = the 32 Human3.6M motion-capture joints; left/right pairs as in AutoLink's
evaluation (17-23 left arm, 25-31 right arm, 6-10 left leg, 1-5 right leg).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from ..source import BadInputError, Sample, SourceInfo, check_keypoints, float32_trouble, load_image
from .common import (
    IMAGE_EXTENSIONS,
    ListingSource,
    box_of,
    natural_key,
    with_visibility,
)

ACTIVITIES = ("Directions", "Discussion", "Posing", "Waiting", "Greeting", "Walking")
TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9")
TEST_SUBJECTS = ("S11",)
JOINTS = ["pelvis", "right_hip", "right_knee", "right_ankle", "right_toe", "right_toe_end",
          "left_hip", "left_knee", "left_ankle", "left_toe", "left_toe_end",
          "spine", "spine_mid", "thorax", "neck_nose", "head",
          "left_collar", "left_shoulder", "left_elbow", "left_wrist", "left_thumb", "left_thumb_end",
          "left_hand", "left_hand_end",
          "right_collar", "right_shoulder", "right_elbow", "right_wrist", "right_thumb", "right_thumb_end",
          "right_hand", "right_hand_end"]
# parent of each joint in the motion-capture tree (-1 = root)
PARENTS = [-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20, 19, 22,
           12, 24, 25, 26, 27, 28, 27, 30]
SKELETON = [(p, j) for j, p in enumerate(PARENTS) if p >= 0]


def read_keypoints_2d(path: Path, problems) -> np.ndarray | None:
    try:
        kp = np.asarray(scipy.io.loadmat(str(path))["keypoints_2d"])
    except Exception as e:  # missing key, corrupt file
        problems(str(path), f"cannot read 'keypoints_2d' ({type(e).__name__}: {e})")
        return None
    if (trouble := float32_trouble(kp)) is not None:
        problems(str(path), f"'keypoints_2d' {trouble}")
        return None
    kp = kp.astype(np.float32)
    if kp.shape == (64,) or kp.shape == (1, 64):
        kp = kp.reshape(32, 2)
    if kp.shape != (32, 2):
        problems(str(path), f"'keypoints_2d' has shape {kp.shape}, expected (32, 2)")
        return None
    return kp


class H36M(ListingSource):
    def __init__(self, root, *, subjects=None, activities=ACTIVITIES, units: str = "auto",
                 on_bad: str = "raise"):
        self.root = Path(root)
        self._start(on_bad)
        if units not in ("auto", "normalised", "pixels"):
            raise ValueError(f"units must be 'auto', 'normalised' or 'pixels', got {units!r}")
        self.units = units
        self.info = SourceInfo("h36m", JOINTS, SKELETON, "image_size")
        if not self.root.is_dir():
            raise BadInputError(f"{self.root}: folder not found")
        subjects = subjects or sorted(
            (d.name for d in self.root.iterdir() if d.is_dir() and d.name.startswith("S")), key=natural_key)
        self.records = []
        for s in subjects:
            frames = next((self.root / s / d for d in ("WithBackground", "withBackground")
                           if (self.root / s / d).is_dir()), None)
            if frames is None:
                raise BadInputError(f"{self.root / s / 'WithBackground'}: folder not found")
            for seq in sorted((d for d in frames.iterdir() if d.is_dir()), key=lambda d: natural_key(d.name)):
                if activities is not None and not seq.name.startswith(tuple(activities)):
                    continue
                for f in sorted((f for f in seq.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS),
                                key=lambda f: natural_key(f.name)):
                    mat = self.root / s / "Landmarks" / seq.name / (f.stem + ".mat")
                    if not mat.is_file():
                        self.problems(str(mat), "landmark file not found")
                        continue
                    self.records.append((f.relative_to(self.root).as_posix(), mat))
        self._listing_done()

    def load(self, record) -> Sample | None:
        name, mat = record
        xy = read_keypoints_2d(mat, self.problems)
        if xy is None:
            return None
        image = load_image(self.root / name, self.problems)
        if image is None:
            return None
        h, w = image.shape[:2]
        finite = xy[np.isfinite(xy)]
        normalised = self.units == "normalised" or (
            self.units == "auto" and finite.size and finite.min() >= -0.5 and finite.max() <= 1.5)
        if normalised:
            xy = xy * np.array([w - 1, h - 1], np.float32)
        kp = with_visibility(xy)
        if not check_keypoints(kp, str(mat), self.problems):
            return None
        return Sample(name, image, kp, box_of(kp))
