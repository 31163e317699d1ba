"""Methods through `evaluate`: confidence as visibility, the supervised head on frozen features, and a
method evaluated both ways giving two reports. A fake method reads its outputs back from its images."""
import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from lmkcore.eval import evaluate, few_shot_indices, mean_shape_floor
from lmkcore.eval import head as head_mod
from lmkcore.eval.head import HeadConfig, fit_head, predict_head, split_holdout, tps_copies
from lmkcore.eval.report import collect, write_report
from lmkcore.methods.base import Method
from lmkcore.ops.heatmaps import gaussian_maps

RES = 16
FAST = HeadConfig(virtual=8, lr=1e-2, weight_decay=0.0, max_steps=200, eval_every=20, patience=4, TPS_aug=False)


class Table(torch.utils.data.Dataset):
    """Items whose image rows carry what `Reader` reads back: row 0 its keypoints (2K numbers), row 1
    their confidence (K), row 2 the landmarks (2J); annotations = the landmarks, all visible."""

    def __init__(self, gt, kp, conf):
        self.gt, self.kp, self.conf, self.resolution = gt.float(), kp.float(), conf.float(), RES
        self.info = SimpleNamespace(normalisation="image_size", dataset="table", skeleton=None,
                                    keypoint_names=[f"lm{j}" for j in range(gt.shape[1])])

    def __len__(self):
        return len(self.gt)

    def __getitem__(self, i):
        img = torch.zeros(3, RES, RES)
        img[0, 0, :self.kp[i].numel()] = self.kp[i].flatten()
        img[0, 1, :self.conf.shape[1]] = self.conf[i]
        img[0, 2, :self.gt[i].numel()] = self.gt[i].flatten()
        return {"image": img, "keypoints": self.gt[i], "visible": torch.ones(self.gt.shape[1], dtype=torch.bool),
                "box": torch.tensor([0.0, 0.0, RES - 1.0, RES - 1.0])}


@dataclass
class ReaderConfig:
    n_parts: int = 4
    n_landmarks: int = 3
    with_confidence: bool = True


class Reader(Method):
    """Keypoints and confidence as written in the image; features = Gaussian bumps at the landmarks."""

    name = "reader"
    config_class = ReaderConfig
    evaluations = ("keypoints", "head")

    def keypoints(self, images):
        return images[:, 0, 0, :2 * self.config.n_parts].reshape(len(images), -1, 2)  # (B, K, 2)

    def confidence(self, images):
        return images[:, 0, 1, :self.config.n_parts] if self.config.with_confidence else None  # (B, K)

    def features(self, images):
        lm = images[:, 0, 2, :2 * self.config.n_landmarks].reshape(len(images), -1, 2)  # (B, J, 2)
        return gaussian_maps(lm, 12, 12, 0.15)  # (B, J, 12, 12)


def _world(n=60, m=24, k=4, j=3, seed=0):
    """Landmarks, keypoints that are a linear function of them, confidence hiding keypoint 2 in every other
    image (its coordinates there: garbage); fit and test tables."""
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(n + m, j, 2, generator=g) * 1.4 - 0.7  # normalised [-1, 1]
    a = torch.rand(2 * j, 2 * k, generator=g) / j
    kp = ((gt.reshape(n + m, -1) * 0.5 + 0.5) @ a).reshape(n + m, k, 2) * 2 - 1
    conf = torch.ones(n + m, k)
    conf[::2, 2] = 0.1  # below the threshold 0.5: absent
    kp[::2, 2] = 0.9 - kp[::2, 2] * 3  # garbage where absent
    return (Table(gt[:n], kp[:n], conf[:n]), Table(gt[n:], kp[n:], conf[n:]), kp.double(), conf >= 0.5)


def test_confidence_of_a_method_masks_its_keypoints():
    fit, test, kp, present = _world()
    n = len(fit)
    r = evaluate(Reader(ReaderConfig()), fit, test, ridge=0.0)
    # the same numbers from the keypoints with the presence mask, and with NaN where absent
    given = evaluate((kp[:n], kp[n:], present[:n], present[n:]), fit, test, ridge=0.0)
    nan = torch.where(present[..., None], kp, torch.nan)
    assert r["metrics"] == given["metrics"] == evaluate((nan[:n], nan[n:], present[:n], present[n:]), fit, test,
                                                        ridge=0.0)["metrics"]
    # backward over present keypoints only recovers the exact linear map despite the garbage
    assert r["metrics"]["backward_nme"] < 1e-4 and r["per_keypoint_presence"] == [1.0, 1.0, 0.5, 1.0]
    # without the mask the garbage is fit as if it were a keypoint
    assert evaluate((kp[:n], kp[n:]), fit, test, ridge=0.0)["metrics"]["backward_nme"] > 1.0
    # forward: an absent keypoint is its fit-set mean over present images (the image centre never present)
    mean = kp[:n][present[:n, 2], 2].mean(0)  # (2,) normalised (an affine map: the same mean in [0, 1])
    imputed = torch.where(present[..., None], kp, mean)
    ref = evaluate((imputed[:n], imputed[n:]), fit, test, ridge=0.0)
    assert r["metrics"]["nme"] == pytest.approx(ref["metrics"]["nme"], rel=1e-6)
    assert r["per_landmark"]["nme"] == pytest.approx(ref["per_landmark"]["nme"], rel=1e-6)


