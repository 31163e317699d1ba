"""Benchmark profiles: which data sets, resolutions and schedules `python -m lmkcore.bench` runs, and per method
what differs from that method's config dataclass (its defaults are the workbook's recipe, written once, there).

    smoke  procedural figures only, 32 px, tiny networks, a few steps: seconds (tests run it)
    cpu    MTFL (80 px native) K = 4, 8, 10 and LSPET (64 px) K = 10, 16, AutoLink compact
           config: 2 h 10 min to 2 h 30 min on 2 CPU cores (the MTFL runs are capped at 29 min each, LSPET at 25)
    paper  the papers' schedule: 128 px, batch 64, 20,000 steps, the paper architecture, lr 1e-4
           constant, sklr 512, its initialisation and edge thickness, VGG-16 perceptual loss when its
           weights are in the torch cache (else pyramid)

A profile has two axes. `DataPlan`s (one per data set) say how a data set is prepared, trained on (steps, a
wall-clock cap) and scored. `MethodPlan`s (one per method, keyed by the method's registered name) say only
what differs from the method's config dataclass: config fields on every data set, and per data set
(`RunPlan`) the K of its runs, further config and trainer fields, and steps or a cap of its own. A method
without a plan in a profile runs with its dataclass defaults (one run per data set at its own `n_parts`).
A config value that depends on the machine is a function, called when the profile is read (`get`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from .methods.selftrain import PAPER as SELFTRAIN_PAPER


@dataclass(frozen=True)
class DataPlan:
    """One data set of a profile: how it is prepared, trained on and evaluated (by every method)."""

    name: str  # procedural | mtfl | lspet (run names, --only)
    resolution: int  # store resolution (and the network's unless model_resolution is set)
    steps: int  # optimiser steps per run (a method's RunPlan may set its own)
    max_minutes: float = 0.0  # wall-clock cap per run (0 = none); the run stops with a checkpoint
    source: str = ""  # folder under the data root; "" = procedural (needs no data)
    prepare: bool = True  # run 01_prepare_data; False: procedural figures generated on the fly
    n_images: int = 0  # procedural store size for 01 (0 = the notebook's default)
    train_split: str = ""  # "" = the default (train for procedural, fit for stores)
    fit_split: str = "fit"  # the regressor's fit set
    test_split: str = "val"  # scored split of the store when there is no separate test set
    test_listing: str = ""  # a separate test listing beside the training one (MTFL: testing.txt), if present
    test_source: str = ""  # a separate test folder under the data root (or bench --test-source), if present
    n_fit: int = 0  # fit-set size for the headline numbers (0 = all)
    max_test: int = 0  # score only the first N test images (0 = all)
    model_resolution: int = 0  # network input size (0: the store's resolution); images are resized to it


@dataclass(frozen=True)
class RunPlan:
    """A method's runs on one data set: their K and what differs there from the method's plan."""

    ks: tuple[int, ...] = ()  # one run per K (`n_parts`); empty: one run at the config's own n_parts
    config: dict = field(default_factory=dict)  # config fields over the method plan's
    train: dict = field(default_factory=dict)  # trainer fields (lmkcore.train.TrainConfig) over the method plan's
    steps: int = 0  # optimiser steps per run (0: the data plan's)
    max_minutes: float = -1.0  # wall-clock cap per run (-1: the data plan's; 0: none)


@dataclass(frozen=True)
class MethodPlan:
    """One method of a profile: its differences from its config dataclass's defaults, and how it is trained."""

    config: dict = field(default_factory=dict)  # config fields on every data set, over the dataclass defaults
    datasets: dict[str, RunPlan] = field(default_factory=dict)  # data set name -> its runs
    train: dict = field(default_factory=dict)  # trainer fields over the profile's
    notebook: str = ""  # notebooks/<stem>.ipynb trains it under papermill; "": the package trains it (lmkcore.train)

    def runs(self, dataset: str) -> RunPlan:
        return self.datasets.get(dataset, RunPlan())


