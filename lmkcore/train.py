"""One trainer for every method: seeded, resumable, device-agnostic, DDP under torchrun.

    python -m lmkcore.train --method autolink --dataset procedural --steps 500 n_parts=10
    torchrun --standalone --nproc_per_node 4 -m lmkcore.train --method autolink --data store.h5 ...

A run directory holds `config.json` (resolved configs + commit), `last.pt` (model, optimiser,
scheduler, step, RNG states; replaced atomically), `model_<step>.pt` snapshots, `history.jsonl`
(one line per logged step), `summary.json` (wall time, images/s, peak memory) and TensorBoard
events. `resume=True` continues the same curve exactly.

A method may give several optimisers (stepped in turn each step), an `after_step` hook, and a
`recipe` of stages (`run_recipe`): each stage is one `train()` call, a run of `out_dir/<experiment>/`,
started from the previous stage's weights with `init_from`. A method defined outside the package
trains through its import path:

    python -m lmkcore.train --method tests.methods.toy:Toy --steps 20 n_parts=4
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import time
from datetime import timedelta
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from .checkpoint import load, method_resolution, save_atomic
from .methods import Method, method_class, method_path
from .methods.base import require
from .params import ParameterError, convert, field_value
from .progress import Progress
from .provenance import git_commit


@dataclass
class TrainConfig:
    steps: int = 1000  # optimiser steps
    batch_size: int = 32  # per process
    num_workers: int = 2  # DataLoader workers (0 = load in the main process)
    seed: int = 0
    out_dir: str = "runs"  # the run directory is out_dir/<run name>, or out_dir/<experiment>/<run name>
    run_name: str = ""  # default: the method's run_name(dataset, resolution, steps)
    experiment: str = ""  # links the stages of a recipe: each stage is a run of out_dir/<experiment>/
    init_from: str = ""  # start from another run's weights (a run directory or a .pt file), strict=False, reported;
    # with steps=0 the run trains nothing and its checkpoint holds those weights (a recipe stage reused)
    dataset: str = "procedural"  # recorded in the run name and metrics
    resume: bool = False  # continue from out_dir/<run>/last.pt
    overwrite: bool = False  # start afresh even if the run directory has a checkpoint
    ckpt_every: int = 250  # steps between checkpoints (and model snapshots)
    log_every: int = 10  # steps between history lines / TensorBoard scalars
    image_every: int = 500  # steps between TensorBoard images: keypoints over the batch, visual layers (0: only at the end)
    device: str = "auto"  # "auto": cuda if present, else cpu
    amp: bool = True  # bf16 autocast on CUDA
    cpu_amp: bool = False  # bf16 autocast on CPU too, where oneDNN has native bf16 (AVX512-BF16 / AMX): faster, less precise (sweep row cpu-tps-0.08-bf16)
    channels_last: bool = True  # NHWC weights and images: faster convolutions on CUDA and on CPU (oneDNN)
    progress: bool = True  # a bar on a terminal, text lines in logs and headless notebooks (lmkcore.progress)
    tensorboard: bool = True
    max_minutes: float = 0.0  # stop (with a checkpoint) after this wall time (horizons refitted: refittable); 0 = none

    def __post_init__(self):
        require(self, steps=0, batch_size=1, num_workers=0, ckpt_every=1, log_every=1, image_every=0, max_minutes=0)
        if self.steps == 0 and not self.init_from:
            raise ValueError("TrainConfig.steps=0 trains nothing: it needs init_from (the weights its checkpoint "
                             "takes), or give steps >= 1")


def _to_device(v, device: torch.device, channels_last: bool):
    """A batch entry on `device`; image batches `(B, C, H, W)` in the model's memory layout."""
    if not torch.is_tensor(v):
        return v
    layout = torch.channels_last if channels_last and v.dim() == 4 else torch.preserve_format
    return v.to(device, non_blocking=True, memory_format=layout)


