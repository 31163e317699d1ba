"""BBC Pose: sign-language videos with 7 upper-body joints.

Official layout (Charles et al. 2013; `bbcpose_extbbcpose_code_1.0` + the frame archives)::

    root/<video>/<frame>.jpg        video = 1..20, frame = the frame number (e.g. 1/41.jpg)
    root/code/bbcpose.mat           (or root/bbcpose.mat) struct array `bbcpose`, one element per
                                    video, fields videoName, type (train/val/test), source,
                                    train_frames (1 x N), train_joints (2 x 7 x N),
                                    test_frames, test_joints (manual ground truth, val/test videos)

`videos` selects videos by 1-based number (default: those whose `type` field is `video_type`:
"train" -> 1-10, "val" -> 11-15, "test" -> 16-20 as listed in the file; None = all).
`annotations="train"` reads train_frames / train_joints (semi-automatic, every video), "test" the
manual test_frames / test_joints (val and test videos only). Only the videos named in the file are
read; `one_based=False` keeps the coordinates as written.
Joints: head, right wrist, left wrist, right elbow, left elbow, right shoulder, left shoulder;
MATLAB 1-based pixels, shifted by -1 (as mmpose does). All joints visible; `box` = joint extent.
Normalisation "image_size" (the toolkit scores a 6-px threshold at half resolution).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from ..source import BadInputError, Sample, SourceInfo, check_keypoints
from .common import ListingSource, box_of, find_file, sample_at, with_visibility

JOINTS = ["head", "right_wrist", "left_wrist", "right_elbow", "left_elbow", "right_shoulder", "left_shoulder"]
SKELETON = [(0, 5), (0, 6), (5, 6), (5, 3), (3, 1), (6, 4), (4, 2)]
_POSITIONS = {"videoName": 0, "type": 1, "source": 2, "train_frames": 3, "train_joints": 4,
              "test_frames": 5, "test_joints": 6}


def _field(video, name: str):
    names = video.dtype.names or ()
    return video[name] if name in names else video[_POSITIONS[name]]


def _text(x) -> str:
    a = np.asarray(x).ravel()
    return str(a[0]) if a.size else ""


class BBCPose(ListingSource):
    def __init__(self, root, *, video_type: str | None = "train", videos=None, annotations: str = "train",
                 one_based: bool = True, on_bad: str = "raise"):
        self.root = Path(root)
        self._start(on_bad)
        self.info = SourceInfo("bbcpose", JOINTS, SKELETON, "image_size")
        if annotations not in ("train", "test"):
            raise ValueError(f"annotations must be 'train' or 'test', got {annotations!r}")
        mat = find_file(self.root, ["code/bbcpose.mat", "bbcpose.mat"], "annotation file bbcpose.mat")
        try:
            table = scipy.io.loadmat(str(mat))["bbcpose"].ravel()
        except Exception as e:
            raise BadInputError(f"{mat}: cannot read struct array 'bbcpose' ({type(e).__name__}: {e})") from e
        if videos is None:
            videos = [i + 1 for i, v in enumerate(table)
                      if video_type is None or _text(_field(v, "type")) == video_type]
        self.records = []
        for number in videos:
            if not 1 <= number <= len(table):
                raise BadInputError(f"{mat}: no video {number} (has {len(table)})")
            v = table[number - 1]
            frames = np.asarray(_field(v, f"{annotations}_frames"), np.float64).ravel()
            joints = np.asarray(_field(v, f"{annotations}_joints"), np.float32)
            if joints.size == 0 and frames.size == 0:
                continue
            if joints.ndim == 2 and len(frames) == 1:
                joints = joints[:, :, None]
            if joints.shape != (2, len(JOINTS), len(frames)):
                raise BadInputError(f"{mat}: video {number} {annotations}_joints has shape {joints.shape}, "
                                    f"expected (2, {len(JOINTS)}, {len(frames)})")
            for i, frame in enumerate(frames):
                kp = with_visibility(joints[:, :, i].T - (1.0 if one_based else 0.0))
                if check_keypoints(kp, f"{mat} (video {number}, frame {i + 1})", self.problems):
                    self.records.append((f"{number}/{int(frame)}.jpg", kp))
        self._listing_done()

    def load(self, record) -> Sample | None:
        name, kp = record
        return sample_at(self.problems, self.root / name, name, kp, box_of(kp))
