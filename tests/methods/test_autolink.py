import pytest
import torch

from lmkcore.methods import build
from lmkcore.methods.autolink import AutoLinkConfig
from lmkcore.train import TrainConfig, train


def test_shapes_and_graph(tiny_autolink):
    x = torch.rand(2, 3, 32, 32)
    kp = tiny_autolink.keypoints(x)
    assert kp.shape == (2, 4, 2) and kp.abs().max() <= 1
    g = tiny_autolink.graph()
    assert g.shape == (4, 4) and torch.equal(g, g.T) and torch.all(g.diagonal() == 0)
    # initial weights are softplus(graph_init +- noise)
    init = torch.nn.functional.softplus(torch.tensor(tiny_autolink.config.graph_init))
    assert torch.allclose(g[0, 1], init, rtol=0.2)
    vis = tiny_autolink.visuals(x)
    assert set(vis) == set(tiny_autolink.layers)
    assert vis["heatmaps"].shape == (2, 4, 16, 16) and vis["reconstruction"].shape == (2, 3, 32, 32)


def test_images_of_another_size_are_resized(tiny_autolink):
    assert tiny_autolink.keypoints(torch.rand(1, 3, 48, 48)).shape == (1, 4, 2)


def test_graph_gets_gradients_through_the_edge_map(tiny_autolink):
    tiny_autolink.train()
    loss, _ = tiny_autolink.loss({"image": torch.rand(4, 3, 32, 32)})
    loss.backward()
    assert tiny_autolink.theta.grad.abs().sum() > 0
    assert tiny_autolink.detector.head.weight.grad.abs().sum() > 0


def test_prior_starts_keypoints_apart_and_alike_across_images(tiny_config):
    torch.manual_seed(0)
    method = build("autolink", **{**tiny_config, "prior": 0.2, "head_init": 0.01}).eval()
    kp = method.keypoints(torch.rand(3, 3, 32, 32))  # (3, K, 2)
    assert (kp - kp[:1]).abs().max() < 0.02  # the same spots in every image
    d = torch.cdist(kp[0], kp[0]) + torch.eye(4)
    assert d.min() > 0.2  # and K different spots
    without = build("autolink", **{**tiny_config, "head_init": 0.01}).eval().keypoints(torch.rand(3, 3, 32, 32))
    assert (torch.cdist(without[0], without[0]) + torch.eye(4)).min() < 0.05  # all K start at the centre


def test_prior_fits_heatmaps_at_any_resolution(tiny_config):
    method = build("autolink", **{**tiny_config, "prior": 0.2, "resolution": 36})
    assert method.heatmaps(torch.rand(2, 3, 36, 36)).shape[-2:] == method.prior.shape[-2:]


def test_equivariance_term(tiny_config):
    torch.manual_seed(0)
    method = build("autolink", **{**tiny_config, "equiv": 1.0})
    loss, logs = method.loss({"image": torch.rand(2, 3, 32, 32)})
    assert logs["equiv"] > 0
    loss.backward()
    assert method.detector.head.weight.grad.abs().sum() > 0
    torch.manual_seed(0)
    plain = build("autolink", **tiny_config)
    plain_loss, plain_logs = plain.loss({"image": torch.rand(2, 3, 32, 32)})
    assert "equiv" not in plain_logs and torch.isclose(loss - logs["equiv"], plain_loss, atol=1e-5)


@pytest.mark.parametrize("tps", [0.0, 0.08])
def test_equivariance_is_zero_for_keypoints_that_follow_the_image(tiny_config, tps):
    """A detector that finds bright bumps is equivariant: under similarity and TPS warps alike,
    `_equivariance` compares the crop's keypoints with the original's in matching frames."""
    from lmkcore.ops import gaussian_maps, soft_argmax

    torch.manual_seed(0)
    method = build("autolink", **{**tiny_config, "n_parts": 3, "equiv": 1.0, "tps": tps})
    method.keypoints = lambda x: soft_argmax(x / x.sum((2, 3), keepdim=True))  # channel k's bump
    kp = torch.rand(4, 3, 2) - 0.5
    x = gaussian_maps(kp, 96, 96, 0.04)  # (B, 3, H, W): one bump per channel
    eq, inside = method._equivariance(x, method.keypoints(x))
    assert inside.any() and eq[inside].sqrt().max() < 0.02
    eq_other, _ = method._equivariance(x, method.keypoints(x).roll(1, 1))  # keypoints swapped: large
    assert eq_other[inside].sqrt().min() > 0.05


