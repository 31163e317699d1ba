import json
from pathlib import Path

import pytest
import torch

from lmkcore.checkpoint import load, load_method
from lmkcore.methods import build
from lmkcore.methods.base import StableDecay, WarmupCosine, lr_schedule
from lmkcore.train import StepSampler, TrainConfig, cpu_has_bf16, fit_horizon, refittable, train


def _cfg(tmp_path, **kw):
    base = dict(steps=6, batch_size=4, num_workers=0, out_dir=str(tmp_path), run_name="run", ckpt_every=3,
                log_every=1, progress=False, tensorboard=False)
    return TrainConfig(**{**base, **kw})


def test_step_sampler_is_a_function_of_step():
    a, b = StepSampler(10, 3, seed=1), StepSampler(10, 3, seed=1, start_step=4)
    it = iter(a)
    first = [next(it) for _ in range(6)]
    assert next(iter(b)) == first[4]
    assert sorted(sum(first[:3], [])) == sorted(set(sum(first[:3], [])))  # no repeats within an epoch
    with pytest.raises(ValueError, match="smaller than one global batch"):
        StepSampler(2, 3, 0)


def test_a_capped_schedule_ends_where_the_cap_would_cut_it():
    """max_minutes shortens a warm-up cosine to the steps that fit at the rate so far; a resumed run keeps it."""
    assert fit_horizon(step=20, start=0, steps=4500, elapsed=10.0, budget=100.0) == 200  # 2 steps/s, 90 s left
    assert fit_horizon(step=120, start=100, steps=150, elapsed=1.0, budget=100.0) == 150  # fits: as configured
    assert fit_horizon(step=20, start=0, steps=4500, elapsed=120.0, budget=100.0) == 21  # over budget: ends now
    f = WarmupCosine(warm=2, steps=100)
    sched = torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), f)
    f.steps = 10
    again = torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0),
                                              WarmupCosine(warm=2, steps=100))
    again.load_state_dict(sched.state_dict())
    g = again.lr_lambdas[0]
    assert g.steps == 10 and g(10) == pytest.approx(0.0, abs=1e-12) and g(5) == pytest.approx(0.5)


