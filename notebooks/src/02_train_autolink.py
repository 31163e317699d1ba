# %% [markdown]
# # 02 · AutoLink
# Keypoints linked by a learned graph, trained by masked-image inpainting (He, Wandt, Rhodin,
# NeurIPS 2022). The method's parameters default to `AutoLinkConfig`'s, the workbook's recipe (a test keeps them
# equal): the compact network with the compact additions (`equiv` with `tps` crops, `sep`, `prior`,
# `decode_scale`, lr 1.5e-3, 3 U-Net levels), which make keypoints consistent at CPU budgets, on the procedural
# figures; 1,500 steps of 16 (about 6 minutes on 2 cores). The benchmark passes every field of its profile
# (`lmkcore.profiles`: `paper` sets the paper's architecture, objective and schedule).
# Multi-GPU: `torchrun --standalone --nproc_per_node N -m lmkcore.train --method autolink --data STORE ...`.

# %% tags=["parameters"]
data: str = "procedural"  # "procedural" or the path of a store written by 01_prepare_data
dataset: str = "procedural"  # data set name used in the run name and reports
train_split: str = ""  # empty: train (procedural) or fit (stores)
val_split: str = "val"  # split shown in the figures and used as test set by the evaluation
n_parts: int = 10  # number of keypoints K
missing: float = 0.8  # ratio of masked blocks
block: int = 16  # the image is split into block x block patches
thick: float = 5e-3  # edge thickness tau of exp(-d^2 / tau) (normalised units; paper 2.5e-3 at 128 px)
sklr: float = 64.0  # learning-rate multiplier of the edge weights (paper 512 with lr 1e-4)
graph_init: float = -2.0  # initial edge logit, weights start at softplus(graph_init) (paper -4)
head_init: float = 0.1  # scale of the heatmap head's initial weights (paper 1; small starts keypoints alike)
prior: float = 0.3  # >0: width of a learned per-keypoint start map (0: off, the paper; cpu profile 0.3)
equiv: float = 50.0  # >0: weight of an equivariance term between two random crops (0: off, the paper; cpu profile 50)
tps: float = 0.08  # >0: the crops are also bent by a thin-plate spline, control points moved this much (0: similarity crops; cpu profile 0.08)
jitter: float = 0.0  # >0: the second crop is also recoloured, factors within 1 +- this (0: same colours; the cpu profile uses 0.3 on MTFL)
sep: float = 1.0  # >0: weight of a keypoint separation term (0: off, the paper; cpu profile 1)
sep_sigma: float = 0.08  # its range: Gaussian of the distance between two keypoints (normalised units)
resolution: int = 64  # input size of the networks
det_base: int = 32  # detector width (paper 64)
det_down: int = 3  # detector down blocks (paper 4)
det_up: int = 1  # detector up blocks (paper 2)
dec_base: int = 16  # decoder width (paper 64)
dec_depth: int = 3  # decoder levels (paper 4; cpu profile 3)
decode_scale: float = 0.5  # edge map drawn and image repainted at resolution x this (1: the paper; cpu profile 0.5)
norm: str = "batch"  # batch | group | instance normalisation in both networks (paper batch)
loss: str = "pyramid"  # pyramid (weight-free) | l1 | vgg16 | vgg19 (needs local weights)
ssim: float = 1.0  # weight of the pyramid loss's (1 - SSIM) term (0: Laplacian-pyramid and gradient L1 only)
lr: float = 1.5e-3  # AdamW learning rate (paper 1e-4; cpu profile 1.5e-3)
schedule: str = "cosine"  # cosine (with warm-up) | constant (paper) | decay (constant, then to 0 over the last fifth)
warmup: int = 100  # linear warm-up steps of the cosine schedule
weight_decay: float = 1e-3  # AdamW weight decay (paper 1e-3)
flip: bool = True  # random horizontal flips (paper: faces, Taichi, H36M)
steps: int = 1500  # optimiser steps
batch_size: int = 16  # images per step
num_workers: int = 2  # DataLoader workers
cpu_amp: bool = False  # bf16 autocast on a CPU with native bf16 (AVX512-BF16 / AMX): faster steps, less precise keypoints
max_minutes: float = 0.0  # stop early (with a checkpoint) after this many minutes, the cosine schedule ended to fit; 0: no limit
seed: int = 0  # random seed
out_dir: str = "runs"  # run directories go here
run_name: str = ""  # empty: autolink_k{K}_{dataset}-{res}_{steps}_m{missing}_b{block}_t{thick}_sklr{sklr}
ckpt_every: int = 250  # steps between checkpoints (a resumed run starts from the last) and model snapshots
resume: bool = False  # continue the run from its last checkpoint
overwrite: bool = False  # start afresh even if the run exists
evaluate: bool = True  # run the shared evaluation protocol at the end
report_dir: str = "reports"  # figures and metrics go to report_dir/<run>/

