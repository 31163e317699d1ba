"""The protocol end to end on synthetic keypoints, the floors, checkpoints and bad inputs."""
import json

import pytest
import torch

from lmkcore.eval import evaluate, evaluate_checkpoint, mean_shape_floor, score, untrained_floor
from lmkcore.ops.coords import unit_to_norm


def _linear_world(make_annotations, n=80, m=30, k=4, j=5, seed=0):
    """Annotations (fit, test) and keypoints normalised [-1, 1] that are an exact linear function of them."""
    g = torch.Generator().manual_seed(seed)
    gt = 0.2 + 0.6 * torch.rand(n + m, j, 2, generator=g, dtype=torch.float64)
    a = torch.rand(2 * j, 2 * k, generator=g, dtype=torch.float64) / j  # annotations -> keypoints, no intercept
    kp = unit_to_norm((gt.reshape(n + m, -1) @ a).reshape(n + m, k, 2))
    boxes = torch.tensor([[1.0, 1.0, 61.0, 81.0]]).expand(n + m, 4)
    ann = make_annotations(gt, boxes=boxes, resolution=101, normalisation="bbox")
    return ann.subset(torch.arange(n)), ann.subset(torch.arange(n, n + m)), kp[:n], kp[n:]


def test_backward_error_of_linear_keypoints_is_zero(make_annotations):
    fit, test, kp_fit, kp_test = _linear_world(make_annotations)
    r = evaluate((kp_fit, kp_test), fit, test)
    assert r["metrics"]["backward_nme"] < 1e-6 and r["ridge"]["backward"] == 0.0
    assert r["metrics"]["keypoint_spread"] > 1.0  # the keypoints do move
    assert r["fit_images"] == 80 and r["test_images"] == 30 and r["K"] == 4 and r["J"] == 5
    assert set(r["metrics"]) == {"nme", "pck@0.2", "pck@0.1", "backward_nme", "keypoint_spread"}
    assert len(r["curves"]["forward"]) == len(r["curves"]["thresholds"]) == len(r["curves"]["backward"])
    json.dumps(r)  # every number is plain JSON


def test_forward_error_of_invertible_keypoints_is_zero_and_masks_invisible(make_annotations):
    g = torch.Generator().manual_seed(1)
    kp_unit = torch.rand(90, 3, 2, generator=g, dtype=torch.float64)
    w = torch.rand(6, 4, 2, generator=g, dtype=torch.float64) / 3
    gt = torch.einsum("nd,djc->njc", kp_unit.reshape(90, 6), w)
    vis = torch.rand(90, 4, generator=g) > 0.25
    gt = torch.where(vis[..., None], gt, torch.nan)  # invisible joints: garbage that must not be used
    ann = make_annotations(gt, vis, resolution=64, normalisation="image_size")
    fit, test = ann.subset(torch.arange(60)), ann.subset(torch.arange(60, 90))
    kp = unit_to_norm(kp_unit)
    r = evaluate((kp[:60], kp[60:]), fit, test, ridge=0.0)
    assert r["metrics"]["nme"] < 1e-8 and r["test_points"] == int(vis[60:].sum())
    # few-shot on fewer images than unknowns works with CV ridge, and is recorded
    r = evaluate((kp[:60], kp[60:]), fit, test, few_shot=(10, "10%"))
    assert [f["fit_images"] for f in r["few_shot"]] == [10, 6] and r["few_shot"][1]["n_fit"] == "10%"


def test_ridge_is_chosen_without_looking_at_the_test_set(make_annotations):
    fit, test, kp_fit, kp_test = _linear_world(make_annotations, n=14, k=6)
    g = torch.Generator().manual_seed(5)
    noisy = kp_fit + 0.3 * torch.randn(kp_fit.shape, generator=g, dtype=torch.float64)
    a = score(noisy, fit, kp_test, test, seed=0)
    b = score(noisy, fit, kp_test.flip(0) * 0.5, test.subset(torch.arange(29, -1, -1)), seed=0)
    assert a["ridge"] == b["ridge"] and a["ridge"]["forward"] > 0