class StepSampler(Sampler):
    """Batches of indices as a pure function of (seed, step): epoch e is a permutation drawn from
    seed + e, so a resumed run sees exactly the batches an uninterrupted one would. Under DDP each
    rank takes its own slice of every global batch."""

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int = 0, rank: int = 0, world: int = 1):
        if n < batch_size * world:
            raise ValueError(f"dataset of {n} items is smaller than one global batch ({batch_size} x {world})")
        self.n, self.bs, self.seed, self.start, self.rank, self.world = n, batch_size, seed, start_step, rank, world
        self.per_epoch = n // (batch_size * world)

    def batch(self, step: int) -> list[int]:
        epoch, pos = divmod(step, self.per_epoch)
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        g = self.bs * self.world
        return perm[pos * g + self.rank * self.bs: pos * g + (self.rank + 1) * self.bs].tolist()

    def __iter__(self):
        step = self.start
        while True:
            yield self.batch(step)
            step += 1

    def __len__(self) -> int:
        return 2**62


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


@dataclass
class RunResult:
    run_dir: Path
    step: int
    history: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def train(method: Method, data: Dataset, cfg: TrainConfig) -> RunResult:
    """Train `method` on `data` (items with "image" (3, H, W) in [0, 1]) for `cfg.steps` steps.

    `method.optimizers(steps)` gives one (optimizer, scheduler | None) pair, or a list of pairs: then each
    step runs, for i in order, `loss, logs = model(batch, i)`, zero_grad, backward and a step of optimiser
    i alone (a generator and a discriminator stepped in turn). `method.after_step(step)` follows every step."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo",
                                timeout=timedelta(seconds=int(os.environ.get("LMK_DDP_TIMEOUT", 1800))))
    device = torch.device(("cuda:%d" % int(os.environ.get("LOCAL_RANK", 0)) if torch.cuda.is_available()
                           else "cpu") if cfg.device == "auto" else cfg.device)
    amp = cfg.amp and (device.type == "cuda" or (device.type == "cpu" and cfg.cpu_amp and _cpu_amp_available(rank)))
    resolution = int(data[0]["image"].shape[-1])
    name = cfg.run_name or default_run_name(method, data, cfg)
    run_dir = Path(cfg.out_dir) / cfg.experiment / name if cfg.experiment else Path(cfg.out_dir) / name
    last = run_dir / "last.pt"
    if last.exists() and not (cfg.resume or cfg.overwrite):
        raise FileExistsError(f"{run_dir} already holds a run: pass resume=True to continue it or "
                              "overwrite=True to start afresh")

    torch.manual_seed(cfg.seed)
    method.to(device)
    if cfg.channels_last:
        method.to(memory_format=torch.channels_last)
    resuming = cfg.resume and last.exists()
    init = None
    if cfg.init_from and not resuming:  # a resumed run has its own weights (and its init report, below)
        init = init_weights(method, cfg.init_from, quiet=rank != 0)
    pairs = method.optimizers(cfg.steps)
    several = isinstance(pairs, list)  # a list: parts stepped in turn, model(batch, i); a pair: model(batch)
    if not several:
        pairs = [pairs]
    if not pairs or not all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], torch.optim.Optimizer)
                            for p in pairs):
        raise TypeError(f"{type(method).__name__}.optimizers() must give an (optimizer, scheduler or None) pair "
                        f"or a list of such pairs, not {pairs!r}")
    start, history, wall_before = 0, [], 0.0
    if resuming:
        ck = load(last, map_location=device)
        _check_same_run(ck, method, cfg, last)
        method.load_state_dict(ck["model"])
        opts, scheds = ck["optimizer"], ck.get("scheduler")  # one state, or a list of them (several optimisers)
        opts, scheds = (opts, scheds) if isinstance(opts, list) else ([opts], [scheds])
        if len(opts) != len(pairs):
            raise ValueError(f"{last} holds {len(opts)} optimiser states but {method.name}.optimizers() gives "
                             f"{len(pairs)} (optimiser, scheduler) pairs")
        for (opt, sched), o, s in zip(pairs, opts, scheds or [None] * len(pairs)):
            opt.load_state_dict(o)
            if sched is not None and s is not None:
                sched.load_state_dict(s)
        start = int(ck["step"])
        _set_rng_state(ck["rng"])
        init = ck.get("init_from")
        wall_before = float(ck.get("wall_s", 0.0))  # the cap and the summary count every session's time
        history = [h for h in _read_history(run_dir) if h["step"] <= start]
    elif cfg.resume and rank == 0:
        print(f"resume=True but {last} does not exist: starting a new run")
    # a schedule with a horizon ends where the wall-clock cap would cut it, so a capped run still anneals;
    # any other schedule simply stops at the cap (with a checkpoint)
    horizons = [f for _, sched in pairs for f in refittable(sched)]
    end = min([cfg.steps] + [f.steps for f in horizons])
    capped = bool(cfg.max_minutes) and wall_before >= 60 * cfg.max_minutes  # its cap spent in earlier sessions
    if resuming and (start >= end or capped):  # resuming a finished run (e.g. to evaluate it again): nothing to train
        method.eval()
        summary = _read_summary(run_dir) or {"steps": start}
        if rank == 0:
            why = f"its {cfg.max_minutes:g}-minute cap spent" if capped and start < end else f"schedule end {end}"
            print(f"{run_dir} finished at step {start} ({why}): nothing to train")
        return RunResult(run_dir, start, history, summary)

    model = method
    if world > 1:
        if device.type == "cuda" and method.sync_batchnorm:  # batch statistics over all GPUs, as the papers' sync-BN
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)
        # parts stepped in turn each use some parameters only (a discriminator's loss leaves the generator's
        # unused), so DDP must look for unused parameters after each part's forward; one part uses them all
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=several)

    meta = {"method": method.name, "method_path": method_path(type(method)), "config": method.config_dict(),
            "run": name, "experiment": cfg.experiment, "dataset": cfg.dataset, "resolution": resolution,
            "world_size": world, "commit": git_commit(), "init_from": init}
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in run_dir.glob(".*.pt.tmp*"):  # a checkpoint write cut short by a kill: never a checkpoint
            stale.unlink(missing_ok=True)
        (run_dir / "config.json").write_text(json.dumps({**meta, "train": dataclasses.asdict(cfg)}, indent=2))
        _write_history(run_dir, history)

    def checkpoint(step: int) -> None:
        bad = [n for n, p in method.named_parameters() if not torch.isfinite(p).all()]
        if bad:  # an update with a finite loss but non-finite gradients: never let it replace the last good state
            raise FloatingPointError(
                f"non-finite weights after step {step} of {name} ({len(bad)} tensors, e.g. {bad[0]}); the last "
                f"good checkpoint is {last if last.exists() else 'not written yet'} (resume=True continues from it)")
        if rank != 0:
            return
        state = {**meta, "model": method.state_dict(), "step": step}
        save_atomic(state, run_dir / f"model_{step:07d}.pt")
        opts = [opt.state_dict() for opt, _ in pairs]
        scheds = [sched.state_dict() if sched is not None else None for _, sched in pairs]
        save_atomic({**state, "optimizer": opts if several else opts[0], "scheduler": scheds if several else scheds[0],
                     "rng": _rng_state(), "train": dataclasses.asdict(cfg),
                     "wall_s": wall_before + time.time() - t0}, last)

    loader = DataLoader(data, batch_sampler=StepSampler(len(data), cfg.batch_size, cfg.seed, start, rank, world),
                        num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
                        prefetch_factor=4 if cfg.num_workers else None,
                        generator=torch.Generator().manual_seed(cfg.seed))  # keeps the global RNG untouched
    writer = _tensorboard(run_dir) if cfg.tensorboard and rank == 0 else None
    progress = Progress.auto(name, end, start) if cfg.progress and rank == 0 else None
    method.train()
    t0, seen, step = time.time(), 0, start
    batches, values, finished = iter(loader), [], False
    try:
        while step < end:
            batch = {k: _to_device(v, device, cfg.channels_last) for k, v in next(batches).items()}
            values, parts = [], []
            for i, (opt, sched) in enumerate(pairs):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    loss, logs = model(batch, i) if several else model(batch)
                value = loss.item()
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"non-finite loss ({value}) at step {step}{f' (optimiser {i})' if several else ''} of "
                        f"{name}; the last good checkpoint is {last if last.exists() else 'not written yet'} "
                        "(resume=True continues from it)")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                values.append(value)
                parts.append(logs)
            step += 1
            method.after_step(step)
            seen += batch["image"].shape[0] * world
            if cfg.max_minutes and horizons and (step - start) % 50 == 20:
                end = fit_horizon(step, start, cfg.steps, time.time() - t0,
                                  60 * cfg.max_minutes * 0.98 - wall_before)
                for f in horizons:
                    f.steps = end
                if progress is not None:
                    progress.steps = end
            if step % cfg.log_every == 0 or step == end:
                h = {"step": step, **merge_logs(values, parts, [opt.param_groups[0]["lr"] for opt, _ in pairs]),
                     "time": wall_before + time.time() - t0}
                history.append(h)
                if rank == 0:
                    _append_history(run_dir, h)
                    if writer:
                        for k, v in h.items():
                            if k not in ("step", "time"):
                                writer.add_scalar(f"train/{k}", v, step)
            if progress is not None:
                progress.update(step, values[0], seen)
            if writer and cfg.image_every and step % cfg.image_every == 0:
                _log_images(writer, method, batch["image"], step)
            if step % cfg.ckpt_every == 0 or step == end:
                checkpoint(step)
            if cfg.max_minutes and wall_before + time.time() - t0 > 60 * cfg.max_minutes:
                checkpoint(step)
                break
        if end == 0:  # a 0-step run (a stage that only takes init_from's weights) still leaves its checkpoint
            checkpoint(0)
        finished = True
    finally:
        if progress is not None:
            progress.close(step, values[0] if values else None, seen, run_dir, failed=not finished)
    wall = time.time() - t0
    summary = {"steps": step, "schedule_steps": end, "steps_this_session": step - start, "wall_s": round(wall, 2),
               "images_per_s": round(seen / max(wall, 1e-9), 2), "peak_memory_mb": round(peak_memory_mb(device), 1),
               "device": str(device), "world_size": world, "batch_size": cfg.batch_size, "bf16": amp}
    if rank == 0:
        summary["wall_s_total"] = round(wall_before + wall, 2)
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        if writer:
            _log_images(writer, method, batch["image"], step)
            writer.close()
    if world > 1:  # rank 0's checkpoint is on disk before any rank goes on (a recipe's next stage loads it)
        dist.barrier()
    method.eval()
    return RunResult(run_dir, step, history, summary)


# stages: a method's recipe calls train() once per stage or round

def run_recipe(method: Method, data: Dataset, cfg: TrainConfig) -> list[RunResult]:
    """Train `method` as its class says: `recipe(method, data, cfg) -> list[RunResult]` where the class
    defines one (a classmethod or staticmethod that calls `train()` once per stage or round, each with its
    own `run_name`, e.g. via `stage()`), else one `train()` call. Stages share one experiment: `cfg.experiment`,
    else `cfg.run_name`, else the run name the method would have had; they land in `out_dir/<experiment>/<stage>`.
    Each stage is a run of its own: `resume=True` resumes each (a finished stage returns at once, its weights
    loaded), and `max_minutes` caps each stage.
    A recipe that relabels its data between rounds does it between its `train()` calls."""
    recipe = getattr(type(method), "recipe", None)
    if recipe is None:
        return [train(method, data, cfg)]
    experiment = cfg.experiment or cfg.run_name or default_run_name(method, data, cfg)
    t0 = time.time()
    results = list(recipe(method, data, dataclasses.replace(cfg, experiment=experiment, run_name="")))
    if int(os.environ.get("RANK", 0)) == 0 and results:  # the whole recipe's time: stages and what runs between
        exp = Path(cfg.out_dir) / experiment
        before = _read_summary(exp).get("wall_s_total", 0.0) if cfg.resume else 0.0
        # at least the stages' own totals: a session cut short before this line loses only what ran between them
        stages = sum(r.summary.get("wall_s_total", 0.0) for r in results)
        total = max(before + time.time() - t0, stages)
        (exp / "summary.json").write_text(json.dumps({
            "stages": [r.run_dir.name for r in results], "wall_s_total": round(total, 2),
            "steps": [r.step for r in results]}, indent=2))
    return results


def stage(cfg: TrainConfig, name: str, after: RunResult | None = None, **changes) -> TrainConfig:
    """The config of one stage of a recipe: run `name` in `cfg`'s experiment, started from the weights of
    the stage `after` (init_from its run directory) where given; `changes` override other fields."""
    init = str(after.run_dir) if after is not None else cfg.init_from
    return dataclasses.replace(cfg, run_name=name, init_from=init, **changes)


def store_weights(method: Method, run_dir: str | os.PathLike) -> list[Path]:
    """Write `method`'s current weights into a finished run's `last.pt` and newest `model_<step>.pt`, keeping
    everything else (for a recipe that sets state after its last stage, e.g. keypoint clusters); the files."""
    run_dir = Path(run_dir)
    written = []
    for p in [run_dir / "last.pt"] + sorted(run_dir.glob("model_*.pt"))[-1:]:
        if p.is_file():
            ck = load(p)
            ck["model"] = {k: v.detach().cpu() for k, v in method.state_dict().items()}
            save_atomic(ck, p)
            written.append(p)
    return written


def default_run_name(method: Method, data: Dataset, cfg: TrainConfig) -> str:
    """The method's `run_name(dataset, resolution, steps)`, with `_w<world>` under DDP."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    resolution = int(data[0]["image"].shape[-1])
    return method.run_name(cfg.dataset, resolution, cfg.steps) + (f"_w{world}" if world > 1 else "")


