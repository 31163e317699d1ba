# %% [markdown]
# # 06 · Contrastive landmarks
# MoCo features trained from scratch, read as hypercolumns, landmarks regressed by a light head
# (Cheng, Su, Maji, arXiv 2006.14787 / ICCV 2021; card `shared/methods/cheng_contrastive_landmarks.md`).
# The recipe: (1) MoCo pre-training of a ResNet from random weights, (2) with `use_projection`, a 1x1
# projection of the hypercolumns trained by a dense, equivariant InfoNCE on TPS-warped pairs (backbone
# frozen), (3) k-means clusters of the features as unsupervised keypoints (inspector, keypoint protocol).
# Then the supervised head (`lmkcore.eval.head`) on the frozen features, on all fit images and few-shot.
# The config defaults are the `cpu` recipe (ResNet-18, 64 px inputs; with `-p steps 3000 -p max_minutes 30`,
# 30 minutes on a 2-core CPU). The paper's
# setting (ResNet-50, 96 px crop from 136, batch 256, SGD lr 0.03, cosine, nce_k 4096, m 0.999) is for GPUs:
# `torchrun --standalone --nproc_per_node N -m lmkcore.train --method contrastive --data STORE ... model=resnet50`.

# %% tags=["parameters"]
data: str = "procedural"  # "procedural" or the path of a store written by 01_prepare_data
dataset: str = "procedural"  # data set name used in the run name and reports
train_split: str = ""  # empty: train (procedural) or fit (stores)
val_split: str = "val"  # split shown in the figures and used as test set by the evaluation
model: str = "resnet18"  # resnet18 | resnet50, random initialisation (paper resnet50)
nce_k: int = 4096  # queue length: negatives per query (paper 4096)
nce_t: float = 0.07  # InfoNCE temperature (paper 0.07)
nce_m: float = 0.99  # key-encoder momentum per step (paper 0.999 over 800 epochs)
cosine: bool = True  # cosine learning-rate decay (else constant)
image_size: int = 72  # views are cropped from the image resized to this (paper 136 faces, 96 birds)
image_crop: int = 4  # then centre-cropped by this many px per side: input image_size - 2 image_crop (paper 20)
learning_rate: float = 0.03  # SGD with momentum 0.9 (paper 0.03), or Adam with `adam`
weight_decay: float = 1e-4  # (paper 1e-4)
adam: bool = False  # Adam instead of SGD
layer: int = 4  # deepest stage read: conv(1 + layer)_x (paper 4: conv2_x .. conv5_x)
use_hypercol: bool = True  # stack conv2_x .. conv(1 + layer)_x (else conv(1 + layer)_x alone)
use_projection: bool = False  # a learned low-dimensional projection of the hypercolumns (ICCV version)
feat_dim: int = 128  # MoCo embedding size
mlp: bool = False  # MoCo v2's MLP head (the seed's code: one linear layer)
bn_splits: int = 4  # ghost-BN groups standing in for per-GPU BN (shuffle-BN on one device; 1: plain BN)
crop_scale: float = 0.2  # smallest area fraction of RandomResizedCrop (paper 0.2)
flip: bool = True  # random horizontal flips
jitter: float = 0.4  # colour jitter strength (paper 0.4)
lighting: float = 0.1  # AlexNet PCA lighting noise sigma (paper 0.1)
tps: float = 0.03  # >0: views also bent by a thin-plate spline (paper 0)
hypercol_size: int = 16  # hypercolumn grid side (0: input / 2, paper 48 at 96 px; 16: a cheap CPU head)
stage: str = "moco"  # first stage trained (the recipe sets it per stage)
proj_dim: int = 64  # projected descriptor size (ICCV: 64 / 128 / 256)
proj_t: float = 0.07  # temperature of the dense InfoNCE
proj_points: int = 256  # positions per image in the dense InfoNCE
proj_tps: float = 0.05  # TPS control-point shift of the warped view
proj_lr: float = 1e-3  # Adam learning rate of the projection
proj_steps: int = 500  # steps of the projection stage
n_parts: int = 10  # K: k-means clusters, one unsupervised keypoint each
kp_temperature: float = 0.05  # softmax temperature of the clusters' cosine-similarity maps
kp_images: int = 1000  # fit images whose features are clustered
kp_points: int = 100000  # feature positions sampled for k-means
steps: int = 1000  # optimiser steps of MoCo pre-training (cpu recipe: 3000 with max_minutes 30)
batch_size: int = 32  # images per step (paper 256)
num_workers: int = 2  # DataLoader workers
max_minutes: float = 0.0  # cap per stage, the cosine schedule ended to fit; 0: no limit (cpu recipe: 30)
seed: int = 0  # random seed
out_dir: str = "runs"  # run directories go here
run_name: str = ""  # empty: contrastive_k{K}_{dataset}-{input}_{steps}_{model}_nk{nce_k}_t{nce_t}_m{nce_m}_l{layer}...
ckpt_every: int = 250  # steps between checkpoints (a resumed run starts from the last) and model snapshots
resume: bool = False  # continue each stage from its last checkpoint
overwrite: bool = False  # start afresh even if the runs exist
evaluate: bool = True  # supervised head (full and few-shot) and keypoint protocol at the end
few_shot: str = "1,5,10,20,50"  # fit-set sizes of the few-shot head curve (comma-separated)
head_steps: int = 2000  # head optimiser steps at most (early stopping on held-out fit images)
head_fit: int = 1000  # fit images of the full head (0: all; their features are held in memory)
TPS_aug: bool = True  # few-shot heads train on thin-plate-spline warps of their images too (the seed's --TPS_aug)
repeat: int = 1000  # a few-shot set is tiled to about this many samples (the seed's --repeat: ~1,000 per epoch)
report_dir: str = "reports"  # figures and metrics go to report_dir/<run>/

