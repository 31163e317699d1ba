"""The part-based method (Lorenz et al.): read-outs, views, losses, a few training steps, checkpoints."""
import pytest
import torch

from lmkcore.checkpoint import load_method
from lmkcore.methods import METHODS, build
from lmkcore.methods.base import LAYER_KINDS
from lmkcore.methods.partbased import PartBasedConfig
from lmkcore.train import TrainConfig, train
from tests.tiny import seeded_build

TINY = dict(n_parts=4, in_dim=32, map_dim=16, stem=8, channels=16, depth=2, n_features=8, reconstr_dim=32,
            gen_base=4, gen_max=16, feature_levels=2, bn=8)


def tiny(**kw):
    return seeded_build("partbased", TINY, **kw)


def test_registered():
    assert "partbased" in METHODS


def test_keypoints_and_covariances(images):
    m = tiny().eval()
    kp, cov = m.keypoints(images), m.covariances(images)
    assert kp.shape == (4, 4, 2) and (kp.abs() <= 1).all()
    assert cov.shape == (4, 4, 2, 2)
    torch.testing.assert_close(cov, cov.transpose(-1, -2))
    assert (torch.linalg.eigvalsh(cov) > 0).all()
    assert m.keypoints(torch.nn.functional.interpolate(images, size=48)).shape == (4, 4, 2)  # other sizes resized


def test_visuals_match_the_declared_layers(images):
    m = tiny().eval()
    with torch.no_grad():
        v = m.visuals(images)
    assert set(v) == set(m.layers) and all(k in LAYER_KINDS for k in m.layers.values())
    assert v["parts"].shape == (4, 4, 16, 16) and v["covariances"].shape == (4, 4, 2, 2)
    for name in ("reconstruction", "swap"):
        assert v[name].shape == (4, 3, 32, 32) and (v[name] >= 0).all() and (v[name] <= 1).all()
    with torch.no_grad():  # swap: shape of image b, appearance of image b - 1
        torch.testing.assert_close(v["swap"], m.transfer(images, images.roll(1, 0)))


def test_views_pair_two_warps_and_swap_colours(images):
    m = tiny(augm=0.0)
    inputs, targets, warps = m.views(images)
    assert inputs.shape == (8, 3, 32, 32) and len(warps) == 2
    torch.testing.assert_close(inputs, targets)  # no colour change: the target is the input itself
    m = tiny(augm=0.5)
    inputs, targets, _ = m.views(images)
    assert not torch.allclose(inputs, targets)  # the target is the same warp in the other colouring
    assert (inputs - targets).abs().amax((1, 2, 3)).min() > 0


@pytest.mark.parametrize("static", [True, False])
def test_targets_carry_the_partners_colours(static):
    """On flat grey images a colouring is a colour: the target of view i must be coloured as its partner's input."""
    m = tiny(augm=0.5, static=static)
    inputs, targets, _ = m.views(torch.full((4, 3, 32, 32), 0.5))
    mean_in, mean_tg = inputs.mean((2, 3)), targets.mean((2, 3))  # (8, 3)
    torch.testing.assert_close(mean_tg, mean_in[m.partner(8, "cpu")], atol=1e-4, rtol=0)
    assert (mean_tg - mean_in).abs().amax(1).min() > 1e-3  # and not as its own input


def test_partner_is_the_other_warp_or_the_other_frame():
    assert tiny().partner(6, "cpu").tolist() == [3, 4, 5, 0, 1, 2]
    assert tiny(static=False).partner(6, "cpu").tolist() == [1, 0, 3, 2, 5, 4]


def test_loss_terms_and_gradients(images):
    m = tiny(sep=0.0).train()
    loss, logs = m.loss({"image": images})
    assert set(logs) == {"rec", "trans", "precision_trans"} and torch.isfinite(loss)
    loss.backward()
    assert m.encoder.shape[1][-1].weight.grad.abs().sum() > 0  # the part-map head learns
    assert m.generator.out.weight.grad.abs().sum() > 0


def test_prior_and_separation_additions(images):
    """The compact recipe's additions: parts start at K spread spots, and a separation term joins the loss."""
    plain, spread = tiny(prior=0.0, sep=0.0).eval(), tiny(prior=0.1, sep=1.0).eval()
    kp = spread.keypoints(images)  # (B, K, 2)
    i, j = torch.triu_indices(4, 4, 1)
    assert (kp[:, i] - kp[:, j]).norm(dim=-1).mean() > 2 * (lambda p: (p[:, i] - p[:, j]).norm(dim=-1).mean())(
        plain.keypoints(images))
    loss, logs = spread.train().loss({"image": images})
    assert set(logs) == {"rec", "trans", "precision_trans", "sep"} and torch.isfinite(loss)
    loss.backward()
    assert spread.encoder.prior.grad.abs().sum() > 0  # the prior is learned