def test_the_decay_schedule_holds_the_rate_then_anneals_over_the_last_fifth():
    """`schedule="decay"`: the full rate while landmarks form, linear to 0 over the last fifth; refittable to a
    cap like the cosine (its horizon is an int `steps`), and kept by a resumed run."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    sched = lr_schedule(opt, "decay", 100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:81] == [0.5] * 81 and lrs[90] == pytest.approx(0.25) and lrs[99] == pytest.approx(0.025)
    assert all(a > b for a, b in zip(lrs[80:], lrs[81:]))  # strictly down from step 80
    f = refittable(sched)[0]
    f.steps = 50  # a cap cut the run in half: the decay moves with the end
    again = lr_schedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5), "decay", 100)
    again.load_state_dict(sched.state_dict())
    g = again.lr_lambdas[0]
    assert isinstance(g, StableDecay) and g.steps == 50 and g(40) == 1.0 and g(45) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="schedule must be one of"):
        lr_schedule(opt, "step", 100)


def test_resume_continues_the_same_curve(tmp_path, procedural32, tiny_config):
    torch.manual_seed(0)
    full = train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path / "a"))
    torch.manual_seed(0)
    train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path / "b", steps=6, max_minutes=1e-9))
    ck = load(tmp_path / "b" / "run" / "last.pt")
    assert ck["step"] == 1  # stopped (with a checkpoint) after its first step
    # an interrupted run resumed from its checkpoint
    resumed = train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path / "b", resume=True))
    a = [h["loss"] for h in full.history]
    b = [h["loss"] for h in resumed.history]
    assert len(a) == len(b) == 6
    assert b == pytest.approx(a, rel=1e-5, abs=1e-6)


def test_channels_last_trains_the_same_curve(tmp_path, procedural32, tiny_config):
    """The memory layout is a speed choice only: NHWC and NCHW runs follow one loss curve."""
    curves = []
    for cl in (True, False):
        torch.manual_seed(0)
        r = train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path / str(cl), steps=4, channels_last=cl))
        curves.append([h["loss"] for h in r.history])
    assert len(curves[0]) == 4
    assert curves[0] == pytest.approx(curves[1], rel=1e-3)


def test_refuses_to_overwrite_and_checkpoint_loads_safely(tmp_path, procedural32, tiny_config):
    r = train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, steps=3))
    with pytest.raises(FileExistsError, match="resume=True"):
        train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, steps=3))
    assert sorted(p.name for p in r.run_dir.glob("*.pt")) == ["last.pt", "model_0000003.pt"]
    m = load_method(r.run_dir / "model_0000003.pt")  # weights_only=True inside
    assert m.n_keypoints == 4 and not m.training
    cfg = json.loads((r.run_dir / "config.json").read_text())
    assert cfg["config"]["n_parts"] == 4 and "commit" in cfg
    summary = json.loads((r.run_dir / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["images_per_s"] > 0 and summary["peak_memory_mb"] > 0


def test_a_checkpoint_of_another_config_version_names_its_file_and_fields(tmp_path, procedural32, tiny_config):
    r = train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, steps=1))
    ck = load(r.run_dir / "last.pt")
    ck["config"]["decode_resolution"] = 32  # a field renamed since (decode_scale)
    torch.save(ck, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"old\.pt: config fields \['decode_resolution'\]"):
        load_method(tmp_path / "old.pt")


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, procedural32, tiny_config):
    method = build("autolink", **tiny_config)
    real_loss = method.loss
    calls = {"n": 0}

    def loss(batch):
        calls["n"] += 1
        value, logs = real_loss(batch)
        return (value * float("nan") if calls["n"] == 5 else value), logs

    method.loss = loss
    with pytest.raises(FloatingPointError, match="non-finite loss .* step 4"):
        train(method, procedural32, _cfg(tmp_path))
    assert load(tmp_path / "run" / "last.pt")["step"] == 3


@pytest.mark.slow
def test_ddp_under_torchrun_on_cpu(tmp_path, tiny_config):
    """Two gloo ranks: rank 0 alone writes the run; the run name records the world size."""
    import os
    import subprocess
    import sys

    fields = [f"{k}={v}" for k, v in tiny_config.items()]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "lmkcore.train", "--method", "autolink", "--data", "procedural", "--steps", "2", "--batch_size", "2",
           "--num_workers", "0", "--out_dir", str(tmp_path), "--progress", "false", "--tensorboard", "false", *fields]
    env = {**os.environ, "LMK_DDP_TIMEOUT": "60", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = tmp_path.iterdir()
    assert run.name.endswith("_w2")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 2
    assert load(run / "last.pt")["step"] == 2


def test_cpu_amp_trains_in_bf16_where_the_cpu_has_it(tmp_path, procedural32, tiny_config, capsys):
    """cpu_amp is a speed choice: bf16 autocast where oneDNN runs it natively, fp32 (with a message) elsewhere;
    the loss curve stays close to the fp32 one and the summary says which ran."""
    native = cpu_has_bf16()
    curves = []
    for amp in (False, True):
        torch.manual_seed(0)
        r = train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path / str(amp), steps=3, cpu_amp=amp))
        curves.append([h["loss"] for h in r.history])
        assert r.summary["bf16"] is (amp and native)
    assert curves[1] == pytest.approx(curves[0], rel=0.05)
    if not native:
        assert "no native bf16" in capsys.readouterr().out


def test_in_memory_data_gives_the_same_items_and_the_same_curve(tmp_path, tiny_config):
    """InMemory reads a data set once (here with a worker); training from it follows the same curve."""
    from lmkcore.data import InMemory, ProceduralFigures

    data = ProceduralFigures(n=24, size=32, seed=5, style="stick")
    mem = InMemory(data, num_workers=1, batch_size=10)
    assert len(mem) == 24
    for i in (0, 13, 23):
        a, b = data[i], mem[i]
        assert set(a) == set(b)
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["keypoints"], b["keypoints"])
        assert int(b["index"]) == a["index"] == i
    with pytest.raises(IndexError):
        mem[24]
    curves = []
    for d in (data, mem):
        torch.manual_seed(0)
        r = train(build("autolink", **tiny_config), d, _cfg(tmp_path / type(d).__name__, steps=3))
        curves.append([h["loss"] for h in r.history])
    assert curves[1] == pytest.approx(curves[0], rel=1e-5)


def test_resuming_a_finished_run_trains_nothing_and_keeps_its_summary(tmp_path, procedural32, tiny_config):
    """A finished run resumed (to draw its figures on another machine, say) returns at once with the
    summary of the session that trained it, its checkpoint untouched."""
    first = train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, steps=3, tensorboard=True))
    before = (tmp_path / "run" / "last.pt").stat().st_mtime_ns
    again = train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, steps=3, resume=True))
    assert again.step == 3 and again.summary == first.summary
    assert [h["step"] for h in again.history] == [1, 2, 3]
    assert (tmp_path / "run" / "last.pt").stat().st_mtime_ns == before


def test_lmk_commit_names_the_commit_where_set(monkeypatch):
    """A work tree copied to another machine may carry stale git metadata: LMK_COMMIT overrides it."""
    from lmkcore.provenance import git_commit

    monkeypatch.delenv("LMK_COMMIT", raising=False)
    found = git_commit()
    monkeypatch.setenv("LMK_COMMIT", "abc1234")
    assert git_commit() == "abc1234" != found


def test_command_line_profile_gives_the_profile_config_with_overrides(tmp_path):
    """`--profile cpu` starts from the cpu profile's AutoLink fields (`profiles.method_config`); name=value wins."""
    from lmkcore.profiles import method_config
    from lmkcore.train import main

    results = main(["--method", "autolink", "--data", "procedural", "--split", "val", "--steps", "1",
                    "--batch_size", "2", "--num_workers", "0", "--out_dir", str(tmp_path), "--run_name", "run",
                    "--progress", "false", "--tensorboard", "false", "--profile", "cpu", "n_parts=3", "resolution=32",
                    "det_base=8", "dec_base=8"])
    assert [(r.run_dir, r.step) for r in results] == [(tmp_path / "run", 1)]  # what choice_run scores
    config = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    for k, v in method_config("cpu", "autolink").items():
        if k not in ("n_parts", "resolution", "det_base", "dec_base"):
            assert config[k] == v, k
    assert (config["n_parts"], config["resolution"], config["det_base"]) == (3, 32, 8)
    with pytest.raises(SystemExit):
        main(["--method", "autolink", "--profile", "nope"])


