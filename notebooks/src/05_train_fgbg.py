# %% [markdown]
# # 05 · Pose, appearance and background
# Dundar, Shih, Garg, Pottorff, Tao, Catanzaro 2020: landmarks as Gaussians (mean and covariance), appearance
# pooled per landmark from a partner image (another frame of the clip, or a thin-plate-spline warp), a generator
# that paints the FOREGROUND, a foreground mask predicted from the Gaussians alone and a background branch that
# paints the rest from the partner with its own foreground removed: output = mask x foreground + (1 - mask) x
# background. The defaults are a compact recipe for a 2-core CPU at 64 px on the procedural figures, with
# temporal pairs (`data.procedural.ProceduralPairs`: the same figure in two poses over a still background) — the
# video setting in which the mask has something to find (the `paper` sizes: img_size 128, K 30, SPADE generator
# of width 64 (here the part-based U-shaped decoder), batch 16, lr 1e-4, vgg_lambda 5; prior, sep, c_trans and c_precision_trans 0,
# the compact recipe's additions, which the paper does not have).
# Stores of still images (LSPET) train with `use_temporal=False, use_warped=True`; stores of video frames with
# `use_temporal=True` (`data.pairs.FramePairs`). Multi-GPU (`use_DDP`):
# `torchrun --standalone --nproc_per_node N -m lmkcore.train --method fgbg --config FILE ...`.

# %% tags=["parameters"]
dataset_path: str = "procedural"  # "procedural" or the path of a store written by 01_prepare_data
dataset: str = "procedural"  # data set name used in the run name and reports
train_split: str = ""  # empty: train (procedural) or fit (stores)
val_split: str = "val"  # split shown in the figures and used as test set by the evaluation
config_file: str = ""  # optional YAML file of FgBgConfig / TrainConfig fields; the parameters given here override it
n_landmarks: int = 10  # number of landmarks K (paper 30)
use_identity_covariance: bool = False  # Gaussians of fixed covariance fixed_covar I instead of fitted ones
fixed_covar: float = 0.05  # that covariance's diagonal, normalised units (BBC config 0.008)
use_temporal: bool = True  # the partner is another frame (procedural: ProceduralPairs; stores: data.pairs.FramePairs)
use_warped: bool = False  # the partner is a thin-plate-spline warp (still images: the only choice)
use_gan: bool = False  # multi-scale PatchGAN with its own optimiser (needs a trainer that steps a list of optimisers)
use_fg_bg_mask: bool = True  # foreground mask and background branch (the paper's contribution)
use_DDP: bool = False  # recorded only: DDP runs are launched with torchrun from a shell
save_path: str = "runs"  # run directories go here
img_size: int = 64  # input and output size (paper 128)
stem: int = 32  # width of the encoder's first convolution
channels: int = 64  # hourglass width
depth: int = 3  # shape-hourglass depth
app_depth: int = 1  # appearance-hourglass depth
n_filters: int = 32  # appearance vector length (paper 32)
gen_base: int = 16  # generator width at img_size
gen_max: int = 128  # generator's widest stage
feature_levels: int = 3  # coarsest generator sizes that receive the splatted appearance
mask_base: int = 16  # mask U-Net width (paper 32)
mask_depth: int = 2  # mask U-Net depth (paper 3)
bg_base: int = 16  # background U-Net width (paper 32)
bg_depth: int = 2  # background U-Net depth (paper 3)
colour_jitter: str = "dundar"  # colour change of the shape stream's input (ops.colour preset: dundar, none, ...)
tps_preset: str = "dundar"  # warp of the partner with use_warped (ops.tps preset: dundar, lorenz, cheng)
rec_loss: str = "auto"  # auto (vgg19 if its weights are in the torch cache, else pyramid) | pyramid | l1 | vgg19 | vgg16 | pixel (part-based card)
vgg_lambda: float = 1.0  # reconstruction weight (BBC config 5)
gan_lambda: float = 1.0  # generator's adversarial weight
lr: float = 1e-3  # Adam learning rate (paper default; BBC 1e-4)
lr_d: float = 1e-3  # discriminator's learning rate
weight_decay: float = 5e-6  # Adam weight decay
schedule: str = "constant"  # learning rate: constant (the paper) | cosine (to 0 at the run's end; lost on held-out faces) | decay (to 0 over the last fifth; the cpu profile's MTFL plan)
prior: float = 0.3  # compact-recipe addition: landmarks start at K spread spots (learned logits; 0: the paper)
sep: float = 1.0  # compact-recipe addition: weight of a term that keeps landmark means apart (0: the paper)
sep_sigma: float = 0.08  # its range, normalised units
c_trans: float = 5.0  # compact-recipe addition: the part-based mean equivariance between a and its warp (warped pairs only; 0: the paper)
c_precision_trans: float = 1.0  # compact-recipe addition: the part-based covariance equivariance, same premise (0: the paper)
symmetric: bool = False  # also rebuild the partner from a's appearance (the part-based method's pair; lost on held-out faces)
steps: int = 3000  # optimiser steps
batch_size: int = 16  # images per step (paper 16 per GPU)
num_workers: int = 2  # DataLoader workers
cpu_amp: bool = False  # bf16 autocast on a CPU with native bf16 (AVX512-BF16 / AMX)
max_minutes: float = 0.0  # stop early (with a checkpoint) after this many minutes; 0: no limit
seed: int = 0  # random seed
run_name: str = ""  # empty: fgbg_k{K}_{dataset}-{img_size}_{steps}_{flags}_{rec_loss}[_prior.._sep.._trans..][_lr..][_decay]
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
import json
from pathlib import Path