def init_weights(method: Method, source: str | os.PathLike, quiet: bool = False) -> dict:
    """Load another run's weights into `method` (`source`: a run directory, i.e. its last.pt, or a .pt file),
    strict=False: keys of one side only are reported (printed unless `quiet`, and returned for config.json);
    a key whose shape differs is an error naming the key and both shapes. The method's `readout_state` (fitted
    on that run's features, e.g. clusters) is not loaded."""
    path = Path(source)
    if path.is_dir():
        path = path / "last.pt"
        if not path.is_file():
            raise FileNotFoundError(f"init_from={str(source)!r}: the run directory holds no last.pt")
    weights = load(path, map_location="cpu")["model"]
    weights = {k: v for k, v in weights.items() if k not in method.readout_state}  # fitted there, not learned
    own = method.state_dict()
    bad = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
           for k, v in weights.items() if k in own and v.shape != own[k].shape]
    if bad:
        raise ValueError(f"init_from={str(source)!r}: shapes differ for " + "; ".join(bad))
    missing, unexpected = method.load_state_dict(weights, strict=False)
    report = {"path": str(path), "missing": list(missing), "unexpected": list(unexpected)}
    if not quiet:
        print(f"init_from {path}: {len(weights) - len(unexpected)} tensors loaded; missing (kept as initialised): "
              f"{report['missing'] or 'none'}; unexpected (ignored): {report['unexpected'] or 'none'}")
    return report


