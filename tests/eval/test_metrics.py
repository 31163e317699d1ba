"""NME / PCK / curves on a hand-computed example (R = 11: pixels = unit * 10)."""
import pytest
import torch

from lmkcore.eval import cumulative_curve, evaluate_predictions, normaliser, point_errors, summarise
from lmkcore.eval.metrics import pck_thresholds
from lmkcore.ops.coords import unit_to_norm

# image 0: GT pixels (1, 1), (5, 1), (3, 5); image 1: (2, 2), (8, 2), (5, 6)
GT = torch.tensor([[[0.1, 0.1], [0.5, 0.1], [0.3, 0.5]], [[0.2, 0.2], [0.8, 0.2], [0.5, 0.6]]], dtype=torch.float64)
# errors in pixels: image 0: 1, 0, 5 (to (6, 9)); image 1: 0.9, 0, 0
PRED = torch.tensor([[[0.1, 0.2], [0.5, 0.1], [0.6, 0.9]], [[0.2, 0.29], [0.8, 0.2], [0.5, 0.6]]],
                    dtype=torch.float64)
# boxes: image 0 is 4 x 4 px, image 1 is 6 x 4 px -> size max(w, h) = 4 and 6, like the eye distances
BOXES = torch.tensor([[1.0, 1.0, 5.0, 5.0], [2.0, 2.0, 8.0, 6.0]], dtype=torch.float64)


def test_normalisers_in_pixels():
    vis = torch.ones(2, 3, dtype=torch.bool)
    torch.testing.assert_close(normaliser("interocular:0,1", GT, vis, BOXES, 11), torch.tensor([4.0, 6.0],
                               dtype=torch.float64))
    torch.testing.assert_close(normaliser("bbox", GT, vis, BOXES, 11), torch.tensor([4.0, 6.0], dtype=torch.float64))
    torch.testing.assert_close(normaliser("image_size", GT, vis, BOXES, 11), torch.tensor([11.0, 11.0],
                               dtype=torch.float64))


def test_nme_and_pck_equal_hand_computed_values():
    vis = torch.ones(2, 3, dtype=torch.bool)
    err = point_errors(PRED, GT, torch.tensor([4.0, 6.0], dtype=torch.float64), 11)
    torch.testing.assert_close(err, torch.tensor([[0.25, 0.0, 1.25], [0.15, 0.0, 0.0]], dtype=torch.float64))
    s = summarise(err, vis, torch.tensor([0.0, 0.2, 1.0, 2.0], dtype=torch.float64), pck_thresholds("bbox"))
    assert s["nme"] == pytest.approx(1.65 / 6)  # (0.25 + 1.25 + 0.15) / 6 = 27.5 %
    assert s["pck@0.2"] == pytest.approx(4 / 6) and s["pck@0.1"] == pytest.approx(3 / 6)
    assert s["per_landmark"]["nme"] == pytest.approx([0.2, 0.0, 0.625])
    assert s["per_image"] == pytest.approx([0.5, 0.05])
    assert s["curve"] == pytest.approx([0.0, 0.5, 1.0, 1.0])  # fraction of images with error <= t
    # invisible image-1 landmark 0 is not scored: (0.25 + 1.25) / 5
    vis[1, 0] = False
    s = summarise(err, vis, torch.zeros(1, dtype=torch.float64), pck_thresholds("interocular:0,1"))
    assert s["nme"] == pytest.approx(0.3) and "pck@0.2" not in s


def test_evaluate_predictions_reports_percent_per_normalisation(make_annotations):
    for spec, expect in (("interocular:0,1", {"nme": 27.5}), ("bbox", {"nme": 27.5, "pck@0.2": 400 / 6,
                                                                         "pck@0.1": 50.0}),
                         ("image_size", {"nme": 100 * 6.9 / 6 / 11})):
        test = make_annotations(GT, boxes=BOXES, normalisation=spec)
        r = evaluate_predictions(unit_to_norm(PRED), test)
        assert r["metrics"] == pytest.approx(expect), spec
        assert r["test_points"] == 6 and r["normalisation"] == spec


def test_cumulative_curve_and_degenerate_normalisers():
    torch.testing.assert_close(cumulative_curve(torch.tensor([0.1, 0.3]), torch.tensor([0.0, 0.1, 0.5])),
                               torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    vis = torch.ones(2, 3, dtype=torch.bool)
    vis[1, 1] = False
    with pytest.raises(ValueError, match=r"landmarks 0 and 1 visible.*\[1\]"):
        normaliser("interocular:0,1", GT, vis, BOXES, 11)
    with pytest.raises(ValueError, match=r"bbox normaliser is zero.*\[0\]"):
        normaliser("bbox", GT, vis, torch.tensor([[1.0, 1, 1, 1], [0, 0, 2, 2]]), 11)
    with pytest.raises(ValueError, match="unknown normalisation"):
        normaliser("iod", GT, vis, BOXES, 11)