def test_command_line_profile_gives_the_plan_s_trainer_options_too(tmp_path):
    """`--profile cpu --dataset lspet` trains the part-based method at its plan's batch size (8, over the
    profile's 32), as the bench does; an option given on the command line wins."""
    from lmkcore.profiles import train_config
    from lmkcore.train import main

    assert train_config("cpu", "partbased", "lspet")["batch_size"] == 8 and train_config("cpu", "autolink")["batch_size"] == 32
    common = ["--method", "partbased", "--data", "procedural", "--split", "val", "--steps", "1", "--num_workers", "0",
              "--out_dir", str(tmp_path), "--progress", "false", "--tensorboard", "false", "--profile", "cpu",
              "--dataset", "lspet", "in_dim=32", "reconstr_dim=32", "map_dim=16", "depth=2", "stem=8", "channels=8",
              "n_features=8", "gen_base=4", "gen_max=16", "feature_levels=2"]
    main([*common, "--run_name", "plan"])
    main([*common, "--run_name", "given", "--batch_size", "2"])
    train = {n: json.loads((tmp_path / n / "config.json").read_text())["train"] for n in ("plan", "given")}
    assert (train["plan"]["batch_size"], train["given"]["batch_size"]) == (8, 2)


def test_a_field_both_configs_have_takes_each_plan_s_value_as_in_the_bench():
    """Self-training's `batch_size` (Step-1 pairs) is a config field and a trainer option. From a profile, each
    config takes its own plan's value, as the bench gives them: the paper's 16 pairs under the paper trainer's
    64; on a data set the cpu plan does not name, the cpu trainer's 32 and the config's own 8 pairs. A value given
    on the command line sets both."""
    import lmkcore.train as T
    from lmkcore.bench import Bench
    from lmkcore.profiles import get

    def configs(*argv):
        seen = {}

        def recipe(method, data, cfg):
            seen.update(method=method.config, train=cfg)
            return []

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(T, "run_recipe", recipe)
            T.main(["--method", "selftrain", "--data", "procedural", "--num_workers", "0", *argv])
        return seen["method"].batch_size, seen["train"].batch_size

    assert configs("--profile", "paper", "--dataset", "mtfl") == (16, 64)
    assert configs("--profile", "cpu", "--dataset", "procedural") == (8, 32)
    assert configs("--profile", "cpu", "--dataset", "lspet") == (32, 32)
    assert configs("--profile", "cpu", "--dataset", "lspet", "--batch_size", "4") == (4, 4)
    assert configs("--profile", "cpu", "--dataset", "lspet", "batch_size=4") == (4, 4)
    for name in ("paper", "cpu"):
        p = get(name)
        for plan in p.datasets:
            config = Bench(p, Path("no-data")).config("selftrain", plan)
            assert config["batch_size"] == configs("--profile", name, "--dataset", plan.name)[0], (name, plan.name)


