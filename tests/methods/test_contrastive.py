"""The contrastive-landmarks method on a tiny ResNet-18 (32 px inputs): MoCo bookkeeping, hypercolumns,
the projection stage, k-means keypoints, the recipe and its checkpoints."""
from dataclasses import replace

import pytest
import torch

from lmkcore.checkpoint import load_method
from lmkcore.methods import build
from lmkcore.methods.contrastive import ContrastiveConfig, pretrain
from lmkcore.train import TrainConfig

TINY = dict(image_size=36, image_crop=2, nce_k=16, bn_splits=2, n_parts=4, adam=True, learning_rate=1e-3,
            kp_images=16, kp_points=2000, proj_points=32, proj_dim=8)


@pytest.fixture(autouse=True)
def one_thread():
    """ResNet steps on a shared 2-core machine run faster on one thread than on two oversubscribed ones."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(**kw):
    torch.manual_seed(0)
    return build("contrastive", **{**TINY, **kw})


def images(procedural32, n, start=0):
    return torch.stack([procedural32[i]["image"] for i in range(start, start + n)])  # (n, 3, 32, 32)


def test_after_step_is_the_hand_computed_ema():
    m = tiny(nce_m=0.9)
    with torch.no_grad():
        for p in m.encoder_q.parameters():
            p.fill_(1.0)
        for p in m.encoder_k.parameters():
            p.fill_(0.0)
    m.after_step(1)
    assert all(torch.allclose(p, torch.full_like(p, 0.1)) for p in m.encoder_k.parameters())  # 0.9 * 0 + 0.1 * 1
    m.after_step(2)
    assert torch.allclose(m.encoder_k.fc.weight, torch.full_like(m.encoder_k.fc.weight, 0.19))
    assert all(not p.requires_grad for p in m.encoder_k.parameters())


def test_a_trainer_without_after_step_gets_the_ema_before_the_next_keys():
    m = tiny(nce_m=0.9).train()
    x = torch.rand(4, 3, 32, 32)
    m.loss({"image": x})
    k0 = m.encoder_k.conv1.weight.clone()
    with torch.no_grad():
        m.encoder_q.conv1.weight.add_(1.0)  # as an optimiser step would
    q1 = m.encoder_q.conv1.weight.clone()
    m.loss({"image": x})  # no after_step in between: the update comes first
    assert torch.allclose(m.encoder_k.conv1.weight, 0.9 * k0 + 0.1 * q1, atol=1e-6)
    m.after_step(2)  # and after_step then clears it (one update per step)
    assert not m._ema_pending


def test_the_queue_is_a_buffer_filled_fifo_by_training_losses():
    m = tiny().train()
    assert "queue" in m.state_dict() and "queue_ptr" in m.state_dict()
    q0 = m.queue.clone()
    m.loss({"image": torch.rand(6, 3, 32, 32)})
    assert m.queue_ptr.item() == 6
    assert not torch.allclose(m.queue[:, :6], q0[:, :6]) and torch.equal(m.queue[:, 6:], q0[:, 6:])
    assert torch.allclose(m.queue[:, :6].norm(dim=0), torch.ones(6))  # unit keys
    m.loss({"image": torch.rand(12, 3, 32, 32)})  # columns 6..15, then 0, 1: the pointer wraps
    assert m.queue_ptr.item() == (6 + 12) % 16
    m.eval()
    q1 = m.queue.clone()
    loss, logs = m.loss({"image": torch.rand(4, 3, 32, 32)})
    assert torch.equal(m.queue, q1) and loss.ndim == 0 and set(logs) == {"acc", "pos_sim"}


def test_views_are_batched_network_inputs():
    m = tiny()
    x = torch.rand(3, 3, 50, 50)
    v = m.views(x)  # any input size: resized to image_size, then cropped
    assert v.shape == (6, 3, 32, 32)
    a, b = (m.views(x, generator=torch.Generator().manual_seed(1)) for _ in range(2))
    assert torch.equal(a, b)  # seeded
    assert not torch.allclose(a[:3], a[3:])  # two different views of each image


@pytest.mark.parametrize("layer", [1, 2, 3, 4])
@pytest.mark.parametrize("use_hypercol", [True, False])
def test_hypercolumn_shapes_for_each_layer(layer, use_hypercol):
    m = tiny(layer=layer, use_hypercol=use_hypercol).eval()
    f = m.features(torch.rand(2, 3, 32, 32))
    channels = (64, 128, 256, 512)
    c = sum(channels[:layer]) if use_hypercol else channels[layer - 1]
    assert f.shape == (2, c, 16, 16) and m.feature_channels == c  # grid: input / 2
    assert tiny(layer=layer, hypercol_size=8).eval().features(torch.rand(1, 3, 32, 32)).shape[-1] == 8


def test_config_names_the_allowed_values():
    with pytest.raises(ValueError, match="layer"):
        ContrastiveConfig(layer=5)
    with pytest.raises(ValueError, match="model"):
        ContrastiveConfig(model="vgg")
    with pytest.raises(ValueError, match="stage"):
        ContrastiveConfig(stage="head")


def test_a_few_steps_lower_the_contrastive_loss(procedural32):
    """Instance discrimination of held-out images (in-batch InfoNCE of two fixed views) improves; milder
    views than the defaults, so that 24 steps show it (seen: 2.28 -> 1.12)."""
    m = tiny(nce_m=0.9, crop_scale=0.6, jitter=0.1, tps=0.0, lighting=0.0)
    probe = images(procedural32, 16, start=200)
    m.eval()
    before = m.diagnostics(probe)
    train = images(procedural32, 96)
    opt, _ = m.optimizers(24)
    m.train()
    for s in range(24):
        loss, _ = m.loss({"image": train[(s * 8) % 96:(s * 8) % 96 + 8]})
        opt.zero_grad()
        loss.backward()
        opt.step()
        m.after_step(s + 1)
    m.eval()
    after = m.diagnostics(probe)
    assert after["view_nce"] < before["view_nce"] - 0.4, (before, after)


def test_projection_stage_trains_the_projection_alone():
    m = tiny(use_projection=True, stage="projection").train()
    loss, _ = m.loss({"image": torch.rand(4, 3, 32, 32)})
    loss.backward()
    assert m.projection.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.encoder_q.parameters())
    opt, _ = m.optimizers(10)
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in m.projection.parameters()}
    f = m.eval().features(torch.rand(2, 3, 32, 32))
    assert f.shape == (2, 8, 16, 16) and torch.allclose(f.norm(dim=1), torch.ones(2, 16, 16), atol=1e-5)


def test_keypoints_from_clusters(procedural32):
    m = tiny().eval()
    x = images(procedural32, 4)
    with pytest.raises(RuntimeError, match="fit_keypoints"):
        m.keypoints(x)
    c = m.fit_keypoints(images(procedural32, 16), batch_size=8)
    assert c.shape == (4, 960) and torch.allclose(c.norm(dim=1), torch.ones(4), atol=1e-5)
    kp = m.keypoints(x)
    assert kp.shape == (4, 4, 2) and kp.abs().max() <= 1
    vis = m.visuals(x)
    assert set(vis) == set(m.layers) and vis["clusters"].shape == (4, 4, 16, 16)
    assert torch.allclose(vis["clusters"].sum((2, 3)), torch.ones(4, 4), atol=1e-4)
    again = tiny().eval()
    again.load_state_dict(m.state_dict())
    assert torch.equal(again.fit_keypoints(images(procedural32, 16), batch_size=16), c)  # seeded


def test_recipe_and_checkpoint_round_trip(procedural32, tmp_path):
    m = tiny(use_projection=True, proj_steps=2)
    cfg = TrainConfig(steps=2, batch_size=8, num_workers=0, out_dir=str(tmp_path), progress=False,
                      tensorboard=False, run_name="tiny")
    results = pretrain(m, procedural32, cfg)
    assert [r.run_dir.name for r in results] == ["moco", "projection"]
    assert (tmp_path / "tiny" / "moco" / "last.pt").is_file()
    loaded = load_method(results[-1].run_dir / "last.pt")  # weights_only=True inside
    assert loaded.config.stage == "projection" and bool(loaded.fitted)
    for k in ("queue", "queue_ptr", "centroids"):
        assert torch.equal(loaded.state_dict()[k], m.state_dict()[k].cpu())
    assert loaded.queue_ptr.item() == 2 * 8 % 16
    x = images(procedural32, 2)
    m.eval()
    assert torch.allclose(loaded.features(x), m.features(x), atol=1e-5)
    assert torch.allclose(loaded.keypoints(x), m.keypoints(x), atol=1e-5)
    snap = load_method(sorted(results[-1].run_dir.glob("model_*.pt"))[-1])
    assert bool(snap.fitted)


def test_a_projection_trains_on_another_run_s_backbone(procedural32, tmp_path):
    """steps=0 with init_from: the MoCo stage is that run's backbone; its hypercolumn clusters (another shape)
    are not loaded but refit on the projection's descriptors."""
    cfg = TrainConfig(steps=2, batch_size=8, num_workers=0, out_dir=str(tmp_path), progress=False,
                      tensorboard=False, run_name="hc")
    base = pretrain(tiny(), procedural32, cfg)
    m = tiny(use_projection=True, proj_steps=2)
    results = pretrain(m, procedural32, replace(cfg, steps=0, run_name="proj", init_from=str(base[0].run_dir)))
    assert [r.step for r in results] == [0, 2]
    was = load_method(base[0].run_dir / "last.pt")
    for k, v in was.encoder_q.state_dict().items():
        assert torch.equal(m.encoder_q.state_dict()[k].cpu(), v), k
    assert m.centroids.shape == (4, 8) and bool(m.fitted)


