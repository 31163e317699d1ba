"""Pseudo-label quality: labels that sit on the annotations score near zero, labels at random places near
the spread, and the command bootstraps fit images only and writes its row."""
import json

import torch

from lmkcore.data import ProceduralSource, write_store
from lmkcore.data.pseudo_labels import PseudoLabels
from lmkcore.eval import Annotations
from lmkcore.experiments.label_quality import label_scores, main


def _annotations(n=60, j=4, seed=0) -> Annotations:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, j, 2, generator=g, dtype=torch.float64) * 0.6 + 0.2
    kp = (base + 0.08 * torch.randn(n, 1, 2, generator=g, dtype=torch.float64)  # the object moves ...
          + 0.01 * torch.randn(n, j, 2, generator=g, dtype=torch.float64)).clamp(0, 1)  # ... its parts a little
    return Annotations(kp, torch.ones(n, j, dtype=torch.bool), torch.tensor([[0.0, 0.0, 63.0, 63.0]]).expand(n, 4),
                       torch.arange(n), 64, "image_size", "synthetic", [f"lm{i}" for i in range(j)])


def _labels(points: torch.Tensor, present: torch.Tensor) -> PseudoLabels:
    n, m = present.shape
    return PseudoLabels.from_dense(torch.arange(n), points, present, torch.zeros(m, 8), torch.zeros(m))


def test_labels_on_the_annotations_score_near_zero_and_random_ones_near_the_spread():
    ann = _annotations()
    n, j = ann.keypoints.shape[:2]
    present = torch.rand(n, j, generator=torch.Generator().manual_seed(1)) < 0.8  # some labels missing
    good = label_scores(_labels(ann.keypoints.float() * 2 - 1, present), ann)
    assert good["images"] == n and good["clusters"] == j
    assert abs(good["labels_per_image"] - present.sum(1).double().mean().item()) < 1e-9
    assert good["backward_nme"] < 1.0 and good["forward_nme"] < 5.0
    assert good["common_clusters"] == j and good["backward_common"] < 1.0
    noise = torch.rand(n, j, 2, generator=torch.Generator().manual_seed(2)) * 2 - 1
    bad = label_scores(_labels(noise, present), ann)
    assert bad["backward_nme"] > 20 * good["backward_nme"]
    assert bad["backward_nme"] > 0.8 * bad["keypoint_spread"]  # the annotations explain nothing of them


def test_a_cluster_seen_in_one_half_only_is_left_out():
    ann = _annotations(n=20, j=3)
    present = torch.ones(20, 3, dtype=torch.bool)
    present[1::2, 2] = False  # cluster 2 only on the images the regressors are fit on
    r = label_scores(_labels(ann.keypoints.float() * 2 - 1, present), ann)
    assert r["clusters"] == 2


def test_the_command_bootstraps_fit_images_and_writes_its_row(tmp_path):
    names = [f"figure_5_{i:06d}" for i in range(40)]
    store = write_store(tmp_path / "fig.h5", ProceduralSource(n=40, size=64, seed=5), 64,
                        splits={"fit": names[:30], "val": names[30:]})
    reports = tmp_path / "reports"
    out = main(["--data", str(store), "--name", "tiny", "--images", "20", "--hold", "5", "--reports", str(reports),
                "n_clusters=4", "bootstrap_size=64"])
    assert out["images"] == 20 and 0 < out["clusters"] <= 4
    row = json.loads((reports / "label_quality" / "tiny.json").read_text())
    assert row["fields"] == ["n_clusters=4", "bootstrap_size=64"]
    assert "| tiny | 20 |" in (reports / "label_quality.md").read_text()


def test_the_oracle_names_landmarks_that_look_alike_across_images(tmp_path):
    names = [f"figure_5_{i:06d}" for i in range(40)]
    store = write_store(tmp_path / "fig.h5", ProceduralSource(n=40, size=64, seed=5), 64,
                        splits={"fit": names[:30], "val": names[30:]})
    out = main(["--data", str(store), "--name", "fig", "--images", "20", "--hold", "5", "--oracle",
                "--reports", str(tmp_path), "bootstrap_size=64", "desc_size=8", "desc_size=16"])
    chance = 100 / out["landmarks"]
    assert set(out["accuracy"]) == {"8", "16"}
    assert all(chance < v <= 100 for v in out["accuracy"].values())  # procedural parts differ in look
    assert (tmp_path / "label_quality" / "oracle_fig.json").exists()