# %%
from lmkcore.params import checked

globals().update(checked(globals()))  # a misspelled name, a wrong type or a bad boolean: an error naming it

# %%
import dataclasses
from pathlib import Path

import torch

from lmkcore.data import PROCEDURAL, open_dataset
from lmkcore.methods.contrastive import ContrastiveConfig
from lmkcore.train import TrainConfig, build_method, run_recipe
from lmkcore.viz.features import component_grid, feature_pca_grid, few_shot_curve, landmark_grid
from lmkcore.viz.runs import keypoint_grid, loss_curve

# %%
# every ContrastiveConfig field is a parameter above, under the same name
config = ContrastiveConfig(**{f.name: globals()[f.name] for f in dataclasses.fields(ContrastiveConfig)})
method = build_method("contrastive", dataclasses.asdict(config), seed)  # initialised after torch.manual_seed(seed)
train_data = open_dataset(data, split=train_split or ("train" if data in PROCEDURAL else "fit"),
                          resolution=config.resolution)  # image_size: views are cropped from it
val_data = open_dataset(data, split=val_split, resolution=config.resolution)
results = run_recipe(method, train_data, TrainConfig(  # stages moco (, projection) in out_dir/<experiment>/
    steps=steps, batch_size=batch_size, num_workers=num_workers, seed=seed, out_dir=out_dir, run_name=run_name,
    dataset=dataset, resume=resume, overwrite=overwrite, max_minutes=max_minutes, ckpt_every=ckpt_every))
for r in results:
    print(r.run_dir, r.summary)
final = results[-1].run_dir / "last.pt"

# %% [markdown]
# ## Pre-training curves
# `loss` is MoCo's InfoNCE against the queue (it first rises while the queue fills with real keys), `acc` how
# often the positive key beats all `nce_k` negatives.

# %%
figs = Path(report_dir) / results[0].run_dir.parent.name
figs.mkdir(parents=True, exist_ok=True)
loss_curve(results[0].history, figs / "loss.png", keys=("loss", "acc"));
if len(results) > 1:
    loss_curve(results[1].history, figs / "projection_loss.png");

# %% [markdown]
# ## Hypercolumns through a PCA
# One PCA over every position of a batch of validation images: the first three components as RGB (the same
# part should take the same colour in every image), then the first 25 components of a few images (the seed's
# `--vis_PCA`).

# %%
images = torch.stack([val_data[i]["image"] for i in range(16)])
method.eval()
with torch.no_grad():
    feats = method.features(images)
print("features", tuple(feats.shape))
feature_pca_grid(images, feats, figs / "pca_rgb.png", title="features: first 3 principal components as RGB");
component_grid(images, feats, figs / "pca_components.png", n=25, rows=4);

# %% [markdown]
# ## Unsupervised keypoints: k-means clusters of the features
# Keypoint k is the soft-argmax of the similarity to centroid k. Clusters of background, or of parts that
# appear twice (left and right hands), give diffuse or split maps: their keypoints are not meaningful.

# %%
keypoint_grid(method, images, figs / "cluster_keypoints.png", title="k-means cluster keypoints");

# %% [markdown]
# ## Landmark regression: the supervised head on frozen features (full fit set and few-shot)
# The head of card section 5 (`lmkcore.eval.head`): 50 virtual soft-argmax points per landmark and a linear
# map each, early stopping on held-out fit images (never on the test split); few-shot sets also train on warps
# of their images (`TPS_aug`, `repeat`) with the card's few-shot optimiser settings. Then the discovered-keypoint
# protocol on the cluster keypoints, for comparison with the other methods.

# %%
if evaluate:
    from lmkcore.eval import HeadConfig, evaluate_checkpoint

    # reports go to report_dir/<experiment>/<stage>[_head]: evaluate_checkpoint names them by the stage's run
    sizes = [int(s) for s in few_shot.split(",") if s.strip()]
    head = evaluate_checkpoint(final, data, fit_split="fit", test_split=val_split, report_dir=figs,
                               evaluation="head", n_fit=head_fit or None, few_shot=sizes,
                               head=HeadConfig(max_steps=head_steps, TPS_aug=TPS_aug, repeat=repeat))
    from IPython.display import Markdown, display

    from lmkcore.eval import floor_table

    display(Markdown(floor_table(head)))  # the supervised head, every number with its unit, beside the floor
    points = [(head["fit_images"], head["metrics"]["nme"])] + [(f["fit_images"], f["metrics"]["nme"])
                                                             for f in head["few_shot"]]
    print("few-shot nme", points)
    few_shot_curve(points, figs / "few_shot.png", label="head on features");
    ex = head["examples"]
    landmark_grid(torch.stack([val_data[i]["image"] for i in ex["indices"]]), torch.tensor(ex["pred"]),
                  torch.stack([val_data[i]["keypoints"] for i in ex["indices"]]), figs / "regressed.png",
                  title="regressed landmarks (dots) and annotations (squares)");
    kp = evaluate_checkpoint(final, data, fit_split="fit", test_split=val_split, report_dir=figs,
                             evaluation="keypoints")
    display(Markdown(floor_table(kp)))  # the unsupervised cluster keypoints, by the shared regression
