# %% [markdown]
# # 03 · Self-training correspondence
# Generic keypoints clustered into landmark classes, then a detector trained on its own pseudo-labels
# (Mallis, Sanchez, Bell, Tzimiropoulos, NeurIPS 2020; card `mallis_self_training.md`).
#
# 0. **Bootstrap** without downloaded weights: Shi-Tomasi corners (or SIFT) + SIFT descriptors at three zooms,
#    outliers dropped, k-means into `n_clusters` classes, each class at most once per image (Hungarian).
# 1. **Step 1**, `rounds` rounds: a FAN (stem + hourglass) learns a detector and descriptors from pairs of
#    warped views; after each round the labels are re-detected and re-clustered.
# 2. **Step 2**: one heatmap per surviving cluster, masked heatmap regression, channels that fire together
#    merged; keypoints are arg-maxes, the confidence their peak (a landmark counts from 0.2).
#
# The defaults are `SelfTrainConfig`'s, the workbook's recipe: a compact network and schedule that learn on the
# procedural figures in about 4 minutes on 2 CPU cores (`reports/selftrain/README.md`); the paper's values are in
# each comment and in `lmkcore.methods.selftrain.PAPER` (the `paper` benchmark profile).
# Everything goes to `out_dir/<experiment_name>/`: one trainer run per round (`step1_round01`, ...), `step2`,
# and the pseudo-labels of every round (`labels_round00.pt`, ...).

# %% tags=["parameters"]
data: str = "procedural"  # "procedural" or the path of a store written by 01_prepare_data
dataset_name: str = "procedural"  # data set name in run names and reports (seed: CelebA | LS3D | Human3.6)
experiment_name: str = "selftrain"  # one folder for both steps: out_dir/<experiment_name>
train_split: str = ""  # empty: train (procedural) or fit (stores)
val_split: str = "val"  # split shown in the figures and scored by the evaluation
n_images: int = 300  # train on the first n images of the split (0: all; the bootstrap visits each once)
superpoint: str = ""  # path to SuperPoint v1 weights (the paper's bootstrap; not implemented here): empty
detector: str = "corners"  # corners (Shi-Tomasi) | sift (DoG), both with SIFT descriptors
bootstrap_size: int = 128  # images are searched for points at this size (paper: the full image)
zooms: tuple = (1.0, 1.3, 1.6)  # detection zooms (paper x1, x1.3, x1.6)
bootstrap_nms: int = 3  # box-NMS half-size in px at bootstrap_size (paper 6 at 256)
corner_quality: float = 0.01  # corners: min-eigenvalue threshold, share of the image's maximum
desc_size: float = 12.0  # SIFT descriptor patch in px at bootstrap_size
in_box: bool = True  # keep only points inside the object box (faces: the face box)
box_margin: float = 0.1  # the box enlarged by this share of its size on every side (negative: shrunk)
outlier_drop: float = 0.4  # share of descriptors dropped as outliers (paper 0.4)
n_clusters: int = 24  # landmark classes M (paper 100 faces, 250 Human3.6M)
max_points: int = 60  # points per image at most (strongest first)
seed: int = 0  # k-means and training seed
resolution: int = 64  # network input size (paper 256)
stride: int = 2  # maps at resolution / stride (paper 4)
stem: int = 16  # stem width (paper 64)
width: int = 32  # hourglass and head width (paper 256)
depth: int = 3  # hourglass levels (paper 4)
descriptor_dim: int = 32  # descriptor size (paper 256)
rounds: int = 2  # Step-1 rounds (paper 30)
round1_steps: int = 150  # iterations of round 1 (paper 20 000)
round_steps: int = 75  # iterations of each later round (paper ~10 000)
batch_size: int = 8  # Step-1 pairs per step (paper 16)
min_labels: int = 4  # images with fewer pseudo-labels are not trained on (paper 9)
same_image: float = 0.5  # probability that view B is image A itself
margin: float = 0.8  # contrastive margin (paper 0.8)
desc_weight: float = 10.0  # weight of the descriptor loss (paper 10)
max_pairs: int = 3000  # descriptor pairs per sample (paper 3000)
rotate: float = 20.0  # augmentation rotation, +- degrees (paper 40)
zoom: float = 0.2  # augmentation: crop side in [1 - zoom, 1] (paper scale 0.8-1.2)
jitter: float = 0.3  # augmentation: colour factors within 1 +- jitter
lr: float = 1e-3  # RMSprop learning rate (paper 5e-4)
weight_decay: float = 1e-5  # (paper 1e-5)
lr_min: float = 5e-6  # end of each later round's cosine (paper 5e-6)
det_sigma: float = 1.5  # Step-1 detector target: Gaussian of this many map pixels (paper 0: one-hot, too thin here)
detect_threshold: float = 0.1  # re-labelling: detector output above this (paper 0.2)
min_cluster_share: float = 0.05  # Step 2 drops clusters with fewer labels than this share of images (paper 500 of 160k)
step2_steps: int = 500  # Step-2 iterations (paper 80 000)
step2_batch_size: int = 16  # (paper 32 x 2 accumulated)
stamp_sigma: float = 2.0  # Step-2 target: Gaussian of this many map pixels (paper 0.75, too thin for short runs)
step2_milestones: tuple = (0.8,)  # LR x 0.1 at these shares of step2_steps (paper (0.625, 0.8125): 50k, 65k of 80k)
merge_start: int = 250  # first merging after this many Step-2 steps (paper 25 000)
merge_every: int = 100  # then every this many steps (paper: every second epoch; 0: never)
merge_dist: float = 0.045  # peaks closer than this (normalised; paper 5.7 px at 256) fire together
merge_ratio: float = 0.7  # merge above this share of the rarer channel's detections (paper 0.7)
min_detection: float = 0.8  # read out channels whose peak reaches 0.2 in this share of training images, paper 0.8
detection_images: int = 1000  # training images that share is measured on (paper: the 1,000-image regression set)
num_workers: int = 0  # DataLoader workers
threads: int = 1  # torch intra-op threads (0: as is; 1 is fastest for the compact network on a busy CPU)
out_dir: str = "runs"  # experiment folders go here
resume: bool = False  # reuse finished rounds and label files of the experiment
overwrite: bool = False  # start afresh even if the experiment's runs exist
evaluate: bool = True  # score the Step-2 landmarks with the shared protocol
n_fit: int = 1000  # protocol: fit images (0: all)
report_dir: str = "reports"  # figures go to report_dir/<experiment_name>/

