"""nets.hourglass and nets.generator: shapes, widths from arguments, errors that name the parameter."""
import pytest
import torch

from lmkcore.nets import Hourglass, PartEncoder, PartGenerator, generator_sizes


def test_hourglass_keeps_the_shape():
    assert Hourglass(3, 8)(torch.randn(2, 8, 16, 16)).shape == (2, 8, 16, 16)


@pytest.mark.parametrize("in_dim,map_dim", [(32, 16), (64, 16)])
def test_part_encoder_gives_normalised_maps_and_features(in_dim, map_dim):
    enc = PartEncoder(5, in_dim=in_dim, map_dim=map_dim, stem=8, channels=16, depth=2, n_features=6).eval()
    maps, feats = enc(torch.rand(2, 3, in_dim, in_dim))
    assert maps.shape == (2, 5, map_dim, map_dim) and feats.shape == (2, 6, map_dim, map_dim)
    torch.testing.assert_close(maps.sum((2, 3)), torch.ones(2, 5))


def test_part_encoder_names_bad_sizes():
    with pytest.raises(ValueError, match="in_dim"):
        PartEncoder(5, in_dim=48, map_dim=32)
    with pytest.raises(ValueError, match="depth"):
        PartEncoder(5, in_dim=32, map_dim=16, depth=5)


def test_generator_builds_the_image_from_encodings_at_every_size():
    sizes = generator_sizes(32)
    assert sizes == [4, 8, 16, 32]
    gen = PartGenerator([7, 7, 3, 3], 32, base=4, max_width=16)
    out = gen([torch.randn(2, c, s, s) for c, s in zip([7, 7, 3, 3], sizes)])
    assert out.shape == (2, 3, 32, 32) and (out >= 0).all() and (out <= 1).all()
    with pytest.raises(ValueError, match="out_dim"):
        generator_sizes(48)