def test_mean_shape_floor(make_annotations):
    fit = make_annotations([[[0.2, 0.2], [0.6, 0.6]], [[0.4, 0.2], [0.0, 0.0]]], [[True, True], [True, False]])
    test = make_annotations([[[0.3, 0.5], [0.6, 0.6]]])
    r = mean_shape_floor(fit, test)
    # mean shape: landmark 0 at (0.3, 0.2), landmark 1 at (0.6, 0.6) (its invisible entry ignored)
    # errors in pixels (R = 11): 3 and 0, normalised by 11 -> mean 1.5 / 11
    assert r["metrics"]["nme"] == pytest.approx(100 * 1.5 / 11)
    assert r["method"] == "mean-shape" and r["kind"] == "floor" and r["fit_images"] == 2
    # a one-image fit set: seed 0 draws the first image (with a visible second landmark)
    few = mean_shape_floor(fit, test, few_shot=(1,), seed=0)["few_shot"]
    assert few[0]["fit_images"] == 1 and few[0]["n_fit"] == "1"


def test_bad_inputs_raise_clearly(make_annotations):
    fit, test, kp_fit, kp_test = _linear_world(make_annotations)
    with pytest.raises(ValueError, match="79 fit keypoint sets for a fit set of 80"):
        evaluate((kp_fit[:-1], kp_test), fit, test)
    bad = kp_fit.clone()
    bad[[3, 7], 1, 0] = torch.nan
    with pytest.raises(ValueError, match=r"non-finite keypoints in 2 of 80 images, item indices \[3, 7\]"):
        evaluate((bad, kp_test), fit, test)
    with pytest.raises(ValueError, match="fit set too small"):
        evaluate((kp_fit, kp_test), fit, test, n_fit=5, ridge=0.0)
    with pytest.raises(ValueError, match="differ"):
        score(kp_fit, fit, kp_test[:, :3], test)


def _checkpoint(path, tiny_config, steps=0):
    from lmkcore.methods import build

    torch.manual_seed(0)
    m = build("autolink", **tiny_config)
    torch.save({"method": "autolink", "config": m.config_dict(), "model": m.state_dict(), "run": "tiny_run",
                "dataset": "procedural", "resolution": 32, "step": steps, "commit": "abc"}, path)
    (path.parent / "summary.json").write_text(json.dumps({"wall_s": 1.5, "images_per_s": 10.0,
                                                          "peak_memory_mb": 100.0}))


def test_checkpoint_untrained_floor_and_separate_test_store(tmp_path, tiny_config):
    from lmkcore.data import ProceduralSource, open_dataset, write_store

    _checkpoint(tmp_path / "last.pt", tiny_config, steps=3)
    store = write_store(tmp_path / "test.h5", ProceduralSource(12, 32, seed=9), 32)
    r = evaluate_checkpoint(tmp_path / "last.pt", "procedural", "fit", test_data=str(store), n_fit=16, seed=1)
    assert r["split"] == "test" and r["test_images"] == 12 and r["fit_images"] == 16
    assert r["steps"] == 3 and r["wall_s"] == 1.5 and r["images_per_s"] == 10.0 and r["commit"] == "abc"
    assert r["K"] == 4 and r["resolution"] == 32 and r["method"] == "autolink"
    with pytest.raises(ValueError, match="evaluation 'head': autolink offers"):
        evaluate_checkpoint(tmp_path / "last.pt", "procedural", "fit", test_data=str(store), evaluation="head")
    fit, val = open_dataset("procedural", "fit", 32), open_dataset("procedural", "val", 32)
    from lmkcore.methods import build

    torch.manual_seed(0)
    f = untrained_floor(build("autolink", **tiny_config), fit, val, n_fit=16, seed=0, max_test=8)
    assert f["kind"] == "untrained" and f["steps"] == 0 and f["test_images"] == 8 and f["method"] == "autolink"
    torch.manual_seed(0)
    again = untrained_floor(build("autolink", **tiny_config), fit, val, n_fit=16, seed=0, max_test=8)
    assert f["metrics"] == again["metrics"]  # same seed, same untrained weights, same numbers
    with pytest.raises(TypeError, match="takes a built Method"):  # eval never builds a method by name
        untrained_floor("autolink", fit, val)
