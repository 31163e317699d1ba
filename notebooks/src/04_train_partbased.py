# %% [markdown]
# # 04 · Part-based disentangling of shape and appearance
# Lorenz, Bereska, Milbich, Ommer, CVPR 2019: K part maps (means and covariances: the SHAPE) and per-part
# appearance vectors; an image is rebuilt from the shape of one view and the appearance of another, and the
# parts of two warps of one image must agree in the original frame (equivariance). The defaults are a compact
# recipe for a 2-core CPU at 64 px (the `paper` sizes: in_dim / reconstr_dim 128 or 256, map_dim 64, stem 64,
# channels 256, depth 4, n_features 64, dropout 0.2, gen_base 64, gen_max 512, bn 16, lr 1e-3; and prior 0,
# sep 0: the paper has neither addition).
# Multi-GPU: `torchrun --standalone --nproc_per_node N -m lmkcore.train --method partbased --data STORE ...`.

# %% tags=["parameters"]
data: str = "procedural"  # "procedural" or the path of a store written by 01_prepare_data
dataset: str = "procedural"  # data set name used in the run name and reports
train_split: str = ""  # empty: train (procedural) or fit (stores)
val_split: str = "val"  # split shown in the figures and used as test set by the evaluation
resolution: int = 64  # size the data set delivers (the encoder resizes to in_dim)
n_parts: int = 10  # number of parts K (paper 16)
static: bool = True  # image data: the two views are two warps of one image (False: consecutive items are video frames)
covariance: bool = True  # part heats follow each part's covariance (False: circular heats)
L1: bool = False  # pixel loss |.| instead of squared error
adversarial: bool = False  # patch discriminator with its own optimiser (needs a trainer that steps a list of optimisers)
bn: int = 8  # images per step (the seed's --bn; each seen in two warps); the trainer's batch_size
in_dim: int = 64  # encoder input size (paper 128 or 256)
reconstr_dim: int = 64  # reconstruction size (paper 128 or 256)
map_dim: int = 32  # part-map size (paper 64)
stem: int = 32  # width of the first convolution (paper 64)
channels: int = 64  # hourglass width (paper 256)
depth: int = 3  # shape-hourglass depth (paper 4)
app_depth: int = 1  # appearance-hourglass depth (paper 1)
n_features: int = 32  # appearance vector length (paper 64)
dropout: float = 0.0  # dropout before the stage heads (paper 0.2)
gen_base: int = 16  # generator width at reconstr_dim (paper 64)
gen_max: int = 128  # generator's widest stage (paper 512)
feature_levels: int = 3  # coarsest generator sizes that receive the splatted appearance (paper 3)
L_inv_scal: float = 0.8  # scale of the precision factor of the covariance heats
heat_scale: float = 10.0  # precision of the circular heats (when covariance is off)
tps_scal: float = 0.05  # thin-plate control point shift (normalised units)
rot_scal: float = 0.1  # rotation range of the views, radians
zoom: float = 0.3  # zoom range of the views: crops of side in [1 - zoom, 1]
augm: float = 0.3  # colour change strength of the two colourings
rec_loss: str = "pixel"  # pixel (card: masked L2, or L1) | pyramid (weight-free perceptual) | l1 | vgg16 | vgg19
c_l2: float = 1.0  # reconstruction weight
c_trans: float = 5.0  # mean-equivariance weight
c_precision_trans: float = 0.1  # covariance-equivariance weight
c_g: float = 2e-4  # adversarial weight
patch: float = 0.2  # half side of the adversarial patches (normalised units)
lr: float = 1e-3  # Adam learning rate
lr_d: float = 1e-3  # discriminator's Adam learning rate
schedule: str = "constant"  # learning rate: constant (the card) | cosine (to 0 at the run's end) | decay (to 0 over the last fifth)
prior: float = 0.3  # compact-recipe addition: parts start at K spread spots (learned logits; 0: the paper)
sep: float = 1.0  # compact-recipe addition: weight of a term that keeps part means apart (0: the paper)
sep_sigma: float = 0.08  # its range, normalised units
steps: int = 5000  # optimiser steps
num_workers: int = 2  # DataLoader workers
cpu_amp: bool = False  # bf16 autocast on a CPU with native bf16 (AVX512-BF16 / AMX)
max_minutes: float = 0.0  # stop early (with a checkpoint) after this many minutes; 0: no limit
seed: int = 0  # random seed
out_dir: str = "runs"  # run directories go here
run_name: str = ""  # empty: partbased_k{K}_{dataset}-{in_dim}_{steps}_{flags}_r{reconstr_dim}_bn{bn}_{rec_loss}[_prior.._sep..]
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
from lmkcore.methods.partbased import PartBasedConfig
from lmkcore.train import TrainConfig, build_method, train
from lmkcore.viz.parts import covariance_ellipses, part_maps, part_swaps
from lmkcore.viz.runs import keypoint_grid, loss_curve, reconstructions

# %%
# every PartBasedConfig field is a parameter above, under the same name
config = PartBasedConfig(**{f.name: globals()[f.name] for f in dataclasses.fields(PartBasedConfig)})
method = build_method("partbased", dataclasses.asdict(config), seed)  # initialised after torch.manual_seed(seed)
train_data = open_dataset(data, split=train_split or ("train" if data in PROCEDURAL else "fit"), resolution=resolution)
val_data = open_dataset(data, split=val_split, resolution=resolution)
result = train(method, train_data, TrainConfig(
    steps=steps, batch_size=bn, num_workers=num_workers, seed=seed, out_dir=out_dir, run_name=run_name,
    dataset=dataset, resume=resume, overwrite=overwrite, max_minutes=max_minutes,
    ckpt_every=ckpt_every, cpu_amp=cpu_amp))
print(result.run_dir, result.summary)

# %% [markdown]
# ## Training curves: the loss, and its reconstruction and equivariance terms

# %%
figs = Path(report_dir) / result.run_dir.name
figs.mkdir(parents=True, exist_ok=True)
images = torch.stack([val_data[i]["image"] for i in range(16)])
loss_curve(result.history, figs / "loss.png", keys=("loss", "rec", "trans", "precision_trans", "sep"));

# %% [markdown]
# ## Part maps, keypoints (part means) and part covariances

# %%
part_maps(method, images, figs / "parts.png");
keypoint_grid(method, images, figs / "keypoints.png", title="validation images: keypoints (part means)");
covariance_ellipses(method, images, figs / "covariances.png");

# %% [markdown]
# ## Part swaps: the shape of one image with the appearance of another

# %%
part_swaps(method, images, figs / "swaps.png", n=6);

# %% [markdown]
# ## Reconstructions from each image's own shape and appearance
# (The generator was trained on warped, recoloured views: reconstructions of plain images show what it keeps.)

# %%
reconstructions(method, images, figs / "reconstructions.png");
print(method.diagnostics(images))

# %% [markdown]
# ## The shared evaluation protocol

# %%
if evaluate:
    from lmkcore.eval import evaluate_checkpoint

    metrics = evaluate_checkpoint(result.run_dir / "last.pt", data, fit_split="fit", test_split=val_split,
                                  report_dir=report_dir)
    from IPython.display import Markdown, display

    from lmkcore.eval import floor_table

    display(Markdown(floor_table(metrics)))  # every number with its unit, beside the mean-shape floor