def test_a_method_without_confidence_or_graph_is_scored_as_its_keypoints():
    fit, test, kp, _ = _world()
    fit.info.skeleton = [[0, 1], [1, 2]]  # data with a skeleton, a method without a graph (graph() is None)
    r = evaluate(Reader(ReaderConfig(with_confidence=False)), fit, test)
    assert r["metrics"] == evaluate((kp[:len(fit)], kp[len(fit):]), fit, test)["metrics"]
    assert "per_keypoint_presence" not in r and "skeleton" not in r and r["evaluation"] == "keypoints"
    with pytest.raises(TypeError, match="not str"):
        evaluate("reader", fit, test)


def test_holdout_split_is_seeded_and_disjoint():
    train, val = split_holdout(50, 0.1, seed=3)
    assert len(val) == 5 and len(set(train.tolist()) | set(val.tolist())) == 50
    assert not set(train.tolist()) & set(val.tolist())
    assert torch.equal(val, split_holdout(50, 0.1, seed=3)[1]) and not torch.equal(val, split_holdout(50, 0.1, 4)[1])
    assert split_holdout(1, 0.1)[1].numel() == 0 and split_holdout(2, 0.1)[1].numel() == 1


def test_head_reads_out_landmarks_from_bump_features_and_stops_on_fit_images_only(monkeypatch):
    fit, test, _, _ = _world(n=60, m=24)
    method = Reader(ReaderConfig())
    seen = []  # (features, targets) the early stopping scores

    def spy(head, features, target, visible, device):
        seen.append((features.clone(), target.clone()))
        return real(head, features, target, visible, device)

    real = head_mod._held_out_error
    monkeypatch.setattr(head_mod, "_held_out_error", spy)
    r = evaluate(method, fit, test, n_fit=40, few_shot=(10,), seed=1, evaluation="head", head=FAST)
    assert r["evaluation"] == "head" and r["K"] == 4 and r["fit_images"] == 40 and r["test_images"] == 24
    floor = mean_shape_floor(fit, test, n_fit=40, seed=1)["metrics"]["nme"]  # % of the image side, ~20
    assert r["metrics"]["nme"] < 5.0 and r["metrics"]["nme"] < floor / 4
    assert "backward_nme" not in r["metrics"] and r["per_keypoint_backward"] is None
    h = r["head"]
    assert h["train_images"] + h["val_images"] == 40 and h["val_images"] == 4 and 0 < h["best_step"] <= h["steps"]
    fit_items = set(few_shot_indices(len(fit), 40, seed=1).tolist())
    assert set(h["val_items"]) <= fit_items
    # every held-out score read exactly the held-out fit images' features, never a test image's
    val_features = method.features(torch.stack([fit[i]["image"] for i in h["val_items"]]))
    assert seen and all(torch.allclose(f, val_features) for f, _ in seen[:len(h["history"])])
    test_features = method.features(torch.stack([test[i]["image"] for i in range(len(test))]))
    assert not any(f.shape == test_features.shape for f, _ in seen)
    # few-shot: a deterministic subset of the same fit pool
    few = r["few_shot"][0]
    assert few["fit_images"] == 10 and set(few["head"]["val_items"]) <= set(few_shot_indices(len(fit), 10, 1).tolist())
    json.dumps(r)


def test_fit_head_recovers_positions_and_masks_invisible_targets():
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(64, 2, 2, generator=g) * 1.4 - 0.7
    feats = gaussian_maps(gt, 12, 12, 0.15)  # (N, J, 12, 12)
    visible = torch.ones(48, 2, dtype=torch.bool)
    visible[::3, 1] = False
    targets = torch.where(visible[..., None], gt[:48], torch.nan)  # invisible: NaN, must not be used
    hf = fit_head(feats[:48], targets, visible, FAST)
    pred = predict_head(hf.head, feats[48:])  # (16, 2, 2)
    assert pred.shape == (16, 2, 2) and (pred - gt[48:]).norm(dim=-1).mean() < 0.06  # normalised units
    short = HeadConfig(virtual=4, max_steps=20, eval_every=10)  # the same seed, the same head
    a, b = (predict_head(fit_head(feats[:48], targets, visible, short, seed=2).head, feats[48:]) for _ in range(2))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="fit_head expects"):
        fit_head(feats[:4, 0], gt[:4], visible[:4])