def refittable(sched) -> list:
    """The learning-rate factors of `sched` whose horizon a wall-clock cap may shorten: each lambda of a
    `LambdaLR` that is an object with an integer `steps` attribute (as `WarmupCosine`), which it must
    read at call time. Such objects are saved by `LambdaLR.state_dict`, so a resumed run keeps the
    shortened horizon. Other schedulers (and plain functions) are not refitted: the run stops at the cap."""
    return [f for f in getattr(sched, "lr_lambdas", ()) if isinstance(getattr(f, "steps", None), int)]


def merge_logs(values: list[float], parts: list[dict], lrs: list[float]) -> dict:
    """One history line from the parts of a step: part 0's loss and lr as `loss` and `lr`, part i's as
    `loss<i>` and `lr<i>`; logs merged, a name already taken prefixed by its part (`<i>/<name>`)."""
    out = {"loss": values[0]}
    for i, logs in enumerate(parts):
        if i:
            out[f"loss{i}"] = values[i]
        for k, v in logs.items():
            out[k if k not in out else f"{i}/{k}"] = float(v)
    out["lr"] = lrs[0]
    out.update({f"lr{i}": lr for i, lr in enumerate(lrs) if i})
    return out


# helpers

def fit_horizon(step: int, start: int, steps: int, elapsed: float, budget: float) -> int:
    """The step a schedule should end at so that it fits `budget` seconds of this session: `steps`, or
    fewer at the rate so far (`step - start` steps in `elapsed` s), never before the next step."""
    rate = (step - start) / max(elapsed, 1e-9)
    return max(step + 1, min(steps, step + int((budget - elapsed) * rate)))


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX512-BF16 / AMX); emulated bf16 is slower than fp32."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def _cpu_amp_available(rank: int) -> bool:
    """cpu_amp's check: native bf16, else fp32 with a message."""
    ok = cpu_has_bf16()
    if not ok and rank == 0:
        print("cpu_amp=True but this CPU has no native bf16 (AVX512-BF16 / AMX): training in fp32")
    return ok


