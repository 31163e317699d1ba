"""Is the true skeleton a solution AutoLink keeps? An oracle check on data with a skeleton.

    python -m lmkcore.experiments.keypoint_oracle --data procedural-stick --steps 4200 --max-minutes 20 [field=value ...]

When AutoLink misses joints or skeleton edges (on 2 cores its keypoints reach no wrist, README),
either its objective does not value them (then no optimiser will find them), or it does and
training never gets there (a discovery problem). Here the detector starts where discovery should
end: with K = J keypoints, it is first trained with supervision, keypoint k regressed onto joint k
(`pretrain` steps), and the graph is left at its initialisation. Then AutoLink trains as usual, in
one of two variants:

    frozen  the detector stays as the oracle made it; only the graph and the decoder learn
            (does the graph link the true joints when the keypoints are right?)
    free    everything learns, with the config's own loss (do the keypoints stay on the joints,
            arms included, and does the graph link them?)

Each variant reports the keypoints' error to their own joints after pretraining and after
training (arms and the rest apart), and the protocol's numbers and skeleton check
(`eval.evaluate`). Rows go to `reports/<dir>/keypoint_oracle.json` under `--name` and to a
table `keypoint_oracle.md`; the run itself to `runs/` like any training run (resumable).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Subset

from ..methods.autolink import AutoLink, AutoLinkConfig
from ..ops.heatmaps import gaussian_maps, soft_argmax

VARIANTS = ("frozen", "free")
ARMS = ("wrist", "elbow")  # joints whose name holds one of these count as arm joints


def pretrain_detector(method: AutoLink, data, *, steps: int, batch_size: int = 32, lr: float = 1e-3,
                      seed: int = 0) -> list[float]:
    """Supervised start: keypoint k regressed onto joint k (squared distance, visible joints). No flips:
    a mirrored figure would need its left and right labels swapped, and AutoLink's own flips need
    none (its keypoints have no names). Returns the losses."""
    g = torch.Generator().manual_seed(seed)
    params = list(method.detector.parameters()) + ([method.prior] if method.prior is not None else [])
    opt = torch.optim.Adam(params, lr=lr)
    method.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(data), (batch_size,), generator=g).tolist()
        items = [data[i] for i in idx]
        images = torch.stack([it["image"] for it in items])  # (B, 3, H, W)
        joints = torch.stack([it["keypoints"] for it in items])  # (B, J, 2) normalised
        visible = torch.stack([it["visible"] for it in items]).float()  # (B, J)
        heat = method.heatmaps(method.inputs(images)[0])  # (B, J, h, w), each summing to 1
        target = gaussian_maps(joints, *heat.shape[-2:], sigma=2.0 / heat.shape[-1])  # a bump a cell wide
        target = target / target.sum((-2, -1), keepdim=True).clamp_min(1e-12)
        ce = -(target * heat.clamp_min(1e-12).log()).sum((-2, -1))  # (B, J): dense signal, also far from the joint
        err = (soft_argmax(heat) - joints).pow(2).sum(-1)  # (B, J)
        loss = ((ce + err) * visible).sum() / visible.sum().clamp_min(1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def joint_errors(method: AutoLink, data, names: list[str], n: int = 500, batch_size: int = 100) -> dict:
    """Mean distance (normalised units, image side = 2) of keypoint k to joint k on the first `n`
    items: arm joints (`ARMS`), the others, and each joint."""
    method.eval()
    errs = []
    with torch.no_grad():
        for s in range(0, min(n, len(data)), batch_size):
            items = [data[i] for i in range(s, min(s + batch_size, n, len(data)))]
            images = torch.stack([it["image"] for it in items])
            joints = torch.stack([it["keypoints"] for it in items])
            errs.append((method.keypoints(method.inputs(images)[0]) - joints).norm(dim=-1))  # (b, J)
    e = torch.cat(errs).mean(0)  # (J,)
    arm = torch.tensor([any(a in name for a in ARMS) for name in names])
    return {"arms": e[arm].mean().item(), "others": e[~arm].mean().item(),
            "per_joint": {name: round(v, 4) for name, v in zip(names, e.tolist())}}


def keypoint_oracle(config: AutoLinkConfig, variant: str, data: str = "procedural-stick", *, pretrain: int = 800,
                    steps: int = 4200, max_minutes: float = 0.0, batch_size: int = 32, seed: int = 0,
                    out_dir: str = "runs", resume: bool = False, num_workers: int = 2, n_train: int = 0,
                    max_fit: int = 0, max_test: int = 0) -> dict:
    """Pretrain the detector on the joints (`pretrain_detector`), train AutoLink from there in one
    `variant`, evaluate; one row. n_train / max_fit / max_test: the first N images of the training,
    fit and test split (0: all)."""
    from ..data import open_dataset
    from ..train import TrainConfig, train
    from ..eval.protocol import evaluate

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    train_data, fit, test = (_first(open_dataset(data, s, resolution=config.resolution), n, num_workers)
                             for s, n in (("train", n_train), ("fit", max_fit), ("val", max_test)))
    info = train_data.info
    if not info.skeleton:
        raise ValueError(f"{data}: its source names no skeleton, so there is nothing to compare the graph with")
    names = list(info.keypoint_names)
    if variant == "frozen":  # the detector gets no gradient, so its extra terms would only cost time
        config = replace(config, equiv=0.0, sep=0.0)
    torch.manual_seed(seed)
    method = AutoLink(replace(config, n_parts=len(names)))
    run_name = method.run_name(data, config.resolution, steps) + f"_oracle-{variant}"
    t0 = time.time()
    pre = pretrain_detector(method, train_data, steps=pretrain, batch_size=batch_size, seed=seed)
    pre_minutes = (time.time() - t0) / 60
    start = joint_errors(method, test, names)
    if variant == "frozen":
        for p in list(method.detector.parameters()) + ([method.prior] if method.prior is not None else []):
            p.requires_grad_(False)
    result = train(method, train_data, TrainConfig(
        steps=steps, batch_size=batch_size, seed=seed, out_dir=out_dir, run_name=run_name, dataset=data,
        resume=resume, max_minutes=max_minutes, num_workers=0, progress=False, tensorboard=False))
    end = joint_errors(method, test, names)
    r = evaluate(method, fit, test, seed=seed)
    return {"variant": variant, "run": run_name, "pretrain_steps": pretrain,
            "pretrain_loss": sum(pre[-50:]) / max(len(pre[-50:]), 1), "pretrain_minutes": pre_minutes,
            "steps": result.step, "train_minutes": result.summary.get("wall_s", 0) / 60,
            "start_error": start, "end_error": end, "nme": r["metrics"]["nme"], "pck@0.2": r["metrics"].get("pck@0.2"),
            "edge_gain": r["diagnostics"].get("edge_gain"), "skeleton": r["skeleton"],
            "skeleton_identity": _identity_recall(method.graph().detach(), info.skeleton)}


def _first(data, n: int, num_workers: int):
    """The first `n` items of `data` (0: all), read into memory, with the data set's `info`."""
    from ..data import InMemory

    return InMemory(Subset(data, range(min(n, len(data)))) if n else data, num_workers=num_workers)