def test_tps_copies_move_the_landmarks_with_their_image():
    """A dot drawn at each landmark is found, in every warped copy, where the copy's targets say."""
    from lmkcore.ops.coords import grid

    g = torch.Generator().manual_seed(0)
    gt = torch.tensor([[[-0.4, -0.3], [0.35, 0.3]]]).repeat(3, 1, 1)  # (N, J, 2)
    u = grid(48, 48)  # (48, 48, 2)
    dots = torch.exp(-((u[None, None] - gt[:, :, None, None]) ** 2).sum(-1) / (2 * 0.05**2))  # (N, J, 48, 48)
    images = torch.cat([dots, torch.zeros(3, 1, 48, 48)], 1)  # (N, 3, 48, 48): dot j in channel j
    visible = torch.ones(3, 2, dtype=torch.bool)
    feats, moved, seen = tps_copies(lambda x: x, images, gt, visible, 4, generator=g)
    assert feats.shape == (12, 3, 48, 48) and moved.shape == (12, 2, 2) and seen.all()
    mass = feats[:, :2] / feats[:, :2].sum((2, 3), keepdim=True)  # (12, J, 48, 48)
    centre = (mass[..., None] * u).sum((2, 3))  # (12, J, 2)
    torch.testing.assert_close(centre, moved, atol=0.01, rtol=0)
    assert (moved - gt.repeat(4, 1, 1)).norm(dim=-1).mean() > 0.01  # the warps moved them
    feats2, moved2, _ = tps_copies(lambda x: x, images, gt, visible, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(moved, moved2)  # seeded


def test_few_shot_fits_tile_only_their_training_images():
    config = HeadConfig(virtual=4, max_steps=20, eval_every=10, repeat=100)
    assert (config.copies(9), config.copies(50), config.copies(51), config.copies(6000)) == (11, 2, 1, 1)
    assert HeadConfig(TPS_aug=False).copies(9) == 1
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(10, 2, 2, generator=g) * 1.4 - 0.7
    feats, visible, asked = gaussian_maps(gt, 12, 12, 0.15), torch.ones(10, 2, dtype=torch.bool), []

    def augment(rows, warps):
        asked.append((rows.clone(), warps))
        return feats[rows].repeat(warps, 1, 1, 1), gt[rows].repeat(warps, 1, 1), visible[rows].repeat(warps, 1)

    hf = fit_head(feats, gt, visible, config, augment=augment)
    (rows, warps), = asked
    assert torch.equal(rows, hf.train_rows) and not set(rows.tolist()) & set(hf.val_rows.tolist())
    assert warps == config.copies(9) - 1 == 10 and hf.augmented == 9 * 10
    assert fit_head(feats, gt, visible, HeadConfig(virtual=4, max_steps=20, eval_every=10, repeat=10),
                    augment=augment).augmented == 0 and len(asked) == 1  # 9 of 10: not few-shot, not asked


def test_a_method_evaluated_both_ways_gives_two_reports(tmp_path):
    fit, test, _, _ = _world(n=40, m=12)
    method = Reader(ReaderConfig())
    meta = dict(method="reader", kind="trained", run="reader_k4_table-16_10", split="val", steps=10)
    for kind in method.evaluations:
        r = evaluate(method, fit, test, evaluation=kind, head=FAST)
        write_report({**r, **meta}, tmp_path, figures=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reader_k4_table-16_10", "reader_k4_table-16_10_head"]
    rows = collect(tmp_path)
    by = {}
    for row in rows:
        by.setdefault(row["report"], {})[row["metric"]] = row
    assert set(by["reader_k4_table-16_10"]) == {"nme", "backward_nme", "keypoint_spread"}
    assert set(by["reader_k4_table-16_10_head"]) == {"nme"}  # no backward error for a head: absent, not 0
    assert by["reader_k4_table-16_10_head"]["nme"]["evaluation"] == "head"
    assert "evaluation" not in by["reader_k4_table-16_10"]["nme"]  # absent = keypoints (older rows unchanged)
    md = (tmp_path / "benchmarks.md").read_text()
    assert "[reader_k4_table-16_10_head](" in md and "[head]: a supervised head" in md