# the method seam: several optimisers, after_step, init_from, recipes, methods defined outside lmkcore

TOY = "tests.methods.toy:Toy"
REPO = Path(__file__).resolve().parent.parent


def _toy(seed=0, **fields):
    from lmkcore.train import build_method

    return build_method(TOY, {"width": 4, **fields}, seed)


def _cli(tmp_path, *args):
    """`python -m lmkcore.train` in a subprocess from the repository root, as a user runs it."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "lmkcore.train", "--data", "procedural", "--split", "val", "--batch_size", "4",
           "--num_workers", "0", "--out_dir", str(tmp_path), "--progress", "false", "--tensorboard", "false", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "LMK_DDP_TIMEOUT": "60"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=REPO, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_a_method_defined_in_tests_trains_its_two_stages_through_the_command_line(tmp_path):
    """`--method package.module:ClassName` imports the method; its recipe runs stage1 then stage2 (from
    stage1's weights) under one experiment; the checkpoint names the import path, so load_method rebuilds it."""
    r = _cli(tmp_path, "--method", TOY, "--steps", "3", "--experiment", "exp", "width=4")
    exp = tmp_path / "exp"
    assert sorted(p.name for p in exp.iterdir()) == ["stage1", "stage2", "summary.json"]  # + the recipe's time
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert [line["run_dir"] for line in lines] == [str(exp / "stage1"), str(exp / "stage2")]
    config = json.loads((exp / "stage2" / "config.json").read_text())
    assert config["method_path"] == TOY and config["experiment"] == "exp" and config["config"]["width"] == 4
    init = config["init_from"]
    assert init["path"] == str(exp / "stage1" / "last.pt") and init["unexpected"] == []
    assert sorted(init["missing"]) == ["disc.0.bias", "disc.0.weight", "disc.2.bias", "disc.2.weight"]
    assert "missing (kept as initialised)" in r.stdout
    assert json.loads((exp / "stage1" / "config.json").read_text())["init_from"] is None
    m = load_method(exp / "stage2" / "last.pt")
    assert type(m).__name__ == "Toy" and m.disc is not None and not m.training
    assert m.checkpoint_info["step"] == 3
    one = load(exp / "stage1" / "last.pt")
    assert not isinstance(one["optimizer"], list)  # stage1: one optimiser, today's checkpoint layout
    assert len(load(exp / "stage2" / "last.pt")["optimizer"]) == 2
    # the inspector opens it and draws its own layers by their kinds (heatmaps over the image, features as PCA)
    from lmkcore.data import open_dataset
    from lmkcore.runs import Checkpoint
    from lmkcore.viz.state import InspectorState

    state = InspectorState(open_dataset("procedural", "val", 32), {"toy": Checkpoint(exp / "stage2" / "last.pt", "toy")})
    assert {"heatmaps", "features"} <= set(state.available_layers())
    state.toggle("heatmaps", True)
    state.toggle("features", True)
    assert state.render()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"keypoints", "heatmaps", "features"} <= set(state.drawn_layers)


def test_the_toy_offers_features_and_the_visuals_of_its_layers():
    toy, x = _toy(), torch.rand(2, 3, 32, 32)
    assert toy.keypoints(x).shape == (2, 4, 2) and toy.features(x).shape == (2, 4, 16, 16)
    assert set(toy.visuals(x)) == set(toy.layers) and toy.evaluations == ("keypoints", "head")