@dataclass(frozen=True)
class Profile:
    name: str
    datasets: tuple[DataPlan, ...]
    methods: dict[str, MethodPlan] = field(default_factory=dict)  # method name -> plan; bench runs these by default
    train: dict = field(default_factory=dict)  # batch_size, num_workers, seed: every method's runs
    few_shot: str = "1%,50,10"  # further fit-set sizes scored by 07 (comma-separated)
    head: dict = field(default_factory=dict)  # the supervised head's training (lmkcore.eval.HeadConfig fields)
    eval_batch: int = 64
    seed: int = 0

    def plan(self, name: str) -> DataPlan:
        for p in self.datasets:
            if p.name == name:
                return p
        raise KeyError(f"profile {self.name!r} has no data set {name!r}; it has {[p.name for p in self.datasets]}")

    def method(self, name: str) -> MethodPlan:
        """The plan of method `name`; a method the profile does not name runs with its dataclass defaults."""
        return self.methods.get(name, MethodPlan())


def method_config(profile: str | Profile, method: str, dataset: str = "") -> dict:
    """The config fields profile `profile` sets for `method` (its differences from the dataclass defaults) on
    data set `dataset` ("" or a data set the profile's plan does not name: the fields of every data set).

    `python -m lmkcore.train --method M --profile P` starts from these; K and the networks' resolution are the
    bench's run axis and are not included."""
    plan = (get(profile) if isinstance(profile, str) else profile).method(method)
    return _resolved({**plan.config, **plan.runs(dataset).config})


def run_axis(plan: DataPlan, config_class: type, k: int | None = None) -> dict:
    """The bench's run axis, for the fields `config_class` has: K (`n_parts`, where given) and the networks'
    resolution (the plan's `model_resolution`, else its store's). Choice runs take it too, so that a choice is
    made on the recipe the bench trains."""
    names = {f.name for f in fields(config_class)}
    axis = {"n_parts": k, "resolution": plan.model_resolution or plan.resolution}
    return {n: v for n, v in axis.items() if n in names and v is not None}


def train_config(profile: str | Profile, method: str, dataset: str = "") -> dict:
    """The trainer fields (`lmkcore.train.TrainConfig`) profile `profile` sets for `method`'s runs on `dataset`:
    the profile's, then the method plan's, then its runs' on that data set (batch size, workers, seed, AMP).

    The bench trains with these; `python -m lmkcore.train --method M --profile P` starts from them too."""
    p = get(profile) if isinstance(profile, str) else profile
    plan = p.method(method)
    return {**p.train, **plan.train, **plan.runs(dataset).train}


def paper_loss() -> str:
    """'vgg16' when torchvision's VGG-16 weights are in the torch cache (never downloaded), else 'pyramid'."""
    try:
        from .ops.losses import _cached_vgg_weights

        _cached_vgg_weights("vgg16")
        return "vgg16"
    except (FileNotFoundError, ImportError, AttributeError):
        return "pyramid"


AUTOLINK_NOTEBOOK = "02_train_autolink"

# AutoLink: `AutoLinkConfig`'s defaults are the workbook's recipe (the compact network with the compact
# additions, what the cpu profile trains). The paper's objective turns the additions off; `COMPACT` is the
# compact network with the paper's objective (the sweep's `compact` row, the smoke profile's base), and
# `ADDITIONS` / `COMPACT_ADDITIONS` are what the recipe adds to it (the sweep's rows are written with them).
PAPER_OBJECTIVE = dict(equiv=0.0, sep=0.0, prior=0.0, tps=0.0, decode_scale=1.0)
COMPACT = dict(PAPER_OBJECTIVE, dec_depth=4, lr=5e-4)
ADDITIONS = dict(equiv=50.0, sep=1.0, prior=0.3, decode_scale=0.5)
COMPACT_ADDITIONS = dict(ADDITIONS, dec_depth=3, lr=1.5e-3, tps=0.08)

SMOKE = Profile(
    "smoke",
    (DataPlan("procedural", 32, steps=3, prepare=False, n_fit=60, max_test=30),),
    methods={"autolink": MethodPlan(
        config=dict(COMPACT, det_base=8, det_down=2, det_up=1, dec_base=8, dec_depth=2, block=8,
                    schedule="constant", loss="pyramid"),
        datasets={"procedural": RunPlan(ks=(4,))}, notebook=AUTOLINK_NOTEBOOK)},
    train=dict(batch_size=8, num_workers=0, seed=0),
    head=dict(max_steps=60, eval_every=20),  # seconds, not minutes, per head
)

