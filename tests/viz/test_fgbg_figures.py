"""Figures of the pose / appearance / background method (lmkcore.viz.fgbg)."""
import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from lmkcore.methods import build  # noqa: E402
from lmkcore.viz.fgbg import factorisation, mask_overlays  # noqa: E402

TINY = dict(use_temporal=False, use_warped=True, n_landmarks=3, img_size=16, stem=4, channels=8, depth=1, n_filters=4,
            gen_base=2, gen_max=8, feature_levels=1, mask_base=2, mask_depth=1, bg_base=2, bg_depth=1, rec_loss="l1")


def test_factorisation_has_a_column_per_branch(tmp_path):
    torch.manual_seed(0)
    images = torch.rand(3, 3, 16, 16)
    fig = factorisation(build("fgbg", **TINY).eval(), images, tmp_path / "f.png", n=2)
    assert len(fig.axes) == 2 * 6 and (tmp_path / "f.png").stat().st_size > 1000
    assert [ax.get_title() for ax in fig.axes[:6]][2] == "foreground mask"
    plain = factorisation(build("fgbg", **{**TINY, "use_fg_bg_mask": False}).eval(), images, n=2)
    assert len(plain.axes) == 2 * 4  # no mask, no background


def test_mask_overlays_with_a_reference(tmp_path):
    torch.manual_seed(0)
    images = torch.rand(3, 3, 16, 16)
    reference = torch.zeros(3, 1, 16, 16)
    reference[:, :, 4:12, 4:12] = 1
    fig = mask_overlays(build("fgbg", **TINY).eval(), images, reference, tmp_path / "m.png", cols=2)
    assert len(fig.axes) == 4 and (tmp_path / "m.png").stat().st_size > 1000