def _check_same_run(ck: dict, method: Method, cfg: TrainConfig, last: Path) -> None:
    """Resuming continues one run: a method config, batch size or seed other than the checkpoint's would train a
    mix of two runs under the first one's name, so it is an error naming what differs (the method's
    `recipe_fields`, which no stage trains with, may differ)."""
    from .methods.base import recorded_config

    was = recorded_config(method.config_class, ck.get("config", {}))
    now = method.config_dict()
    diff = [f"{k}: {was.get(k)!r} in the checkpoint, {now[k]!r} now" for k in now
            if k not in method.recipe_fields and json.dumps(was.get(k), default=str) != json.dumps(now[k], default=str)]
    trained = ck.get("train", {})
    diff += [f"{k}: {trained[k]!r} in the checkpoint, {getattr(cfg, k)!r} now" for k in ("batch_size", "seed")
             if k in trained and trained[k] != getattr(cfg, k)]
    if diff:
        raise ValueError(f"resume=True but {last} was trained with other settings ({'; '.join(diff)}): resume with "
                         "its settings, or start afresh (overwrite=True, or another run_name)")


def _read_history(run_dir: Path) -> list[dict]:
    """The history lines; a torn last line (a run killed while appending it) is dropped, any other unreadable
    line is an error naming the file and line."""
    p = run_dir / "history.jsonl"
    if not p.exists():
        return []
    lines = p.read_text().splitlines()
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines):
                print(f"{p}: dropping its torn last line {i} (a run stopped while writing it)")
                break
            raise ValueError(f"{p}, line {i}: not a JSON history line ({e.msg})") from None
    return out


