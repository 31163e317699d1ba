"""Does AutoLink's decoder use the edge map? An oracle check on data with a skeleton.

    python -m lmkcore.experiments.edge_oracle --data procedural --steps 800 [--name NAME] [field=value ...]

AutoLink's keypoints learn only through the decoder: if it repaints no better from edges in the
right place than from edges in the wrong place, the reconstruction loss gives the keypoints no
signal. Here the decoder of an `AutoLinkConfig` (same sizes, masking, loss and optimiser) is trained
alone, on edge maps drawn from the annotated skeleton instead of discovered keypoints, three times
from the same initialisation, batches and masks:

    skeleton  each image's own skeleton (weight 1 on skeleton edges between visible joints, 0 elsewhere)
    shuffled  the skeleton of another image of the batch (right kind of drawing, wrong place)
    none      no edges (the decoder sees the masked image alone)

A decoder that uses the edges scores skeleton < none < shuffled. Rows (train loss over the last
tenth of the steps, test loss, and the L1 error of hidden pixels near the skeleton) go to
`reports/<dir>/edge_oracle.json` under `--name` and to a table `edge_oracle.md`.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import Tensor

from ..methods.autolink import AutoLink, AutoLinkConfig
from ..ops import block_mask, pair_index
from ..ops.edges import segment_distance2
from ..ops.coords import grid

VARIANTS = ("skeleton", "shuffled", "none")
NEAR = 0.04  # "near the skeleton": within this distance (normalised units) of a skeleton segment


def skeleton_weights(skeleton, visible: Tensor) -> Tensor:
    """`(B, K(K-1)/2)` pair weights in `ops.pair_index` order: 1 for a skeleton edge whose two joints
    are visible in that image, 0 otherwise."""
    k = visible.shape[1]
    i, j = pair_index(k)
    on = torch.zeros(k, k, dtype=torch.bool)
    for a, b in skeleton:
        on[a, b] = on[b, a] = True
    return (on[i, j][None] & visible[:, i] & visible[:, j]).float()


def _load(data, n: int) -> dict[str, Tensor]:
    """The first `n` items of a data set, stacked (images, keypoints, visible)."""
    items = [data[i] for i in range(min(n, len(data)))]
    return {k: torch.stack([it[k] for it in items]) for k in ("image", "keypoints", "visible")}


def _near_skeleton(kp: Tensor, weights: Tensor, size: int) -> Tensor:
    """`(B, H, W)` True within `NEAR` of a drawn skeleton segment."""
    i, j = pair_index(kp.shape[1])
    d2 = segment_distance2(grid(size, size).reshape(-1, 2), kp[:, i], kp[:, j])  # (B, E, HW)
    d2 = torch.where(weights[..., None] > 0, d2, torch.inf).amin(1)
    return (d2 < NEAR**2).reshape(-1, size, size)


def train_decoder(config: AutoLinkConfig, train: dict, test: dict, skeleton, variant: str, *,
                  steps: int, batch_size: int = 32, seed: int = 0) -> dict:
    """Train `config`'s decoder alone on oracle edge maps of one `variant`; losses and errors."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    torch.manual_seed(seed)
    method = AutoLink(replace(config, n_parts=train["keypoints"].shape[1]))
    opt, sched = method.optimizers(steps)  # only the decoder (and alpha) get gradients: the edges are the oracle's
    g = torch.Generator().manual_seed(seed)

    def repaint(images, kp, visible, gen):
        weights = skeleton_weights(skeleton, visible)
        if variant == "shuffled":  # another image's skeleton
            kp, weights = kp.roll(1, 0), weights.roll(1, 0)
        elif variant == "none":
            weights = torch.zeros_like(weights)
        _, target = method.inputs(images)
        mask = block_mask(target.shape[0], target.shape[-2:], config.block, config.missing, generator=gen)
        recon, _ = method.reconstruct(target, kp, mask, weights)
        return recon, target, mask, weights, kp

    method.train()
    losses, t0 = [], time.time()
    for _ in range(steps):
        idx = torch.randint(0, len(train["image"]), (batch_size,), generator=g)
        recon, target, *_ = repaint(train["image"][idx], train["keypoints"][idx], train["visible"][idx], g)
        loss = method.recon(recon, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
    method.eval()
    with torch.no_grad():
        recon, target, mask, weights, kp = repaint(test["image"], test["keypoints"], test["visible"],
                                                   torch.Generator().manual_seed(seed + 1))
        test_loss = method.recon(recon, target).item()
        err = (recon - target).abs().mean(1)  # (B, H, W)
        hidden = mask[:, 0] < 0.5
        # near the image's own skeleton, whatever the variant drew
        near = _near_skeleton(test["keypoints"], skeleton_weights(skeleton, test["visible"]), target.shape[-1])
    tail = losses[-max(1, steps // 10):]
    return {"variant": variant, "train_loss": sum(tail) / len(tail), "test_loss": test_loss,
            "hidden_l1_near_skeleton": err[hidden & near].mean().item(),
            "hidden_l1_elsewhere": err[hidden & ~near].mean().item(), "seconds": time.time() - t0}


def edge_oracle(config: AutoLinkConfig, data: str = "procedural", *, steps: int = 800, batch_size: int = 32,
                n_train: int = 4096, n_test: int = 500, seed: int = 0, train_split: str = "train",
                test_split: str = "val", variants=VARIANTS) -> list[dict]:
    """One row per variant (`train_decoder`), same initialisation, batches and masks."""
    from ..data import open_dataset
    from ..eval.protocol import data_skeleton

    train_data = open_dataset(data, train_split, resolution=config.resolution)
    skeleton = data_skeleton(train_data)
    if not skeleton:
        raise ValueError(f"{data}: its source names no skeleton, so there are no edges to draw")
    train = _load(train_data, n_train)
    test = _load(open_dataset(data, test_split, resolution=config.resolution), n_test)
    return [train_decoder(config, train, test, skeleton, v, steps=steps, batch_size=batch_size, seed=seed)
            for v in variants]


def write(rows: list[dict], name: str, meta: dict, report_dir: Path) -> Path:
    """Add (or replace, saying so) the rows of `name` in edge_oracle.json and rewrite edge_oracle.md."""
    from .oracle_report import overrides_text, write as write_report

    return write_report(
        report_dir / "edge_oracle.json", name, meta, rows,
        ["# Does the decoder use the edge map? (oracle edges from the annotated skeleton)", "",
         "Decoder trained alone; skeleton < none < shuffled means it uses the edges."],
        ["name", "overrides", "steps", "variant", "train loss", "test loss", "hidden L1 near skeleton",
         "hidden L1 elsewhere", "min"],
        lambda n, run, r: [n, overrides_text(run), str(run["steps"]), r["variant"], f"{r['train_loss']:.4f}",
                           f"{r['test_loss']:.4f}", f"{r['hidden_l1_near_skeleton']:.4f}",
                           f"{r['hidden_l1_elsewhere']:.4f}", f"{r['seconds'] / 60:.1f}"])


def main(argv=None) -> None:
    from .oracle_report import add_args, resolve

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="procedural", help="'procedural' or a store whose source has a skeleton")
    p.add_argument("--train-split", default="train")
    p.add_argument("--test-split", default="val")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=4096, help="training images (the first N of the split)")
    p.add_argument("--n-test", type=int, default=500, help="test images (the first N of the split)")
    add_args(p, VARIANTS)
    a = p.parse_args(argv)
    overrides, config, commit, name = resolve(a, VARIANTS)
    rows = edge_oracle(config, a.data, steps=a.steps, batch_size=a.batch_size, n_train=a.n_train, n_test=a.n_test,
                       seed=a.seed, train_split=a.train_split, test_split=a.test_split, variants=a.variants.split(","))
    meta = {"data": a.data, "steps": a.steps, "batch_size": a.batch_size, "n_train": a.n_train, "n_test": a.n_test,
            "seed": a.seed, "overrides": overrides, "config": asdict(config), "commit": commit}
    path = write(rows, name, meta, Path(a.reports))
    for r in rows:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()})
    print(f"-> {path}")


if __name__ == "__main__":
    main()
