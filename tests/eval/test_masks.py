"""Foreground-mask scores (lmkcore.eval.masks): IoU, the skeleton estimate, chance levels."""
import pytest
import torch

from lmkcore.data.procedural import INFO, ProceduralFigures
from lmkcore.eval.masks import evaluate_masks, mask_iou, reference_masks, skeleton_masks, soft_iou


def test_mask_iou_closed_form():
    a = torch.zeros(3, 1, 4, 4)
    b = torch.zeros(3, 1, 4, 4)
    a[0, 0, :2] = 1  # 8 pixels
    b[0, 0, 1:3] = 1  # 8 pixels, 4 shared: IoU 4 / 12
    a[1, 0] = 1
    b[1, 0] = 0.4  # below the threshold: nothing, IoU 0
    iou = mask_iou(a, b)
    assert iou.tolist() == pytest.approx([1 / 3, 0.0, 1.0])  # both empty: 1
    with pytest.raises(ValueError, match="differ"):
        mask_iou(a, b[:, :, :2])


def test_soft_iou_closed_form():
    t = torch.tensor([1.0, 1.0, 0.0, 0.0]).reshape(1, 1, 2, 2)
    p = torch.tensor([0.5, 1.0, 0.5, 0.0]).reshape(1, 1, 2, 2)
    assert soft_iou(p, t).item() == pytest.approx(1.5 / 2.5)  # min: .5 + 1 + 0 + 0; max: 1 + 1 + .5 + 0
    assert soft_iou(t, t).item() == pytest.approx(1.0)


def test_skeleton_masks_are_capsules_along_visible_bones():
    kp = torch.tensor([[[-0.5, 0.0], [0.5, 0.0], [0.5, 0.9]]])  # (1, 3, 2): a horizontal bone, then a vertical one
    vis = torch.tensor([[True, True, False]])
    m = skeleton_masks(kp, vis, [(0, 1), (1, 2)], 21, thickness=0.15)  # radius 0.15 x extent 1.0
    assert m.shape == (1, 1, 21, 21)
    grid_step = 2 / 20
    row = round((0.0 + 1) / grid_step)
    assert m[0, 0, row, 10] == 1 and m[0, 0, row + 1, 10] == 1  # on the bone and 0.1 below it
    assert m[0, 0, row + 2, 10] == 0  # 0.2 away: outside
    assert m[0, 0, round(1.9 / grid_step), 15] == 0  # the bone to the hidden joint is not drawn
    with pytest.raises(ValueError, match="skeleton"):
        skeleton_masks(kp, vis, [], 21)


def test_reference_masks_true_or_skeleton():
    data = ProceduralFigures(4, 32, seed=1)
    true, kind = reference_masks(data, [0, 1], 32)
    assert kind == "true" and true.shape == (2, 1, 32, 32)
    torch.testing.assert_close(true[1], data.mask(1))

    class Joints(torch.utils.data.Dataset):  # a store-like data set: joints, no drawn figure
        info = INFO

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return data[i]

    est, kind = reference_masks(Joints(), [0, 1], 32)
    assert kind == "skeleton"
    assert mask_iou(est, true).mean() > 0.3  # the capsules find most of the drawn figure


class Oracle(torch.nn.Module):
    """A 'method' whose mask is the data set's true figure (looked up by image)."""

    def __init__(self, data):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.data = data
        self.lookup = {float(data[i]["image"].sum()): data.mask(i) for i in range(len(data))}

    def mask(self, images):
        return torch.stack([self.lookup[float(x.sum())] for x in images])


def test_evaluate_masks_scores_an_oracle_above_both_chance_levels():
    data = ProceduralFigures(12, 32, seed=4)
    r = evaluate_masks(Oracle(data), data, n=12, batch_size=5)
    assert r["iou"] == pytest.approx(1.0) and r["soft_iou"] == pytest.approx(1.0)
    assert r["soft_iou_constant"] < 0.5 and r["soft_iou_permuted"] < 0.6
    assert r["iou_constant"] < 0.5 and r["iou_permuted"] < 0.6
    assert r["reference"] == "true" and r["n"] == 12


def test_the_protocol_scores_a_predicted_foreground_where_the_data_has_a_reference():
    """`evaluate` adds `masks` for a method that declares a "mask" layer, on data with a reference (drawn
    figures; joints of bodies), and not on faces; the benchmark rows carry the IoU as a diagnostic."""
    from lmkcore.eval import evaluate
    from lmkcore.eval.masks import has_reference
    from lmkcore.eval.report import rows_of
    from lmkcore.methods import build

    torch.manual_seed(0)
    method = build("fgbg", use_temporal=False, use_warped=True, n_landmarks=4, img_size=32, stem=8, channels=16,
                   depth=2, n_filters=8, gen_base=4, gen_max=16, feature_levels=2, mask_base=4, mask_depth=1,
                   bg_base=4, bg_depth=1, rec_loss="l1")
    fit, test = ProceduralFigures(12, 32, seed=2), ProceduralFigures(8, 32, seed=3)
    r = evaluate(method, fit, test, batch_size=4)
    assert r["masks"]["reference"] == "true" and r["masks"]["n"] == 8 and 0 <= r["masks"]["iou"] <= 1
    diag = {row["metric"]: row["value"] for row in rows_of(r, "x") if row["metric"].startswith("diag:mask_")}
    assert diag["diag:mask_iou"] == pytest.approx(100 * r["masks"]["iou"]) and "diag:mask_iou_permuted" in diag

    class Faces(torch.utils.data.Dataset):  # face landmarks outline no foreground
        info = type(INFO)("mtfl", ["a", "b"], [(0, 1)], "interocular:0,1")

    class Frames(torch.utils.data.Dataset):  # bodies normalised by the image size (BBC pose, H3.6M)
        info = type(INFO)("bbcpose", ["a", "b"], [(0, 1)], "image_size")

    assert has_reference(fit) and has_reference(type("People", (), {"info": INFO})()) and not has_reference(Faces())
    assert has_reference(Frames())
    method.layers = {k: v for k, v in method.layers.items() if k != "mask"}  # no foreground predicted
    assert "masks" not in evaluate(method, fit, test, batch_size=4)