def _identity_recall(graph: Tensor, skeleton) -> dict:
    """The skeleton check with keypoint k taken as joint k (the oracle's labels, not the regression)."""
    from ..eval.graph import skeleton_recovery

    r = skeleton_recovery(graph.cpu(), torch.arange(graph.shape[0]), skeleton)
    return {"precision": r["precision"], "recall": r["recall"], "edges": r["edges"]}


def write(rows: list[dict], name: str, meta: dict, report_dir: Path) -> Path:
    """Add (or replace, saying so) the rows of `name` in keypoint_oracle.json and rewrite keypoint_oracle.md."""
    from .oracle_report import overrides_text, write as write_report

    pct = lambda d, k: f"{50 * d[k]:.1f}"  # noqa: E731  normalised units (side 2) -> % of the side

    def cells(n: str, run: dict, r: dict) -> list[str]:
        sk, si, e = r["skeleton"], r["skeleton_identity"], len(run["skeleton"])
        return [n, run["data"], overrides_text(run), r["variant"], str(r["pretrain_steps"]), str(r["steps"]),
                f"{pct(r['start_error'], 'arms')} -> {pct(r['end_error'], 'arms')}",
                f"{pct(r['start_error'], 'others')} -> {pct(r['end_error'], 'others')}", f"{r['nme']:.2f}",
                f"{r['edge_gain']:.2f}", f"{round(sk['recall'] * e)}/{e}", f"{round(si['recall'] * e)}/{e}",
                f"{si['precision']:.2f}", run["commit"]]

    return write_report(
        report_dir / "keypoint_oracle.json", name, meta, rows,
        ["# Does AutoLink keep the true skeleton? (detector started on the annotated joints)", "",
         "K = number of joints; keypoint k pretrained onto joint k, graph at its initialisation, then AutoLink "
         "training (frozen: detector fixed; free: everything learns). Errors: mean distance of keypoint k to "
         "joint k, % of the image side. Skeleton: strongest K - 1 edges, keypoints mapped to joints by "
         "regression (the benchmark's check) and by their oracle label."],
        ["name", "data", "overrides", "variant", "pretrain steps", "steps", "arm error start -> end",
         "other error start -> end", "NME % box", "edge_gain", "skeleton recall (regression)",
         "skeleton recall (labels)", "precision (labels)", "commit"],
        cells)