def _read_summary(run_dir: Path) -> dict:
    f = run_dir / "summary.json"
    try:
        return json.loads(f.read_text()) if f.exists() else {}
    except json.JSONDecodeError as e:
        raise ValueError(f"{f}: not a JSON summary ({e.msg} at line {e.lineno}); delete it to rewrite it") from None


def _write_history(run_dir: Path, history: list[dict]) -> None:
    (run_dir / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))


def _append_history(run_dir: Path, h: dict) -> None:
    with open(run_dir / "history.jsonl", "a") as f:
        f.write(json.dumps(h) + "\n")


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is in requirements.txt; a minimal install may lack it
        return None
    return SummaryWriter(str(run_dir / "tb"))


def _log_images(writer, method: Method, images: torch.Tensor, step: int) -> None:
    """TensorBoard images: the keypoints (and the learned graph) over the batch's first images, and the method's
    image-like visual layers."""
    import numpy as np

    from .viz.draw import annotate

    x = images[:8].float()
    ready = method.keypoints_ready()  # a read-out fitted after training (clusters) has no keypoints yet
    with torch.no_grad():
        method.eval()
        vis = method.visuals(x)
        kp = method.keypoints(x).float().cpu() if ready else None  # (B, K, 2) in [-1, 1]
        graph = method.graph()
        method.train()
    if kp is not None:
        pics = (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()  # (B, H, W, 3)
        r = pics.shape[1]
        drawn = np.stack([annotate(p, ((k + 1) / 2 * (r - 1)).numpy(), graph=graph) for p, k in zip(pics, kp)])
        writer.add_images("keypoints", drawn, step, dataformats="NHWC")
    for k, v in vis.items():
        if v.dim() == 4 and v.shape[1] in (1, 3):
            writer.add_images(f"visuals/{k}", v.float().clamp(0, 1).cpu(), step)


def parse_fields(config_class, items: list[str]) -> dict:
    """Config fields given as `name=value` on a command line, each parsed as its field's type
    (`params.field_value`); an unknown name or a value of the wrong type ends the program naming it."""
    conf = {}
    for kv in items:
        k, eq, v = kv.partition("=")
        if not eq:
            raise SystemExit(f"{kv!r}: config fields are given as name=value")
        try:
            conf[k] = field_value(config_class, k, v)
        except ParameterError as e:
            raise SystemExit(str(e)) from None
    return conf


def build_method(name_or_path: str, fields: dict | None = None, seed: int = 0) -> Method:
    """A fresh method, its random initialisation drawn after `torch.manual_seed(seed)` so one seed gives
    one run. `name_or_path`: a registered name (`autolink`) or `package.module:ClassName` (imported, so a
    method defined outside lmkcore, e.g. in tests/, works too); `fields`: its config fields."""
    cls = method_class(name_or_path)
    torch.manual_seed(seed)
    return cls(cls.config_class(**(fields or {})))


def _parse_bool(text: str) -> bool:
    """A boolean flag's value: true or false (any case); anything else is an error."""
    try:
        return convert("flag", text, bool)
    except ParameterError:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}") from None