import torch

from lmkcore.config_file import dump_yaml, resolve
from lmkcore.data import PROCEDURAL, open_dataset
from lmkcore.eval.masks import evaluate_masks, reference_masks
from lmkcore.methods.fgbg import FgBgConfig, training_pairs
from lmkcore.train import TrainConfig, build_method, train
from lmkcore.viz.fgbg import factorisation, mask_overlays
from lmkcore.viz.parts import covariance_ellipses, part_swaps
from lmkcore.viz.runs import loss_curve

# %%
# every FgBgConfig field is a parameter above, under the same name; a YAML `config_file` sets what they leave at
# its default (the seed's precedence: parameters > config_file > defaults)
given = {f.name: globals()[f.name] for f in dataclasses.fields(FgBgConfig)}
given = {k: v for k, v in given.items() if v != getattr(FgBgConfig(), k)}
train_given = dict(steps=steps, batch_size=batch_size, num_workers=num_workers, seed=seed, out_dir=save_path,
                   run_name=run_name, dataset=dataset, resume=resume, overwrite=overwrite, max_minutes=max_minutes,
                   ckpt_every=ckpt_every, cpu_amp=cpu_amp)
config, train_config = resolve([FgBgConfig, TrainConfig], config_file or None, {**train_given, **given})
method = build_method("fgbg", dataclasses.asdict(config), seed=train_config.seed)  # seeded before it is built


train_data = training_pairs(open_dataset(config.dataset_path, split=train_split or (
    "train" if config.dataset_path in PROCEDURAL else "fit"), resolution=config.img_size), config)
val_data = open_dataset(config.dataset_path, split=val_split, resolution=config.img_size)
result = train(method, train_data, train_config)
dump_yaml(config, train_config, path=result.run_dir / "opt.yaml")  # the seed's opt.yaml: reloadable with --config
print(result.run_dir, result.summary)

# %% [markdown]
# ## Training curves: the loss, its reconstruction term and the mean of the predicted mask

# %%
figs = Path(report_dir) / result.run_dir.name
figs.mkdir(parents=True, exist_ok=True)
images = torch.stack([val_data[i]["image"] for i in range(16)])
loss_curve(result.history, figs / "loss.png", keys=("loss", "rec", "mask", "sep", "trans"));

# %% [markdown]
# ## Landmarks (Gaussian means) with their covariance ellipses

# %%
covariance_ellipses(method, images, figs / "landmarks.png");

# %% [markdown]
# ## What each branch paints: Gaussians, foreground mask, foreground, background, composite

# %%
factorisation(method, images, figs / "factorisation.png", n=6);

# %% [markdown]
# ## Predicted foreground masks against the reference foreground
# (procedural figures: the true figure; stores of people: capsules along the annotated skeleton)

# %%
if config.use_fg_bg_mask:
    reference, kind = reference_masks(val_data, list(range(16)), config.img_size)
    mask_overlays(method, images, reference, figs / "masks.png");
    masks = evaluate_masks(method, val_data, n=256)
    (figs / "mask_iou.json").write_text(json.dumps(masks, indent=2))
    print(masks)

# %% [markdown]
# ## Pose transfer: the landmarks of the row's image, the appearance and background of the column's

# %%
part_swaps(method, images, figs / "transfer.png", n=6);
print(method.diagnostics(images))

# %% [markdown]
# ## The shared evaluation protocol

# %%
if evaluate:
    from lmkcore.eval import evaluate_checkpoint

    metrics = evaluate_checkpoint(result.run_dir / "last.pt", config.dataset_path, fit_split="fit",
                                  test_split=val_split, report_dir=report_dir)
    from IPython.display import Markdown, display

    from lmkcore.eval import floor_table

    display(Markdown(floor_table(metrics)))  # every number with its unit, beside the mean-shape floor