def test_jitter_recolours_the_second_view_and_keeps_its_warp(tiny_config):
    method = build("autolink", **{**tiny_config, "equiv": 1.0, "tps": 0.08, "jitter": 0.5})
    seen, find = [], method.keypoints
    method.keypoints = lambda x: (seen.append(x), find(x))[1]  # records the views the detector is given
    x = torch.rand(2, 3, 32, 32)
    kp = find(x)
    for jitter in (0.5, 0.0):
        method.config.jitter = jitter
        torch.manual_seed(0)  # the same warp both times
        method._equivariance(x, kp)
    recoloured, plain = seen
    assert (recoloured - plain).abs().mean() > 0.02
    grey = lambda v: v - v.mean((1, 2, 3), keepdim=True)  # noqa: E731
    corr = (grey(recoloured) * grey(plain)).sum() / (grey(recoloured).norm() * grey(plain).norm())
    assert corr > 0.8  # the same warped content, only its colours changed


def test_separation_term_penalises_keypoints_on_one_spot(tiny_config):
    x = {"image": torch.rand(2, 3, 32, 32)}
    together = build("autolink", **{**tiny_config, "sep": 1.0, "head_init": 0.0})  # every keypoint at the centre
    apart = build("autolink", **{**tiny_config, "sep": 1.0, "head_init": 0.0, "prior": 0.2})  # K spread-out spots
    assert together.loss(x)[1]["sep"] > 0.99 and apart.loss(x)[1]["sep"] < 0.2


def test_decode_scale_outside_zero_to_one_is_named():
    with pytest.raises(ValueError, match="decode_scale"):
        AutoLinkConfig(decode_scale=0.0)


def test_decoding_at_a_lower_resolution(tiny_config):
    method = build("autolink", **{**tiny_config, "decode_scale": 0.5})
    loss, _ = method.loss({"image": torch.rand(2, 3, 32, 32)})
    loss.backward()
    assert method.detector.head.weight.grad.abs().sum() > 0
    vis = method.visuals(torch.rand(2, 3, 32, 32))
    assert vis["heatmaps"].shape == (2, 4, 16, 16) and vis["reconstruction"].shape == (2, 3, 16, 16)


def test_run_name_has_the_seed_flags(tiny_autolink):
    assert tiny_autolink.run_name("mtfl", 32, 100) == "autolink_k4_mtfl-32_100_m0.8_b8_t0.005_sklr64"


@pytest.mark.slow
def test_a_few_steps_lower_the_loss(tmp_path, procedural32, tiny_config):
    torch.manual_seed(0)
    method = build("autolink", **{**tiny_config, "lr": 3e-3})
    r = train(method, procedural32, TrainConfig(steps=50, batch_size=8, num_workers=0, out_dir=str(tmp_path),
                                                log_every=1, progress=False, tensorboard=False))
    losses = [h["loss"] for h in r.history]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_edge_gain_is_zero_when_the_decoder_ignores_the_edge_map(tiny_config):
    torch.manual_seed(0)
    method = build("autolink", **{**tiny_config, "graph_init": 2.0}).eval()  # heavy edges
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert abs(method.diagnostics(x)["edge_gain"]) > 1e-3  # another image's keypoints change the repainting
        method.decoder.stem[0].weight[:, 3] = 0  # the edge-map input channel cut off
        assert method.diagnostics(x)["edge_gain"] == pytest.approx(0.0, abs=1e-4)