# %%
from lmkcore.params import checked

globals().update(checked(globals()))  # a misspelled name, a wrong type or a bad boolean: an error naming it

# %%
import dataclasses
from pathlib import Path

import torch

from lmkcore.data import PROCEDURAL, open_dataset
from lmkcore.methods.autolink import AutoLinkConfig
from lmkcore.train import TrainConfig, build_method, train
from lmkcore.viz.runs import draw_detections, graph_matrix, keypoint_grid, loss_curve, reconstructions

# %%
# every AutoLinkConfig field is a parameter above, under the same name
config = AutoLinkConfig(**{f.name: globals()[f.name] for f in dataclasses.fields(AutoLinkConfig)})
method = build_method("autolink", dataclasses.asdict(config), seed)  # initialised after torch.manual_seed(seed)
train_data = open_dataset(data, split=train_split or ("train" if data in PROCEDURAL else "fit"), resolution=resolution)
val_data = open_dataset(data, split=val_split, resolution=resolution)
result = train(method, train_data, TrainConfig(
    steps=steps, batch_size=batch_size, num_workers=num_workers, seed=seed, out_dir=out_dir, run_name=run_name,
    dataset=dataset, resume=resume, overwrite=overwrite, max_minutes=max_minutes,
    ckpt_every=ckpt_every, cpu_amp=cpu_amp))
print(result.run_dir, result.summary)

# %% [markdown]
# ## Training curve, keypoints and the learned graph

# %%
figs = Path(report_dir) / result.run_dir.name
figs.mkdir(parents=True, exist_ok=True)
images = torch.stack([val_data[i]["image"] for i in range(16)])
loss_curve(result.history, figs / "loss.png");
keypoint_grid(method, images, figs / "keypoints.png", title="validation images: keypoints and strongest K-1 edges");
graph_matrix(method.graph(), figs / "graph.png");

# %% [markdown]
# ## Reconstructions from masked inputs

# %%
reconstructions(method, images, figs / "reconstructions.png");

# %% [markdown]
# ## One-image demo, and detections over a whole set (the seed's `gen_detection`)

# %%
keypoint_grid(method, images[:1], cols=1, title="demo");
n_drawn = draw_detections(method, val_data, figs / "detections", limit=64)
print(f"{n_drawn} detection images in {figs / 'detections'}")

# %% [markdown]
# ## The shared evaluation protocol

# %%
if evaluate:
    from lmkcore.eval import evaluate_checkpoint

    metrics = evaluate_checkpoint(result.run_dir / "last.pt", data, fit_split="fit", test_split=val_split,
                                  report_dir=report_dir)
    from IPython.display import Image, Markdown, display

    from lmkcore.eval import floor_table

    display(Markdown(floor_table(metrics)))  # every number with its unit, beside the mean-shape floor
    display(Image(str(Path(metrics["report"]) / "curves.png")))  # forward and backward cumulative errors

# %% [markdown]
# ## Does the learned graph recover the ground-truth skeleton?
# The evaluation maps keypoints to the joints they follow (by regression) and compares the strongest
# K-1 edges with the skeleton: precision = share of those edges that link adjacent joints, recall =
# share of the skeleton's edges they recover (metrics.json `skeleton`).

# %%
if evaluate and "skeleton" in metrics:
    from IPython.display import Image, display

    from lmkcore.eval.graph import skeleton_text
    from lmkcore.viz.figures import skeleton_check_figure

    print(skeleton_text(metrics["skeleton"], val_data.info.keypoint_names))
    display(Image(str(skeleton_check_figure(metrics["skeleton"], val_data, figs / "skeleton_check.png"))))
