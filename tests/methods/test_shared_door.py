"""Every method through the shared door: the one trainer resumes each exactly (the same loss curve as an
uninterrupted run), with nothing method-specific outside its module."""
import pytest
import torch

from lmkcore.data import open_dataset
from lmkcore.methods import build, method_class
from lmkcore.train import TrainConfig, train
from tests.tiny import TINY_AUTOLINK
from tests.methods import test_contrastive, test_fgbg, test_partbased

TINY = {"autolink": TINY_AUTOLINK, "partbased": test_partbased.TINY, "fgbg": test_fgbg.TINY,
        "contrastive": test_contrastive.TINY}


def procedural_for(name: str):
    """Procedural figures at the input size of method `name`'s tiny config (its config's `resolution`)."""
    return open_dataset("procedural", "val", resolution=method_class(name).config_class(**TINY[name]).resolution)


@pytest.mark.parametrize("name", sorted(TINY))
def test_an_interrupted_run_resumes_to_the_uninterrupted_curve(tmp_path, name):
    config, data = TINY[name], procedural_for(name)

    def run(out, steps, **kw):
        torch.manual_seed(0)
        method = build(name, **config)
        data_ = method.training_data(data)
        return train(method, data_, TrainConfig(steps=steps, batch_size=4, num_workers=0, out_dir=str(out),
                                                run_name="run", log_every=1, ckpt_every=1, progress=False,
                                                tensorboard=False, **kw))

    full = run(tmp_path / "a", 3)
    run(tmp_path / "b", 3, max_minutes=1e-9)  # stops (with a checkpoint) after its first step
    resumed = run(tmp_path / "b", 3, resume=True)
    keys = [k for k in full.history[0] if k != "time"]  # every logged loss and learning rate, step by step
    assert [h[k] for h in resumed.history for k in keys] == pytest.approx(
        [h[k] for h in full.history for k in keys], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", sorted(TINY))
def test_a_training_step_runs_under_bf16_autocast_with_fp32_keypoints(name):
    """The trainer's AMP (bf16 autocast: on every GPU, on the CPU with `cpu_amp`), checked on the CPU: a
    method whose fp32 islands are fed bf16 activations fails here, as it would on the first GPU step."""
    data = procedural_for(name)
    torch.manual_seed(0)
    method = build(name, **TINY[name])
    batch = torch.utils.data.default_collate([method.training_data(data)[i] for i in range(4)])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = method.loss(batch)
        # contrastive keypoints need clusters fitted after pre-training (its own tests)
        keypoints = None if name == "contrastive" else method.keypoints(batch["image"])
    loss.backward()
    assert torch.isfinite(loss)
    assert keypoints is None or keypoints.dtype == torch.float32
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in method.parameters())


@pytest.mark.parametrize("name", ["autolink", "fgbg", "partbased"])
def test_the_schedule_field_makes_the_shared_cosine(name):
    """`schedule` is one field with one meaning for every method that has it: constant (no scheduler) or the
    shared cosine to 0 at the run's end (a horizon the trainer can fit to a time cap); anything else is refused
    when the config is made."""
    from lmkcore.train import refittable

    assert build(name, **{**TINY[name], "schedule": "constant"}).optimizers(100)[1] is None
    opt, sched = build(name, **{**TINY[name], "schedule": "cosine"}).optimizers(100)
    assert len(refittable(sched)) == len(opt.param_groups)  # one horizon per parameter group
    for _ in range(100):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.0] * len(opt.param_groups), abs=1e-12)
    with pytest.raises(ValueError, match="schedule must be one of constant, cosine"):
        build(name, **{**TINY[name], "schedule": "linear"})