def main(argv=None) -> list[RunResult]:
    """Command line: the trainer's options, and the method's config fields anywhere among them (name=value or
    --name value); the method's recipe runs its stages. Returns the stages' `RunResult`s (the last is the
    finished method's)."""
    from . import methods
    from .data import open_dataset
    from .profiles import PROFILES, method_config, train_config

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
        epilog="Method config fields follow in any order, as name=value or in the seeds' style: --name value, "
               "--name=value, or a bare --flag for a boolean (--n_landmarks 10 --use_DDP). The trainer's own "
               "options above win where a name is both.")
    p.add_argument("--method", required=True,
                   help=f"a registered method ({', '.join(sorted(methods.METHODS))}) or package.module:ClassName")
    p.add_argument("--data", default=None, help="a store (.h5) or 'procedural' (default: the method config's "
                                                "dataset_path where it has one, else procedural)")
    p.add_argument("--split", default=None)
    p.add_argument("--profile", default="", choices=["", *sorted(PROFILES)],
                   help="start the method's config and the trainer's options from a benchmark profile's plan for "
                        "it and --dataset (lmkcore.profiles.method_config, train_config); options given here and "
                        "name=value fields override them")
    p.add_argument("--in_memory", action="store_true",
                   help="read the whole training set into memory first (with num_workers workers), then train "
                        "from it in the main process: on a GPU the workers no longer set the step rate")
    p.add_argument("--config", default="",
                   help="a YAML file of method and trainer fields (lmkcore.config_file); precedence: command line > "
                        "this file > --profile > the dataclasses' defaults")
    for f in dataclasses.fields(TrainConfig):  # None: not given (so a --config file's value stands)
        p.add_argument(f"--{f.name}", type=_parse_bool if f.type in (bool, "bool") else type(f.default), default=None,
                       help=f"(default: {f.default!r})")
    import sys

    from . import config_file

    # the trainer's options; everything else is the method's fields (config_file.parse_overrides reads them)
    a, method_args = p.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    try:
        cls = method_class(a.method)
    except (KeyError, ImportError, AttributeError) as e:
        raise SystemExit(f"--method {a.method!r}: {e}") from e

    given = {f.name: getattr(a, f.name) for f in dataclasses.fields(TrainConfig) if getattr(a, f.name) is not None}
    dataset = given.get("dataset", TrainConfig.dataset)
    plan_method = method_config(a.profile, cls.name, dataset) if a.profile else {}
    plan_train = train_config(a.profile, cls.name, dataset) if a.profile else {}
    classes = [cls.config_class, TrainConfig]
    try:
        from_file = config_file.load_yaml(a.config) if a.config else {}
        config_file.resolve(classes, a.config or None, {})  # the file's keys and types, errors naming the file
        cli = config_file.parse_overrides(method_args, [cls.config_class])
        # each config over its own plan, as the bench gives them: a name both have (self-training's batch_size,
        # seed) takes each plan's value or its default, unless the file or the command line sets it for both
        fields, cfg = config_file.resolve(classes, None, {**from_file, **given, **cli},
                                          bases=[plan_method, plan_train])
    except (config_file.ConfigError, FileNotFoundError) as e:
        raise SystemExit(f"{e} (the trainer's own options: --help)") from e
    try:
        method = build_method(a.method, dataclasses.asdict(fields), cfg.seed)
    except ValueError as e:  # a field out of its range (the config's __post_init__)
        raise SystemExit(f"--method {a.method}: {e}") from None
    source = a.data or getattr(method.config, "dataset_path", None) or "procedural"
    data = method.training_data(open_dataset(source, split=a.split, resolution=method_resolution(method)))
    if a.in_memory:
        from .data import InMemory

        data, cfg.num_workers = InMemory(data, num_workers=cfg.num_workers), 0
    results = run_recipe(method, data, cfg)
    if int(os.environ.get("RANK", 0)) == 0:
        for result in results:  # one line per stage; the last is the finished method's
            print(json.dumps({"run_dir": str(result.run_dir), **result.summary}))
    if dist.is_initialized():  # every rank done (rank 0's printing too) before any tears its connections down
        dist.barrier()
        dist.destroy_process_group()
    return results


if __name__ == "__main__":
    main()