def main(argv=None) -> None:
    from ..data import open_dataset
    from .oracle_report import add_args, resolve

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="procedural-stick", help="a procedural data set or a store whose source has a skeleton")
    p.add_argument("--pretrain", type=int, default=800, help="supervised detector steps")
    p.add_argument("--steps", type=int, default=4200, help="AutoLink steps after it")
    p.add_argument("--max-minutes", type=float, default=0.0, help="wall-clock cap of each AutoLink run (0 = none)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-workers", type=int, default=2, help="workers that read the training set into memory")
    p.add_argument("--n-train", type=int, default=0, help="training images (the first N of the split; 0: all)")
    p.add_argument("--max-fit", type=int, default=0, help="fit images of the regression (the first N; 0: all)")
    p.add_argument("--max-test", type=int, default=0, help="test images scored (the first N; 0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default="runs")
    p.add_argument("--resume", action="store_true", help="continue the AutoLink runs from their last checkpoints")
    add_args(p, VARIANTS)
    a = p.parse_args(argv)
    overrides, config, commit, name = resolve(a, VARIANTS)
    rows = []
    for v in a.variants.split(","):
        rows.append(keypoint_oracle(config, v, a.data, pretrain=a.pretrain, steps=a.steps, max_minutes=a.max_minutes,
                                    batch_size=a.batch_size, seed=a.seed, out_dir=a.out_dir, resume=a.resume,
                                    num_workers=a.num_workers, n_train=a.n_train, max_fit=a.max_fit,
                                    max_test=a.max_test))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "skeleton"}, default=str))
    meta = {"data": a.data, "n_train": a.n_train, "max_fit": a.max_fit, "max_test": a.max_test, "pretrain": a.pretrain,
            "steps": a.steps, "max_minutes": a.max_minutes, "batch_size": a.batch_size, "seed": a.seed,
            "overrides": overrides, "config": asdict(config),
            "skeleton": [list(e) for e in open_dataset(a.data, "fit", resolution=config.resolution).info.skeleton],
            "commit": commit}
    print(f"-> {write(rows, name, meta, Path(a.reports))}")


if __name__ == "__main__":
    main()