def test_init_from_reports_keys_of_one_side_and_names_shape_mismatches(tmp_path, procedural32):
    from lmkcore.train import init_weights

    src = train(_toy(), procedural32, _cfg(tmp_path, steps=1, run_name="src"))
    plain = _toy(seed=1, adv=0.0)  # no discriminator: its keys are unexpected
    r = train(plain, procedural32, _cfg(tmp_path, steps=1, run_name="dst", init_from=str(src.run_dir)))
    init = json.loads((r.run_dir / "config.json").read_text())["init_from"]
    assert init["missing"] == [] and sorted(init["unexpected"]) == ["disc.0.bias", "disc.0.weight", "disc.2.bias",
                                                                    "disc.2.weight"]
    fresh = _toy(seed=1, adv=0.0)
    init_weights(fresh, src.run_dir / "model_0000001.pt", quiet=True)
    assert torch.equal(fresh.detector[0].weight, load(src.run_dir / "last.pt")["model"]["detector.0.weight"])
    # a resumed run keeps the report of the run it continues
    resumed = train(_toy(seed=1, adv=0.0), procedural32, _cfg(tmp_path, steps=2, run_name="dst", resume=True,
                                                              init_from=str(src.run_dir)))
    assert json.loads((resumed.run_dir / "config.json").read_text())["init_from"] == init
    with pytest.raises(ValueError, match=r"detector\.4\.weight: checkpoint \(4, 4, 1, 1\) vs model \(5, 4, 1, 1\)"):
        init_weights(_toy(n_parts=5), src.run_dir, quiet=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="init_from='.*empty'.*no last.pt"):
        init_weights(_toy(), tmp_path / "empty")


def test_after_step_updates_the_ema_twin_after_every_step(tmp_path, procedural32):
    toy = _toy(momentum=0.75)
    with torch.no_grad():  # a hand-made case: ema <- 0.75 * 0 + 0.25 * 2
        for e, p in zip(toy.ema.parameters(), toy.detector.parameters()):
            e.zero_()
            p.fill_(2.0)
    toy.after_step(1)
    assert all(torch.equal(e, torch.full_like(e, 0.5)) for e in toy.ema.parameters())

    toy = _toy()
    init = [e.clone() for e in toy.ema.parameters()]
    steps, real = [], toy.after_step
    toy.after_step = lambda step: (steps.append(step), real(step))
    train(toy, procedural32, _cfg(tmp_path, steps=3))
    assert steps == [1, 2, 3]
    assert all(not torch.equal(a, b) for a, b in zip(init, toy.ema.parameters()))  # the twin moved ...
    assert all(not torch.equal(a, b) for a, b in zip(toy.detector.parameters(), toy.ema.parameters()))  # ... slower


def test_two_optimisers_step_in_turn_and_their_logs_merge(tmp_path, procedural32):
    from lmkcore.train import merge_logs

    toy = _toy()
    before = {k: v.clone() for k, v in toy.state_dict().items()}
    calls, real = [], toy.loss
    toy.loss = lambda batch, *args: (calls.append(args), real(batch, *args))[1]
    r = train(toy, procedural32, _cfg(tmp_path, steps=2))
    assert calls == [(0,), (1,), (0,), (1,)]
    after = toy.state_dict()
    for k in ("detector.0.weight", "disc.0.weight", "disc.2.bias"):
        assert not torch.equal(before[k], after[k]), k
    h = r.history[-1]
    assert {"loss", "loss1", "mse", "fool", "disc", "lr", "lr1"} <= set(h) and h["loss1"] == pytest.approx(h["disc"])
    t = torch.tensor
    assert merge_logs([1.0, 2.0], [{"a": t(3.0)}, {"a": t(4.0), "b": t(5.0)}], [0.1, 0.2]) == {
        "loss": 1.0, "a": 3.0, "loss1": 2.0, "1/a": 4.0, "b": 5.0, "lr": 0.1, "lr1": 0.2}