# self-training's cpu schedule: Step-1 rounds of 1,000 + 500 steps, Step 2 3,000 with merging from 1,500 every 300
SELFTRAIN_CPU_SCHEDULE = dict(round1_steps=1000, round_steps=500, step2_steps=3000, merge_start=1500, merge_every=300)

# AutoLink's cpu runs: the AutoLinkConfig defaults (det_base 32, det_down 3, det_up 1, dec_base 16,
# pyramid loss, cosine schedule, and the compact additions `COMPACT_ADDITIONS`)
# (reports/autolink_choices: `equiv-sep` makes keypoints consistent across images; lr 1.5e-3
# with the networks at 80 px, the `cpu` row, makes them more precise; equivariance crops bent by a
# thin-plate spline, the `cpu-tps-0.08` row: 9.13 against the `cpu` row's 11.09 % IOD at 1,800 steps).
# MTFL also recolours one of the two crops (`jitter` 0.3: 7.56 and 7.65 % IOD at 4,500 steps, seeds 0
# and 1, rows `cpu-tps-0.08-jitter-0.3`, against 8.01 % without it, the bench row in git at 85d34ca).
# MTFL is stored, seen by the networks and scored at its native 80 px (repainted at 40 px); LSPET at
# 64 px. MTFL: three runs (K = 10, the target, first) of up to 4,500 steps of 32, each capped
# at 29 min (the "under 30 minutes"): 4,500 steps fit at 0.38 s per step or faster (2 cores,
# 80 px); on a slower machine the trainer ends the cosine schedule where the cap will cut it
# (`TrainConfig.max_minutes`), so a run anneals in fewer steps (the reports record the steps each run had).
# MTFL trains with bf16 autocast where the CPU has it (`cpu_amp`; the keypoint read-out stays fp32):
# more steps fit the cap on a slow machine (0.46-0.50 against 0.60-0.63 s per step in fp32, README).
# LSPET: two runs of 3,200 steps (0.40–0.44 s per step at 64 px), capped at 25 min; + evaluation
# (train times: reports/benchmarks.md).
CPU = Profile(
    "cpu",
    (DataPlan("mtfl", 80, steps=4500, max_minutes=29.0, source="mtfl", test_listing="testing.txt"),
     DataPlan("lspet", 64, steps=3200, max_minutes=25.0, source="lspet")),
    methods={"autolink": MethodPlan(
        config={},  # the recipe is AutoLinkConfig's defaults
        datasets={"mtfl": RunPlan(ks=(10, 8, 4), config=dict(jitter=0.3), train=dict(cpu_amp=True)),
                  "lspet": RunPlan(ks=(10, 16))},
        notebook=AUTOLINK_NOTEBOOK),
        # part-based disentangling: PartBasedConfig's defaults are its compact recipe (64 px, batch `bn` 8 of
        # two warps each); trained by the package (lmkcore.train), capped like AutoLink's runs. LSPET trains the
        # paper's objective (no `prior`, no `sep`: 24.07 against 23.15 PCK@0.2 on held-out fit people at 1,200
        # steps, reports/partbased_choices), in bf16 where the CPU has it (`cpu_amp`: 0.20 against 0.23 s per
        # step), 6,000 steps in the cap
        "partbased": MethodPlan(
            datasets={"mtfl": RunPlan(ks=(10, 16), steps=5000, max_minutes=29.0),  # 10 beside the others, 16 the card's
                      "lspet": RunPlan(ks=(16,), config=dict(prior=0.0, sep=0.0), train=dict(cpu_amp=True),
                                       steps=6000, max_minutes=25.0)},
            train=dict(batch_size=8)),
        # the methods below have compact recipes as their dataclass defaults; trained by the package
        # fgbg: still images, so warped pairs (use_temporal needs clips); K and size are its own fields. Batch 8
        # pairs, as the part-based recipe's bn 8: at 16 a step costs ~1 s on 2 cores and 1,677 steps fit the cap.
        # L1 pixel reconstruction (as the part-based recipe's): 16.78 against the pyramid's 19.69 % IOD on
        # held-out fit faces at 1,000 steps (reports/fgbg_choices), and a step costs less. bf16 autocast where the
        # CPU has it (`cpu_amp`, as AutoLink's MTFL runs): 0.33 against 0.42 s per step (80 steps, reports/fgbg).
        # LSPET without the recipe's covariance equivariance: 23.24 against 22.65 PCK@0.2 with it on held-out fit
        # people at 1,000 steps (reports/fgbg_choices). MTFL anneals over the last fifth of the steps that fit the
        # cap (`schedule="decay"`): 13.40 against 13.59 % IOD on held-out fit faces at 2,000 steps, 14.18 against
        # 14.41 at 1,000 (reports/fgbg_choices); on MTFL val 12.27, two constant-rate runs 12.13 and 12.76
        # (reports/fgbg). And at twice the card's rate, which the anneal brings down at the end: 13.14 against
        # 13.40 on held-out fit faces at 2,000 steps (reports/fgbg_choices); on MTFL val 12.40 in 3,615 steps on a
        # slower machine (reports/fgbg). MTFL reconstructs with the part-based card's loss, squared error under
        # discs around the landmarks (`rec_loss="pixel"`): 12.55 against L1's 13.14 on held-out fit faces at 2,000
        # steps (reports/fgbg_choices); on MTFL val 11.32 in 4,190 steps (reports/fgbg)
        "fgbg": MethodPlan(
            config=dict(use_temporal=False, use_warped=True, rec_loss="l1"),
            datasets={"mtfl": RunPlan(config=dict(n_landmarks=10, img_size=64, schedule="decay", lr=2e-3,
                                                  rec_loss="pixel"), steps=5000, max_minutes=29.0),
                      "lspet": RunPlan(config=dict(n_landmarks=16, img_size=64, c_precision_trans=0.0), steps=4000,
                                       max_minutes=25.0)},
            train=dict(batch_size=8, cpu_amp=True)),
        # selftrain: the recipe's schedule is the procedural one (3 minutes of training); on MTFL the bootstrap
        # takes ~7.5 min, so the budget holds six times the training (SELFTRAIN_CPU_SCHEDULE). MTFL uses the paper's
        # 100 clusters: 14.14 against 17.74 % IOD with 24 on held-out fit faces (reports/selftrain_choices); 19.2 min
        # in all (66.2 on a slower machine, reports/selftrain). LSPET follows the
        # same rule, the paper's count for bodies (250) and MTFL's schedule: 24.52 against 21.94 PCK@0.2 with 24
        # clusters and the procedural schedule, 20.1 min in all; with the card's read-out 25.08 in 21.8 min
        # (reports/selftrain). MTFL keeps only points in the image's central 50 % (box_margin -0.25; MTFL's crops
        # hold hair and background around the face, the paper crops to the face box): on held-out fit faces backward
        # 20.46 against 36.28 % IOD, forward 16.46 against 14.14 (reports/selftrain_choices); on val 30.99 / 16.64
        # against 35.67 / 17.53, 23.8 min (reports/selftrain). Step 1 takes 32 pairs per step on MTFL, as the choice
        # runs did (the profile's batch reached them through `lmkcore.train`, not the bench's runs, which had 8): on
        # val 15.20 / backward 20.61 against 16.64 / 30.99, its rounds now improve the labels; 39.3 min
        # (reports/selftrain). LSPET's Step 1 takes 32 pairs too, one recipe for both data sets: PCK@0.2 25.74 against
        # 25.08, 35.8 min (reports/selftrain)
        "selftrain": MethodPlan(datasets={
            "mtfl": RunPlan(max_minutes=0.0, config=dict(n_clusters=100, box_margin=-0.25, batch_size=32,
                                                          **SELFTRAIN_CPU_SCHEDULE)),
            "lspet": RunPlan(max_minutes=0.0, config=dict(n_clusters=250, batch_size=32, **SELFTRAIN_CPU_SCHEDULE))}),
        # contrastive: the head reads the 64-d projection (the ICCV version's few-shot features), 500 steps on the
        # frozen backbone (~2 min): on held-out fit faces, heads of 17.17 / 22.60 / 24.84 % IOD with all / 50 / 10
        # faces against 17.39 / 26.44 / 34.57 on the hypercolumns (reports/contrastive_choices)
        "contrastive": MethodPlan(
            config=dict(use_projection=True),
            datasets={"mtfl": RunPlan(ks=(10,), steps=3000, max_minutes=30.0),
                      "lspet": RunPlan(ks=(16,), steps=3000, max_minutes=30.0)},
            train=dict(batch_size=32))},
    train=dict(batch_size=32, num_workers=2, seed=0),
    # the supervised head (contrastive): 600 steps at most per fit size, early stopping after 4 held-out checks
    # without improvement; at the default 2,000 its four fits (full, 1 %, 50, 10) take ~20 min on 2 cores
    head=dict(max_steps=600, patience=4),
)

