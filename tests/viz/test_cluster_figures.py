"""Figures of the self-training method (viz/clusters.py), on hand-made pseudo-labels."""
import torch

from lmkcore.methods.selftrain import SelfTrain, SelfTrainConfig
from lmkcore.data.pseudo_labels import PseudoLabels
from lmkcore.ops.coords import pixels_to_norm
from lmkcore.viz.clusters import cluster_colours, cluster_counts, cluster_gallery, labelled_points, landmarks, patches


def toy_labels(n: int = 6, m: int = 5) -> PseudoLabels:
    image = torch.arange(n).repeat_interleave(3)
    cluster = torch.tensor([0, 1, 2] * n) + (torch.arange(n * 3) // 9)  # clusters 0-3
    return PseudoLabels(torch.arange(n), torch.rand(n * 3, 2) * 1.6 - 0.8, image, cluster, torch.zeros(m, 4),
                        torch.ones(m))


def test_patches_are_centred_on_their_points():
    img = torch.zeros(1, 3, 33, 33)
    img[0, :, 10, 20] = 1.0
    crop = patches(img, pixels_to_norm(torch.tensor([[20.0, 10.0]]), 33), size=5, extent=4 / 32 * 2)
    assert crop.shape == (1, 3, 5, 5) and crop[0, 0, 2, 2] == 1 and crop[0, 0].sum() == 1


def test_cluster_figures_are_written(tmp_path):
    labels = toy_labels()
    data = [{"image": torch.rand(3, 32, 32)} for _ in range(6)]
    images = torch.stack([d["image"] for d in data])
    labelled_points(images, labels, path=tmp_path / "points.png")
    fig = cluster_gallery(data, labels, path=tmp_path / "gallery.png", per_cluster=4)
    assert len([a for a in fig.axes if a.images]) == sum(min(4, int(c)) for c in labels.counts() if c > 0)
    cluster_counts([labels.counts(), labels.counts() * 2], path=tmp_path / "counts.png")
    for name in ("points", "gallery", "counts"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    assert cluster_colours(30).shape == (30, 3)


def test_landmark_figure_counts_the_confident_ones(tmp_path):
    torch.manual_seed(0)
    m = SelfTrain(SelfTrainConfig(n_clusters=4, resolution=32, stride=2, stem=8, width=16, depth=2, descriptor_dim=4,
                                  stage=2, n_parts=4)).eval()
    with torch.no_grad():
        m.net.landmarks.bias.copy_(torch.tensor([1.0, -1.0, 1.0, -1.0]))  # channels 0, 2 confident everywhere
        m.net.landmarks.weight.zero_()
    fig = landmarks(m, torch.rand(2, 3, 32, 32), path=tmp_path / "lm.png", cols=2)
    assert fig.axes[0].get_title() == "2/4 confident"
    assert (tmp_path / "lm.png").stat().st_size > 1000