def test_resume_of_a_two_optimiser_run_continues_the_same_curve(tmp_path, procedural32):
    full = train(_toy(), procedural32, _cfg(tmp_path / "a"))
    cut = train(_toy(), procedural32, _cfg(tmp_path / "b", max_minutes=1e-9))
    assert cut.step == 1 and len(load(tmp_path / "b" / "run" / "last.pt")["scheduler"]) == 2
    resumed = train(_toy(), procedural32, _cfg(tmp_path / "b", resume=True))
    for key in ("loss", "loss1", "lr"):
        assert [h[key] for h in resumed.history] == [h[key] for h in full.history], key
    a, b = load(tmp_path / "a" / "run" / "last.pt"), load(tmp_path / "b" / "run" / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_a_cap_refits_schedules_with_a_horizon_and_stops_the_others():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)

    class Linear:  # any lambda object with an integer `steps` is refitted
        steps = 100

        def __call__(self, s):
            return 1 - s / self.steps

    f, g = WarmupCosine(2, 50), Linear()
    assert refittable(torch.optim.lr_scheduler.LambdaLR(opt, [f])) == [f]
    assert refittable(torch.optim.lr_scheduler.LambdaLR(opt, g)) == [g]
    assert refittable(torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)) == []
    assert refittable(torch.optim.lr_scheduler.StepLR(opt, 10)) == [] and refittable(None) == []


def test_a_recipe_less_method_trains_once_and_an_experiment_nests_its_runs(tmp_path, procedural32, tiny_config):
    from lmkcore.train import run_recipe

    (r,) = run_recipe(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, steps=1, experiment="exp"))
    assert r.run_dir == tmp_path / "exp" / "run" and (r.run_dir / "last.pt").is_file()


def test_build_method_seeds_before_it_builds(tiny_config):
    from lmkcore.train import build_method, main

    a, b, c = (build_method("autolink", tiny_config, seed) for seed in (3, 3, 4))
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert not torch.equal(a.detector.head.weight, c.detector.head.weight)
    with pytest.raises(KeyError, match="unknown method 'nope'"):
        build_method("nope")
    with pytest.raises(SystemExit, match="--method 'no.such.module:Toy'"):
        main(["--method", "no.such.module:Toy"])


