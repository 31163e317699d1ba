"""viz.parts: the part-based figures draw, and the part colouring and ellipses are where they should be."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lmkcore.methods import build  # noqa: E402
from lmkcore.viz.parts import colour_parts, covariance_ellipses, draw_ellipses, part_maps, part_swaps  # noqa: E402

TINY = dict(n_parts=3, in_dim=32, map_dim=16, stem=8, channels=8, depth=2, n_features=4, reconstr_dim=32,
            gen_base=4, gen_max=8, feature_levels=2)


def test_colour_parts_paints_each_part_in_its_colour():
    maps = torch.zeros(2, 4, 4)
    maps[0, 0, 0], maps[1, 3, 3] = 1.0, 1.0
    rgb = colour_parts(maps, 4)
    assert rgb.shape == (4, 4, 3)
    assert not np.allclose(rgb[0, 0], rgb[3, 3]) and rgb[0, 0].max() > 0.3


def test_ellipse_axes_follow_the_covariance():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    draw_ellipses(ax, torch.zeros(1, 2), torch.tensor([[[0.04, 0.0], [0.0, 0.01]]]), 33, n_std=1.0)
    e = ax.patches[0]
    assert abs(e.width - 6.4) < 1e-6  # major: 2 sd_x = 0.4 normalised = 6.4 px at 33 px
    assert abs(e.height - 3.2) < 1e-6 and abs(abs(e.angle) % 180) < 1e-6  # minor along y; major along x
    plt.close(fig)


def test_figures_draw(tmp_path):
    torch.manual_seed(0)
    m = build("partbased", **TINY).eval()
    x = torch.rand(4, 3, 32, 32)
    part_maps(m, x, tmp_path / "parts.png", cols=2)
    covariance_ellipses(m, x, tmp_path / "cov.png", cols=2)
    fig = part_swaps(m, x, tmp_path / "swap.png", n=3)
    assert len(fig.axes) == 16
    assert all((tmp_path / f).stat().st_size > 0 for f in ("parts.png", "cov.png", "swap.png"))