def test_notebook_declares_every_config_field_with_its_default():
    """Notebook 06's parameters cell lists every ContrastiveConfig field under its name, with the config's
    default (the `cpu` recipe)."""
    import ast
    import dataclasses
    from pathlib import Path

    papermill = pytest.importorskip("papermill")
    nb = Path(__file__).resolve().parents[2] / "notebooks" / "06_train_contrastive.ipynb"
    params = papermill.inspect_notebook(str(nb))
    fields = {f.name: f.default for f in dataclasses.fields(ContrastiveConfig)}
    assert set(fields) <= set(params), f"06 lacks parameters {sorted(set(fields) - set(params))}"
    differ = {k: (ast.literal_eval(params[k]["default"]), v) for k, v in fields.items()
              if ast.literal_eval(params[k]["default"]) != v}
    assert not differ, differ


def test_only_the_stage_s_module_keeps_gradients():
    """DDP needs every parameter with requires_grad to get a gradient: the stage's module alone has it."""
    m = tiny(use_projection=True)
    m.optimizers(10)
    assert all(p.requires_grad for p in m.encoder_q.parameters())
    assert not any(p.requires_grad for p in [*m.projection.parameters(), *m.encoder_k.parameters()])
    m.config.stage = "projection"
    m.optimizers(10)
    assert all(p.requires_grad for p in m.projection.parameters())
    assert not any(p.requires_grad for p in [*m.encoder_q.parameters(), *m.encoder_k.parameters()])