@pytest.mark.slow
def test_two_optimisers_under_ddp_on_cpu(tmp_path):
    """Two gloo ranks train the toy's recipe; stage2's discriminator part leaves the detector unused."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "lmkcore.train", "--method", TOY, "--data", "procedural", "--split", "val", "--steps", "2",
           "--batch_size", "2", "--num_workers", "0", "--out_dir", str(tmp_path), "--experiment", "exp",
           "--progress", "false", "--tensorboard", "false", "width=4"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "LMK_DDP_TIMEOUT": "60", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=REPO, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    ck = load(tmp_path / "exp" / "stage2" / "last.pt")
    assert ck["step"] == 2 and ck["world_size"] == 2 and len(ck["optimizer"]) == 2


# robustness: nothing silently wrong on resume, nothing diverged kept as "good"

def test_resuming_with_other_settings_is_an_error_naming_them(tmp_path, procedural32, tiny_config):
    train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, steps=6, max_minutes=1e-9))
    with pytest.raises(ValueError, match=r"other settings \(sklr: 64.0 in the checkpoint, 32.0 now.*batch_size: 4"):
        train(build("autolink", **{**tiny_config, "sklr": 32.0}), procedural32, _cfg(tmp_path, resume=True,
                                                                                   batch_size=2))
    train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, resume=True))  # same settings: fine


def test_weights_made_non_finite_by_a_finite_loss_are_never_checkpointed(tmp_path, procedural32, tiny_config):
    """A finite loss with non-finite gradients (sqrt at 0) poisons the weights at step 4: the checkpoint of
    step 4 is refused and last.pt stays the good one of step 2."""
    method = build("autolink", **tiny_config)
    real_loss, calls = method.loss, {"n": 0}

    def loss(batch):
        calls["n"] += 1
        value, logs = real_loss(batch)
        if calls["n"] == 4:
            p = next(method.parameters())
            value = value + torch.sqrt(((p - p.detach()) ** 2).sum())  # 0 forward, NaN gradient
        return value, logs

    method.loss = loss
    with pytest.raises(FloatingPointError, match="non-finite weights after step 4"):
        train(method, procedural32, _cfg(tmp_path, ckpt_every=2))
    ck = load(tmp_path / "run" / "last.pt")
    assert ck["step"] == 2 and all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_the_wall_clock_cap_and_the_summary_count_every_session(tmp_path, procedural32, tiny_config):
    train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, steps=6, max_minutes=1e-9))
    ck = load(tmp_path / "run" / "last.pt")
    assert ck["step"] == 1 and ck["wall_s"] > 0
    ck["wall_s"] = 3600.0  # as if the first session had trained for an hour
    torch.save(ck, tmp_path / "run" / "last.pt")
    before = (tmp_path / "run" / "summary.json").read_text()
    r = train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, resume=True, max_minutes=30.0))
    assert r.step == 1  # the 30-minute cap was spent before this session: nothing trained, nothing rewritten
    assert load(tmp_path / "run" / "last.pt")["step"] == 1 and (tmp_path / "run" / "summary.json").read_text() == before
    r = train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, resume=True, max_minutes=90.0))
    assert r.step == 6  # 30 of 90 minutes left: on to the end
    assert r.summary["wall_s_total"] >= 3600.0 and r.history[-1]["time"] >= 3600.0


def test_a_zero_step_run_keeps_the_weights_it_starts_from(tmp_path, procedural32):
    src = train(_toy(), procedural32, _cfg(tmp_path, steps=2, run_name="src"))
    r = train(_toy(seed=1), procedural32, _cfg(tmp_path, steps=0, run_name="reused", init_from=str(src.run_dir)))
    assert r.step == 0 and load(r.run_dir / "last.pt")["step"] == 0
    for k, v in load(src.run_dir / "last.pt")["model"].items():
        assert torch.equal(load(r.run_dir / "last.pt")["model"][k], v), k
    summary = (r.run_dir / "summary.json").read_text()
    again = train(_toy(seed=1), procedural32, _cfg(tmp_path, steps=0, run_name="reused", init_from=str(src.run_dir),
                                                   resume=True))
    assert again.step == 0 and (r.run_dir / "summary.json").read_text() == summary  # finished: nothing rewritten
    with pytest.raises(ValueError, match="steps=0 trains nothing: it needs init_from"):
        _cfg(tmp_path, steps=0)


def test_a_recipe_s_time_counts_at_least_its_stages_after_an_interrupted_session(tmp_path, procedural32):
    from lmkcore.train import run_recipe

    cfg = _cfg(tmp_path, steps=2, run_name="exp", resume=True)
    run_recipe(_toy(), procedural32, cfg)
    exp = tmp_path / "exp"
    for name in ("stage1", "stage2"):  # as if each stage had trained for an hour in a session cut short
        ck = load(exp / name / "last.pt")
        ck["wall_s"] = 3600.0
        torch.save(ck, exp / name / "last.pt")
        summary = json.loads((exp / name / "summary.json").read_text())
        (exp / name / "summary.json").write_text(json.dumps({**summary, "wall_s_total": 3600.0}))
    (exp / "summary.json").unlink()  # that session never reached the recipe's own summary
    run_recipe(_toy(), procedural32, cfg)  # both stages found finished: nothing trains
    assert json.loads((exp / "summary.json").read_text())["wall_s_total"] >= 7200.0


def test_a_torn_last_history_line_is_dropped_and_a_bad_middle_line_is_named(tmp_path, procedural32, tiny_config):
    train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, steps=6, max_minutes=1e-9))
    hist = tmp_path / "run" / "history.jsonl"
    hist.write_text(hist.read_text() + '{"step": 2, "lo')  # killed while appending
    r = train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, resume=True))
    assert [h["step"] for h in r.history] == [1, 2, 3, 4, 5, 6]
    hist.write_text("not json\n" + hist.read_text())
    from lmkcore.train import _read_history

    with pytest.raises(ValueError, match=r"history.jsonl, line 1: not a JSON history line"):
        _read_history(tmp_path / "run")


def test_progress_prints_lines_and_a_closing_line_where_no_bar_is_live(tmp_path, procedural32, tiny_config, capsys):
    """Under pytest (no terminal, no kernel), as in a log file or a papermill run: text lines, then one closing
    line with steps, minutes, img/s, final loss and the run directory."""
    train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, steps=3, progress=True))
    out = capsys.readouterr().out
    assert "[run] step 1/3  loss " in out and " img/s " in out and "ETA" in out
    assert "[run] done: steps 0->3 in " in out and "final loss" in out and str(tmp_path / "run") in out


def test_bad_checkpoints_are_errors_naming_the_file(tmp_path, procedural32, tiny_config):
    from lmkcore.checkpoint import CheckpointError, save_atomic

    r = train(build("autolink", **tiny_config), procedural32, _cfg(tmp_path, steps=1))
    ck = load(r.run_dir / "last.pt")
    cases = {"truncated.pt": None, "nomethod.pt": {k: v for k, v in ck.items() if k != "method"},
             "unknown.pt": {**ck, "method": "flip-points", "method_path": None},
             "otherk.pt": {**ck, "config": {**ck["config"], "n_parts": 5}}}
    (tmp_path / "truncated.pt").write_bytes((r.run_dir / "last.pt").read_bytes()[:2000])
    for name, state in cases.items():
        if state is not None:
            torch.save(state, tmp_path / name)
    for name, message in [("truncated.pt", "not a readable checkpoint"), ("nomethod.pt", r"no \['method'\]"),
                          ("unknown.pt", "its method 'flip-points' is not available here"),
                          ("otherk.pt", "its weights do not fit the autolink its config builds")]:
        with pytest.raises(CheckpointError, match=f"{name}: {message}"):
            load_method(tmp_path / name)
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at .*lost\.pt; that folder holds \['last.pt'"):
        load(r.run_dir / "lost.pt")
    with pytest.raises(OSError, match=r"could not write .*x\.pt"):  # e.g. a full disk: named, no temporary left
        save_atomic({"a": 1}, tmp_path / "no-such-folder" / "x.pt")


def test_tensorboard_gets_keypoint_overlays(tiny_config):
    from lmkcore.train import _log_images

    class Writer:
        def __init__(self):
            self.images = {}

        def add_images(self, tag, data, step, dataformats="NCHW"):
            self.images[tag] = (data, dataformats)

    writer, method = Writer(), build("autolink", **tiny_config)
    _log_images(writer, method, torch.rand(3, 3, 32, 32), step=5)
    drawn, fmt = writer.images["keypoints"]
    assert fmt == "NHWC" and drawn.shape == (3, 32, 32, 3) and drawn.dtype.name == "uint8"
    assert method.training  # back in training mode


@pytest.mark.slow
def test_runs_killed_at_random_moments_resume_to_the_uninterrupted_curve(tmp_path, tiny_config):
    """Fault injection: `python -m lmkcore.train` killed (SIGKILL) at seeded random moments, checkpoint writes
    included (one every step), resumed each time; the finished curve equals an uninterrupted run's exactly."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    fields = [f"{k}={v}" for k, v in tiny_config.items()]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def cmd(out, resume):
        return [sys.executable, "-m", "lmkcore.train", "--method", "autolink", "--data", "procedural", "--split", "val",
                "--steps", "16", "--batch_size", "4", "--num_workers", "0", "--ckpt_every", "1", "--log_every", "1",
                "--out_dir", str(out), "--run_name", "run", "--progress", "false", "--tensorboard", "false",
                "--resume", str(resume).lower(), *fields]

    subprocess.run(cmd(tmp_path / "a", False), check=True, capture_output=True, env=env, timeout=240, cwd=REPO)
    want = [h["loss"] for h in map(json.loads, (tmp_path / "a" / "run" / "history.jsonl").read_text().splitlines())]
    rng, kills, mid_run = random.Random(7), 0, 0
    last = tmp_path / "b" / "run" / "last.pt"
    for attempt in range(4):  # four runs killed at random moments, then one left to finish
        p = subprocess.Popen(cmd(tmp_path / "b", attempt > 0), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=env, cwd=REPO)
        deadline = time.time() + rng.uniform(0.0, 2.0)
        while p.poll() is None and not last.exists():  # wait for training (the first checkpoint) to begin
            time.sleep(0.05)
        while p.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        if p.poll() is None:
            step_before = torch.load(last, weights_only=True)["step"] if last.exists() else -1
            p.send_signal(signal.SIGKILL)
            kills += 1
            mid_run += 0 <= step_before < 16
        p.wait(timeout=240)
    r = subprocess.run(cmd(tmp_path / "b", True), capture_output=True, text=True, env=env, timeout=240, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    got = [h["loss"] for h in map(json.loads, (tmp_path / "b" / "run" / "history.jsonl").read_text().splitlines())]
    assert mid_run >= 2 and got == pytest.approx(want, rel=1e-6, abs=1e-7)
    assert not list((tmp_path / "b" / "run").glob(".*.tmp*"))  # writes cut short by a kill are cleared on resume