# %%
from lmkcore.params import checked

globals().update(checked(globals()))  # a misspelled name, a wrong type or a bad boolean: an error naming it

# %%
import dataclasses
from pathlib import Path

import torch
from torch.utils.data import Subset

from lmkcore.data import PROCEDURAL, open_dataset
from lmkcore.methods.selftrain import SelfTrainConfig, run
from lmkcore.data.pseudo_labels import PseudoLabels
from lmkcore.train import TrainConfig
from lmkcore.viz.clusters import cluster_counts, cluster_gallery, labelled_points, landmarks
from lmkcore.viz.runs import loss_curve

if threads:
    torch.set_num_threads(threads)

# %%
# every SelfTrainConfig field is a parameter above, under the same name, except those the recipe sets per stage
RECIPE_SET = ("stage", "round", "n_parts")
fields = {f.name: globals()[f.name] for f in dataclasses.fields(SelfTrainConfig) if f.name not in RECIPE_SET}
config = SelfTrainConfig(**{**fields, "zooms": tuple(zooms), "step2_milestones": tuple(step2_milestones)})
train_data = open_dataset(data, split=train_split or ("train" if data in PROCEDURAL else "fit"), resolution=resolution)
if n_images:
    train_data = Subset(train_data, range(min(n_images, len(train_data))))
val_data = open_dataset(data, split=val_split, resolution=resolution)
method, out = run(config, train_data, TrainConfig(
    seed=seed, num_workers=num_workers, out_dir=out_dir, resume=resume, overwrite=overwrite, log_every=10))
exp = out["dir"]
figs = Path(report_dir) / experiment_name
figs.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## Step 1: pseudo-labels coloured by cluster (bootstrap, then the last round)
# Cluster ids are not stable across rounds: each round re-clusters from scratch (card section 12).

# %%
images = torch.stack([train_data[i]["image"] for i in range(16)])
labelled_points(images, PseudoLabels.load(exp / "labels_round00.pt"), path=figs / "labels_bootstrap.png",
                title="bootstrap pseudo-labels (corners + SIFT, k-means, Hungarian)");
last = PseudoLabels.load(exp / f"labels_round{rounds:02d}.pt")
labelled_points(images, last, path=figs / "labels_last_round.png", title=f"pseudo-labels after round {rounds}");

# %% [markdown]
# ## Clusters: patches around each cluster's labels, and cluster sizes per round

# %%
cluster_gallery(train_data, last, path=figs / "cluster_gallery.png", clusters=min(n_clusters, 16));
cluster_counts(out["counts"], path=figs / "cluster_counts.png");

# %% [markdown]
# ## Training curves (Step 1: detector and descriptor terms per round; Step 2)

# %%
for r in out["results"]:
    keys = ("loss", "det", "desc") if r.run_dir.name.startswith("step1") else ("loss",)
    loss_curve(r.history, figs / f"loss_{r.run_dir.name}.png", keys=keys);

# %% [markdown]
# ## Step 2: landmarks with their confidences (a varying number per image)

# %%
val_images = torch.stack([val_data[i]["image"] for i in range(16)])
landmarks(method, val_images, path=figs / "landmarks.png");
print(f"{method.config.n_parts} channels after the size filter, {method.n_keypoints} after merging")

# %% [markdown]
# ## The shared evaluation protocol (landmarks below the confidence threshold count as missing where the protocol
# takes confidences)

# %%
if evaluate:
    from lmkcore.eval import evaluate as evaluate_method

    fit_data = open_dataset(data, split="fit", resolution=resolution)
    metrics = evaluate_method(method, fit_data, val_data, n_fit=n_fit or None)
    from IPython.display import Markdown, display

    from lmkcore.eval import floor_table

    display(Markdown(floor_table(metrics)))  # every number with its unit, beside the mean-shape floor
