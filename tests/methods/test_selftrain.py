"""Self-training correspondence (methods/selftrain.py, data/pseudo_labels.py): tiny shapes, seconds."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from lmkcore.data import ProceduralFigures
from lmkcore.methods.selftrain import SelfTrain, SelfTrainConfig, run
from lmkcore.data.pseudo_labels import PseudoLabels, bootstrap, relabel
from lmkcore.ops.coords import grid
from lmkcore.ops.interest import in_box

pytest.importorskip("cv2")
pytest.importorskip("faiss")

TINY = dict(n_clusters=6, resolution=32, stride=2, stem=8, width=16, depth=2, descriptor_dim=8, bootstrap_size=64,
            min_labels=1, max_points=30, rotate=20.0, jitter=0.0)


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: these networks are too small to gain from two, and a shared CPU under load
    makes two threads many times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data():
    return ProceduralFigures(n=24, size=32, seed=0)


@pytest.fixture(scope="module")
def labels(data):
    return bootstrap(data, SelfTrainConfig(**TINY))


def batch_of(data, n=8):
    return {k: torch.stack([torch.as_tensor(data[i][k]) for i in range(n)]) for k in ("image", "index")}


def test_bootstrap_is_deterministic_and_each_cluster_appears_at_most_once_per_image(data, labels):
    again = bootstrap(data, SelfTrainConfig(**TINY))
    for f in dataclasses.fields(PseudoLabels):
        assert torch.equal(getattr(labels, f.name), getattr(again, f.name)), f.name
    pairs = labels.image * labels.n_clusters + labels.cluster
    assert pairs.unique().numel() == len(pairs)
    assert len(labels.points) > len(data) and (labels.points.abs() <= 1).all()
    assert torch.equal(labels.index, torch.arange(len(data)))


def test_superpoint_bootstrap_needs_a_local_file_and_runs_from_one(tmp_path, data):
    from lmkcore.nets.superpoint import SuperPoint

    with pytest.raises(FileNotFoundError, match="superpoint_v1.pth"):
        bootstrap(data, SelfTrainConfig(**TINY, superpoint=str(tmp_path / "superpoint_v1.pth")))
    torch.manual_seed(0)
    net = SuperPoint()
    with torch.no_grad():  # a detector that fires: the first pixel of every 8 x 8 cell
        net.convPb.bias[0] = 20.0
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, tmp_path / "sp.pth")
    small = torch.utils.data.Subset(data, range(8))
    labels = bootstrap(small, SelfTrainConfig(**{**TINY, "n_clusters": 3}, superpoint=str(tmp_path / "sp.pth"),
                                              in_box=False))
    assert labels.centroids.shape == (3, 256) and len(labels.points) > 0


def test_labels_round_trip_through_the_experiment_folder_and_the_dense_tables(tmp_path, labels):
    path = labels.save(tmp_path / "exp" / "labels_round00.pt")
    back = PseudoLabels.load(path)  # weights_only=True
    for f in dataclasses.fields(PseudoLabels):
        assert torch.equal(getattr(labels, f.name), getattr(back, f.name)), f.name
    pts, present = labels.dense()
    again = PseudoLabels.from_dense(labels.index, pts, present, labels.centroids, labels.thresholds)
    key = lambda lb: sorted(zip((lb.image * 100 + lb.cluster).tolist(), lb.points.tolist()))  # noqa: E731
    assert key(again) == key(labels)
    with pytest.raises(FileNotFoundError, match="pseudo-labels"):
        PseudoLabels.load(tmp_path / "missing.pt")


def test_pseudo_labels_move_exactly_with_the_warp():
    """An image whose channels are its own x and y coordinates: the warped image, read at the moved
    labels, gives back the labels' original positions (bilinear sampling of a linear ramp is exact)."""
    torch.manual_seed(0)
    m = SelfTrain(SelfTrainConfig(**TINY))
    g = grid(32, 32)  # (H, W, 2)
    x = torch.cat([g.permute(2, 0, 1), torch.zeros(1, 32, 32)])[None].repeat(4, 1, 1, 1) * 0.5 + 0.5
    pts = torch.rand(4, 6, 2) * 1.6 - 0.8
    xv, moved, ok = m.view(x, pts, torch.ones(4, 6, dtype=torch.bool))
    read = F.grid_sample(xv[:, :2], moved[:, :, None], align_corners=True)[..., 0].transpose(1, 2) * 2 - 1
    assert ok.any() and torch.allclose(read[ok], pts[ok], atol=1e-4)
    assert ((moved.abs() <= 1).all(-1) == ok).all()