def test_checkpoints_from_before_the_additions_run_without_them():
    from lmkcore.methods.base import recorded_config

    old = {f: v for f, v in PartBasedConfig(**TINY).__dict__.items() if f not in ("prior", "sep")}
    resolved = PartBasedConfig(**recorded_config(PartBasedConfig, old))
    assert resolved.prior == 0 and resolved.sep == 0


@pytest.mark.parametrize("kind", ["pyramid", "l1"])
def test_perceptual_reconstruction_choice(images, kind):
    loss, logs = tiny(rec_loss=kind, L1=False).loss({"image": images})
    assert torch.isfinite(loss) and logs["rec"] > 0


def test_circular_heats_and_l1(images):
    loss, _ = tiny(covariance=False, L1=True).loss({"image": images})
    assert torch.isfinite(loss)


def test_adversarial_term_has_its_own_optimiser(images):
    m = tiny(adversarial=True).train()
    pairs = m.optimizers(10)
    assert isinstance(pairs, list) and len(pairs) == 2
    d_params = {id(p) for p in m.discriminator.parameters()}
    assert not d_params & {id(p) for g in pairs[0][0].param_groups for p in g["params"]}
    loss, logs = m.loss({"image": images}, 0)
    assert "g" in logs
    d, logs = m.loss({"image": images}, 1)
    assert set(logs) == {"d"}
    d.backward()
    assert all(p.grad is None for n, p in m.named_parameters() if not n.startswith("discriminator."))
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.discriminator.parameters())


def test_without_adversarial_one_optimiser():
    opt, sched = tiny().optimizers(10)
    assert isinstance(opt, torch.optim.Adam) and sched is None


def test_run_name_has_the_seed_flags():
    name = tiny(adversarial=True).run_name("mtfl", 32, 100)
    assert name == "partbased_k4_mtfl-32_100_static_cov_adv_r32_bn8_pixel_prior0.3_sep1"
    assert tiny(prior=0.0, sep=0.0).run_name("mtfl", 32, 100) == "partbased_k4_mtfl-32_100_static_cov_r32_bn8_pixel"
    assert tiny(prior=0.0, sep=0.0, schedule="cosine").run_name("mtfl", 32, 100).endswith("_pixel_cos")


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="rec_loss"):
        PartBasedConfig(rec_loss="vgg")


def test_diagnostics(images):
    with torch.no_grad():
        d = tiny().eval().diagnostics(images)
    assert set(d) == {"shape_gain", "part_spread", "part_size"} and d["shape_gain"] == d["shape_gain"]  # finite
    assert 0 <= d["part_spread"] <= 100 * 2 ** 0.5 and 0 < d["part_size"] <= 100


def test_a_few_steps_lower_the_loss_and_the_checkpoint_loads(tmp_path, procedural32):
    m = tiny()
    r = train(m, procedural32, TrainConfig(steps=60, batch_size=4, num_workers=0, out_dir=str(tmp_path), log_every=1,
                                           progress=False, tensorboard=False, ckpt_every=1000))
    assert len(r.history) == 60

    def drop(key):  # mean of the first ten logged values -> mean of the last ten
        v = [h[key] for h in r.history]
        return sum(v[:10]) / 10, sum(v[-10:]) / 10

    (first, last), (rec0, rec1) = drop("loss"), drop("rec")
    assert last < first and rec1 < 0.9 * rec0, (first, last, rec0, rec1)  # equivariance terms hold their level meanwhile
    loaded = load_method(r.run_dir / "last.pt")
    images = torch.stack([procedural32[i]["image"] for i in range(4)])
    m.eval()
    torch.testing.assert_close(loaded.keypoints(images), m.keypoints(images))


def test_trains_from_the_command_line_on_the_procedural_figures(tmp_path):
    """`python -m lmkcore.train --method partbased --data procedural` opens the data at the config's `in_dim`."""
    from lmkcore.train import main

    fields = [f"{k}={v}" for k, v in TINY.items()]
    main(["--method", "partbased", "--data", "procedural", "--steps", "2", "--batch_size", "4", "--num_workers", "0",
          "--out_dir", str(tmp_path), "--progress", "false", *fields])
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (run / "last.pt").exists() and f"-{TINY['in_dim']}_" in run.name