PAPER = Profile(
    "paper",
    (DataPlan("mtfl", 128, steps=20_000, source="mtfl", test_listing="testing.txt"),
     DataPlan("lspet", 128, steps=20_000, source="lspet")),
    methods={"autolink": MethodPlan(
        config=dict(PAPER_OBJECTIVE, det_base=64, det_down=4, det_up=2, dec_base=64, dec_depth=4, lr=1e-4,
                    schedule="constant",
                    sklr=512.0, graph_init=-4.0, head_init=1.0, thick=2.5e-3,  # the seed's README (CelebA-wild)
                    loss=paper_loss),  # vgg16, or pyramid when the VGG-16 weights are absent (resolved by `get`)
        datasets={"mtfl": RunPlan(ks=(4, 8, 10)), "lspet": RunPlan(ks=(10, 16))},
        notebook=AUTOLINK_NOTEBOOK),
        # the card's sizes at 128 px (reports/partbased/README.md): a 4-level hourglass of 256 channels, 64-d
        # part appearance, batch 16 of two warps each, Adam 1e-3
        "partbased": MethodPlan(
            config=dict(in_dim=128, reconstr_dim=128, map_dim=64, stem=64, channels=256, depth=4, app_depth=1,
                        n_features=64, dropout=0.2, gen_base=64, gen_max=512, bn=16, lr=1e-3, prior=0.0, sep=0.0),
            datasets={"mtfl": RunPlan(ks=(10,)), "lspet": RunPlan(ks=(16,))},
            train=dict(batch_size=16)),
        "fgbg": MethodPlan(
            config=dict(use_temporal=False, use_warped=True, img_size=128, stem=64, channels=256, depth=4, n_filters=32,
                        gen_base=64, gen_max=512, mask_base=32, mask_depth=3, bg_base=32, bg_depth=3, lr=1e-4,
                        vgg_lambda=5.0, rec_loss="auto", prior=0.0, sep=0.0, c_trans=0.0, c_precision_trans=0.0),
            datasets={"mtfl": RunPlan(config=dict(n_landmarks=10)), "lspet": RunPlan(config=dict(n_landmarks=30))},
            train=dict(batch_size=16)),
        "selftrain": MethodPlan(config=SELFTRAIN_PAPER, datasets={"lspet": RunPlan(config=dict(n_clusters=250))}),
        "contrastive": MethodPlan(
            config=dict(model="resnet50", image_size=136, image_crop=20, learning_rate=0.03, adam=False, cosine=True,
                        nce_k=4096, nce_m=0.999, nce_t=0.07, weight_decay=1e-4, tps=0.0, hypercol_size=48,
                        bn_splits=4),
            datasets={"mtfl": RunPlan(ks=(10,), config=dict(image_size=96, image_crop=0)), "lspet": RunPlan(ks=(16,))},
            train=dict(batch_size=256))},
    train=dict(batch_size=64, num_workers=4, seed=0),
)

PROFILES = {p.name: p for p in (SMOKE, CPU, PAPER)}


def _resolved(values: dict) -> dict:
    return {k: v() if callable(v) else v for k, v in values.items()}


def get(name: str) -> Profile:
    """A profile by name, with machine-dependent config values resolved (functions in a plan are called)."""
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; known: {sorted(PROFILES)}")
    p = PROFILES[name]
    return replace(p, methods={m: replace(plan, config=_resolved(plan.config), datasets={
        d: replace(r, config=_resolved(r.config)) for d, r in plan.datasets.items()}) for m, plan in p.methods.items()})