def test_step1_lowers_its_loss_and_relabel_keeps_the_invariants(data, labels):
    torch.manual_seed(0)
    m = SelfTrain(SelfTrainConfig(**TINY, lr=2e-3))
    m.set_labels(labels)
    batch = batch_of(data)

    def loss_at(seed):
        torch.manual_seed(seed)
        return float(m.loss(batch)[0].detach())

    before = sum(loss_at(s) for s in range(3))
    opt, _ = m.optimizers(20)
    for s in range(20):
        torch.manual_seed(100 + s)
        loss, logs = m.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert sum(loss_at(s) for s in range(3)) < 0.8 * before
    assert {"det", "desc", "pairs", "labels"} <= set(logs)
    new = relabel(m, data, labels)
    boxes = torch.stack([torch.as_tensor(data[i]["box"]) for i in range(len(data))])
    assert in_box(new.points[:, None], boxes[new.image], 32, m.config.box_margin + 1e-4).all()  # bootstrap's filter
    pairs = new.image * new.n_clusters + new.cluster
    assert pairs.unique().numel() == len(pairs) and new.n_clusters == labels.n_clusters
    assert new.centroids.shape == (6, 8)
    m.set_clusters(new.centroids, new.thresholds)
    m.eval()
    with torch.no_grad():
        kp, conf, vis = m.keypoints(batch["image"]), m.confidence(batch["image"]), m.visuals(batch["image"])
    assert kp.shape == (8, 6, 2) and conf.shape == (8, 6) and ((conf >= 0) & (conf <= 1)).all()
    assert vis["detector"].shape == (8, 1, 16, 16) and vis["points"].shape[-1] == 3
    unused = vis["points"][..., 0].isnan()
    assert (vis["points"][..., 2][unused] == -1).all() and (vis["points"][..., 2] >= -1).all()
    assert m.features(batch["image"]).shape == (8, 16, 16, 16)
    assert set(vis) <= set(SelfTrain.layers)


def step2_method(labels, **kw):
    torch.manual_seed(0)
    cfg = SelfTrainConfig(**{**TINY, **kw}, stage=2, n_parts=labels.n_clusters)
    m = SelfTrain(cfg)
    m.set_labels(labels)
    return m


def test_step2_masked_loss_gives_unlabelled_channels_no_gradient(data, labels):
    m = step2_method(labels, rotate=0.0, zoom=0.0)
    batch = batch_of(data, 4)
    _, present = m.lookup(batch["index"])
    present[:, 0] = False  # channel 0 unlabelled in every image of the batch
    m.label_present[batch["index"], 0] = False
    loss, _ = m.loss(batch)
    loss.backward()
    grad = m.net.landmarks.weight.grad[:, :, 0, 0].abs().sum(1)  # (K,) one row per channel
    labelled = present.any(0)
    assert grad[0] == 0 and (grad[labelled] > 0).all()
    assert (grad[~labelled] == 0).all()


def test_step2_lowers_its_loss_merges_and_reads_out_a_varying_number(data, labels):
    m = step2_method(labels, lr=2e-3, rotate=0.0, zoom=0.0)
    batch = batch_of(data)

    def loss_at():
        torch.manual_seed(0)
        return float(m.loss(batch)[0].detach())

    before = loss_at()
    opt, sched = m.optimizers(15)
    for _ in range(15):
        loss, _ = m.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss_at() < before
    m.eval()
    with torch.no_grad():
        kp, conf = m.keypoints(batch["image"]), m.confidence(batch["image"])
    assert kp.shape == (8, 6, 2) and conf.shape == (8, 6) and m.confidence_threshold == 0.2
    # merging: make channel 1 fire where channel 0 does in every image seen
    m.seen_pos[:, 1] = m.seen_pos[:, 0]
    m.seen_conf[:, :2] = 1.0
    m.seen[:] = True
    before_labels = m.label_present[:, :2].any(1).sum()
    assert m.merge() >= 1 and not m.active[:2].all()
    assert m.label_present[:, :2].any(1).sum() == before_labels  # labels moved, not lost
    assert m.keypoints(batch["image"]).shape[1] == m.n_keypoints == int(m.active.sum())


