"""Weight-free interest points, NMS, training stamps and the arg-max read-out (ops/interest.py)."""
import pytest
import torch

from lmkcore.ops.coords import norm_to_pixels, pixels_to_norm
from lmkcore.ops.interest import (STAMP_SIGMA, argmax_points, detect_points, in_box, map_nms, points_nms,
                                  sample_descriptors, stamp_maps)

pytest.importorskip("cv2")


def checkerboard(size: int = 64, cell: int = 8) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (((yy // cell) + (xx // cell)) % 2).float()[None].repeat(3, 1, 1)  # (3, S, S)


def test_bootstrap_detector_finds_the_checkerboard_corners():
    """The 7 x 7 inner corners of an 8 x 8 checkerboard (at 7.5 + 8 i px), each once, within a pixel."""
    p, s, d = detect_points(checkerboard(), size=128)
    px = norm_to_pixels(p, 64)  # (N, 2)
    assert len(px) == 49
    nearest = ((px - 7.5) / 8).round().clamp(0, 6) * 8 + 7.5
    assert (px - nearest).abs().max() < 1.0
    assert len({tuple(v) for v in nearest.tolist()}) == 49  # every corner, none twice
    assert d.shape == (49, 128) and torch.allclose(d.norm(dim=1), torch.ones(49), atol=1e-5)
    assert (s[:-1] >= s[1:]).all()  # strongest first


def test_sift_detector_runs_and_border_filter_holds():
    p, _, d = detect_points(checkerboard(), size=128, detector="sift", border=10)
    px = norm_to_pixels(p, 128)
    assert len(p) > 0 and d.shape[1] == 128
    assert (px >= 10 - 1e-4).all() and (px <= 117 + 1e-4).all()
    with pytest.raises(ValueError, match="detector"):
        detect_points(checkerboard(), detector="orb")


def test_map_nms_keeps_one_pixel_of_a_plateau_and_separate_peaks():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 1] = x[0, 0, 2, 2] = 1.0  # a plateau of two pixels
    x[0, 0, 0, 4] = 0.5  # a weaker peak outside their boxes
    keep = map_nms(x, 1)[0, 0]
    assert keep.sum() == 2 and keep[2, 2] and keep[0, 4]


def test_points_nms_closed_form():
    pts = torch.tensor([[10.0, 10.0], [13.0, 10.0], [20.0, 10.0], [20.0, 10.0]])
    keep = points_nms(pts, torch.tensor([0.5, 0.9, 0.3, 0.3]), (32, 32), radius=3)
    assert keep.tolist() == [1, 2]  # (10,10) loses to (13,10) 3 px away; the tied duplicate keeps its first


def test_stamps_closed_form():
    pts = pixels_to_norm(torch.tensor([[[3.0, 4.0], [0.0, 0.0]]]), (8, 8))  # (1, 2, 2)
    m = stamp_maps(pts, torch.tensor([[True, False]]), 8, 8, STAMP_SIGMA)
    assert m[0, 0, 4, 3] == 1 and m[0, 1].sum() == 0
    assert m[0, 0, 4, 4] == pytest.approx(0.41, abs=0.005) and m[0, 0, 5, 4] == pytest.approx(0.169, abs=0.005)
    assert m[0, 0, 4, 5] == 0  # a 3 x 3 stamp
    one_hot = stamp_maps(pts, torch.tensor([[True, True]]), 8, 8)
    assert one_hot.sum() == 2 and one_hot[0, 1, 0, 0] == 1


def test_argmax_points_exact_on_a_pixel_and_subpixel_between_two():
    h = torch.zeros(1, 2, 9, 9)
    h[0, 0, 2, 6] = 0.8
    h[0, 1, 4, 4] = h[0, 1, 4, 5] = 0.6
    kp, peak = argmax_points(h)
    px = norm_to_pixels(kp, 9)
    assert torch.allclose(px[0, 0], torch.tensor([6.0, 2.0])) and peak[0, 0] == pytest.approx(0.8)
    assert torch.allclose(px[0, 1], torch.tensor([4.5, 4.0]))


def test_sample_descriptors_at_pixel_centres():
    desc = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)
    pts = pixels_to_norm(torch.tensor([[[1.0, 2.0], [3.0, 0.0]]]), 4)
    s = sample_descriptors(desc, pts)  # (1, 2, 2)
    assert torch.equal(s[0, 0], desc[0, :, 2, 1]) and torch.equal(s[0, 1], desc[0, :, 0, 3])


def test_in_box_with_margin():
    pts = pixels_to_norm(torch.tensor([[5.0, 5.0], [11.0, 5.0], [30.0, 30.0]]), 32)
    inside = in_box(pts, torch.tensor([4.0, 4.0, 10.0, 10.0]), 32, margin=0.2)
    assert inside.tolist() == [True, True, False]  # margin 0.2 x 6 px: the box reaches 11.2