def test_run_recipe_trains_the_stages_and_the_head_reads_the_features(tmp_path):
    """The trainer's `run_recipe` runs the class's recipe; the supervised head of the protocol
    (`lmkcore.eval`, evaluation="head") trains on the frozen features of the result, full and few-shot."""
    from lmkcore.data.procedural import ProceduralFigures
    from lmkcore.eval import HeadConfig, evaluate
    from lmkcore.train import run_recipe

    m = tiny(image_size=32, image_crop=0)
    data = ProceduralFigures(48, 32, seed=0)
    results = run_recipe(m, data, TrainConfig(steps=2, batch_size=8, num_workers=0, out_dir=str(tmp_path),
                                              progress=False, tensorboard=False, experiment="x"))
    assert [r.run_dir for r in results] == [tmp_path / "x" / "moco"] and bool(m.fitted)
    r = evaluate(m, data, ProceduralFigures(16, 32, seed=1), evaluation="head", few_shot=(8,),
                 head=HeadConfig(max_steps=20, eval_every=10, virtual=4, repeat=64))
    assert r["evaluation"] == "head" and 0 < r["metrics"]["nme"] < 100
    few = r["few_shot"][0]
    assert few["fit_images"] == 8 and few["head"]["train_images"] == 7
    # few-shot: 64 // 7 = 9 samples per training image, the image and 8 warps; the full 48 are not tiled
    assert few["head"]["warped_copies"] == 7 * 8 and r["head"]["warped_copies"] == 0


def test_the_inspector_draws_the_recipe_s_checkpoint(procedural32, tmp_path):
    """Cluster keypoints, their similarity maps (heatmaps) and the hypercolumns (features, as PCA RGB)."""
    from lmkcore.runs import Checkpoint
    from lmkcore.viz.state import InspectorState

    cfg = TrainConfig(steps=1, batch_size=8, num_workers=0, out_dir=str(tmp_path), progress=False,
                      tensorboard=False, experiment="x")
    pretrain(tiny(), procedural32, cfg)
    state = InspectorState(procedural32, {"c": Checkpoint(tmp_path / "x" / "moco" / "last.pt", "c")})
    assert {"hypercolumns", "clusters"} <= set(state.available_layers())
    state.toggle("hypercolumns", True)
    state.toggle("clusters", True)
    assert state.render()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"keypoints", "hypercolumns", "clusters"} <= set(state.drawn_layers)


def test_tensorboard_images_and_the_untrained_floor_before_clusters_are_fitted(tmp_path):
    """Mid-training (no clusters yet) the trainer's TensorBoard images skip the keypoints; the untrained floor
    fits the clusters on the fit images first (`fit_readout`), as the recipe does after training."""
    from lmkcore.data import open_dataset
    from lmkcore.eval import untrained_floor
    from lmkcore.train import _log_images

    class Writer:
        tags = []

        def add_images(self, tag, *a, **k):
            self.tags.append(tag)

    m = tiny()
    assert not m.keypoints_ready()
    _log_images(Writer(), m, torch.rand(2, 3, 36, 36), step=1)
    assert "keypoints" not in Writer.tags  # no error, no keypoints before the clusters
    fit, test = open_dataset("procedural", "fit", resolution=36), open_dataset("procedural", "val", resolution=36)
    r = untrained_floor(m, fit, test, n_fit=24, max_test=12)
    assert m.keypoints_ready() and r["metrics"]["nme"] > 0