def test_recipe_runs_both_steps_under_one_experiment(tmp_path, data):
    from lmkcore.checkpoint import load_method
    from lmkcore.train import TrainConfig

    cfg = SelfTrainConfig(**TINY, experiment_name="exp", rounds=2, round1_steps=2, round_steps=2, batch_size=4,
                          step2_steps=3, step2_batch_size=4, min_cluster_share=0.1, merge_start=2, merge_every=1)
    method, out = run(cfg, data, TrainConfig(out_dir=str(tmp_path), num_workers=0, progress=False,
                                             tensorboard=False, log_every=1), log=lambda s: None)
    exp = tmp_path / "exp"
    for name in ("labels_round00.pt", "labels_round01.pt", "labels_round02.pt", "step1.pt", "labels_step2.pt",
                 "step1_round01/last.pt", "step1_round02/last.pt", "step2/last.pt", "step2.pt"):
        assert (exp / name).is_file(), name
    assert len(out["counts"]) == 3 and method.config.stage == 2
    back = load_method(exp / "step2.pt")
    assert back.config.n_parts == method.config.n_parts and torch.equal(back.active, method.active)
    last = load_method(exp / "step2" / "last.pt")  # what the bench evaluates: merges and read-out stored there too
    assert torch.equal(last.active, method.active) and torch.equal(last.detected, method.detected)
    assert torch.equal(back.detected, method.detected)
    assert method.merges >= 2  # the trainer's after_step at steps 2 and 3 (merge_start 2, merge_every 1)
    assert load_method(exp / "step1.pt").thresholds.gt(0).any()
    assert PseudoLabels.load(exp / "labels_step2.pt").n_clusters == method.config.n_parts


def test_notebook_03_declares_every_config_field_but_the_recipe_set_ones():
    import ast

    papermill = pytest.importorskip("papermill")
    from pathlib import Path

    nb = Path(__file__).resolve().parents[2] / "notebooks" / "03_train_selftrain.ipynb"
    params = papermill.inspect_notebook(str(nb))
    fields = {f.name: f.default for f in dataclasses.fields(SelfTrainConfig)}
    missing = set(fields) - set(params) - {"stage", "round", "n_parts"}
    assert not missing, f"03 lacks parameters {sorted(missing)}"
    for k in ("margin", "desc_weight", "max_pairs", "merge_ratio", "merge_dist", "outlier_drop"):
        assert ast.literal_eval(params[k]["default"]) == fields[k], k  # the paper's, also in the compact recipe


def test_more_rounds_extend_a_finished_recipe_but_its_step2_is_not_resumed_on_other_labels(tmp_path, data):
    import shutil

    from lmkcore.train import TrainConfig

    def recipe(rounds):
        cfg = SelfTrainConfig(**TINY, experiment_name="exp", rounds=rounds, round1_steps=2, round_steps=2,
                              batch_size=4, step2_steps=2, step2_batch_size=4, min_cluster_share=0.1, merge_every=0)
        return run(cfg, data, TrainConfig(out_dir=str(tmp_path), num_workers=0, progress=False, tensorboard=False,
                                          resume=True), log=lambda s: None)

    recipe(1)
    exp = tmp_path / "exp"
    round1 = (exp / "step1_round01" / "last.pt").read_bytes()
    with pytest.raises(ValueError, match=r"step2/last.pt was trained with other settings \(rounds: 1 in the checkp"):
        recipe(2)  # Step 2 learnt round 1's labels: resuming it on round 2's would mix two runs
    shutil.rmtree(exp / "step2")
    _, out = recipe(2)
    assert [r.run_dir.name for r in out["results"]] == ["step1_round01", "step1_round02", "step2"]
    assert (exp / "step1_round01" / "last.pt").read_bytes() == round1  # the finished round reused, not retrained
    assert (exp / "labels_round02.pt").is_file() and len(out["counts"]) == 3


def test_the_trainer_runs_the_recipe_as_stages_of_one_experiment(tmp_path, data):
    from lmkcore.methods import build
    from lmkcore.train import TrainConfig, run_recipe

    m = build("selftrain", **TINY, rounds=1, round1_steps=2, batch_size=4, step2_steps=2, step2_batch_size=4,
              min_cluster_share=0.1, merge_every=0)
    results = run_recipe(m, data, TrainConfig(out_dir=str(tmp_path), experiment="e", num_workers=0, progress=False,
                                              tensorboard=False, dataset="mtfl"))
    assert [r.run_dir.name for r in results] == ["step1_round01", "step2"]
    from lmkcore.checkpoint import load

    assert load(tmp_path / "e" / "step2.pt")["dataset"] == "mtfl"  # the trainer's data set, not the config's default
    assert load(tmp_path / "e" / "step2" / "last.pt")["dataset"] == "mtfl"
    assert all(r.run_dir.parent == tmp_path / "e" for r in results)
    import json

    recipe = json.loads((tmp_path / "e" / "summary.json").read_text())  # the whole recipe's time, bootstrap too
    assert recipe["stages"] == ["step1_round01", "step2"] and recipe["wall_s_total"] >= sum(
        r.summary["wall_s"] for r in results)
    step2 = json.loads((tmp_path / "e" / "step2" / "config.json").read_text())
    assert step2["init_from"]["path"].endswith("step1.pt") and "net.landmarks.weight" in step2["init_from"]["missing"]


def test_run_names_show_a_schedule_other_than_the_recipes():
    from lmkcore.methods import build

    assert build("selftrain", **TINY).run_name("mtfl", 64, 4500).endswith("_4500_det0.8_step1")
    assert build("selftrain", **TINY, min_detection=0.0).run_name("mtfl", 64, 4500).endswith("_4500_step1")
    longer = build("selftrain", **TINY, round1_steps=1000, round_steps=500, step2_steps=3000)
    assert longer.run_name("mtfl", 64, 4500).endswith("_4500_r2x1000-500_s3000_det0.8_step1")
    central = build("selftrain", **TINY, round1_steps=1000, round_steps=500, step2_steps=3000, box_margin=-0.25)
    assert central.run_name("mtfl", 64, 4500).endswith("_4500_r2x1000-500_s3000_box-0.25_det0.8_step1")
    wider = build("selftrain", **TINY, batch_size=32, box_margin=-0.25)
    assert wider.run_name("mtfl", 64, 4500).endswith("_4500_b32_box-0.25_det0.8_step1")


@pytest.mark.parametrize("stage", [1, 2])
def test_a_step_runs_under_bf16_autocast(data, labels, stage):
    """The trainer's AMP (bf16 autocast on every GPU, on the CPU with `cpu_amp`), checked on the CPU for both steps."""
    m = step2_method(labels) if stage == 2 else SelfTrain(SelfTrainConfig(**TINY))
    if stage == 1:
        m.set_labels(labels)
    batch = batch_of(data, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = m.loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in m.parameters())


class _Peaks:
    """Heatmaps whose channel c peaks at 1 in the images where `on[i, c]` (else 0.1), for `fit_readout`."""

    def __init__(self, on: torch.Tensor, size: int = 16):
        self.on, self.size, self.calls = on, size, 0

    def __call__(self, feats):
        b = feats.shape[0]
        rows = self.on[self.calls:self.calls + b]
        self.calls += b
        maps = torch.full((b, rows.shape[1], self.size, self.size), 0.1)
        maps[..., 3, 5] = torch.where(rows, 1.0, 0.1)
        return maps


def test_readout_keeps_the_channels_detected_in_min_detection_of_the_training_images(data, labels):
    m = step2_method(labels, min_detection=0.8, detection_images=10).eval()
    on = torch.zeros(len(data), m.n_channels, dtype=torch.bool)
    on[:, 0] = True  # every image
    on[:8, 1] = True  # 8 of the 10 measured: exactly 0.8
    on[:7, 2] = True  # 7 of 10: dropped
    on[10:, 3] = True  # only past the 10 measured images: dropped
    m.active[4] = False  # merged away: never read out, whatever its detections
    on[:, 4] = True
    m.net.heatmaps = _Peaks(on)
    m.fit_readout(data)
    assert m.net.heatmaps.calls == 10  # detection_images, not the whole set
    assert m.detected.tolist()[:4] == [True, True, False, False]
    assert m.readout_channels.tolist()[:5] == [True, True, False, False, False] and m.n_keypoints == 2
    del m.net.heatmaps  # the network's own head again
    with torch.no_grad():
        kp, conf = m.keypoints(batch_of(data, 3)["image"]), m.confidence(batch_of(data, 3)["image"])
    assert kp.shape == (3, 2, 2) and conf.shape == (3, 2)
    assert m.run_name("mtfl", 64, 10).endswith("_10_det0.8_step2")


def test_readout_keeps_every_active_channel_where_none_is_detected_often_enough(data, labels):
    m = step2_method(labels, min_detection=0.9, detection_images=10).eval()
    on = torch.zeros(len(data), m.n_channels, dtype=torch.bool)
    on[:5, 0] = True
    m.net.heatmaps = _Peaks(on)
    with pytest.warns(UserWarning, match=r"best 50%"):
        m.fit_readout(data)
    assert m.detected.all() and m.n_keypoints == m.n_channels


def test_a_step2_checkpoint_from_before_the_detection_rule_reads_out_every_active_channel(labels):
    m = step2_method(labels)
    state = m.state_dict()
    state.pop("detected")
    state["active"] = torch.tensor([True, False] + [True] * (m.n_channels - 2))
    back = step2_method(labels)
    back.detected.zero_()
    back.load_state_dict(state)  # strict: the missing key is filled, not an error
    assert back.detected.all() and back.n_keypoints == m.n_channels - 1
    with pytest.raises(ValueError, match="min_detection"):
        SelfTrainConfig(min_detection=1.5)
