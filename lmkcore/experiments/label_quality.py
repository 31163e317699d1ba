"""How good are the self-training method's pseudo-labels before a network learns them?

    python -m lmkcore.experiments.label_quality --data data/mtfl-80.h5 --images 2000 --name corners
    python -m lmkcore.experiments.label_quality --data data/mtfl-80.h5 --images 2000 --name sift detector=sift
    python -m lmkcore.experiments.label_quality --data data/lspet-64.h5 --labels RUN/labels_round02.pt --name round2

Step 2 regresses one heatmap per cluster onto the labels (card section 6), so its landmarks are at best as
consistent as the labels it is given. This scores the labels themselves by the shared protocol
(`eval.score`): each cluster is a keypoint, present on the images that carry its label. The labelled
images are split in two halves (every other image), the regressors fit on one and scored on the other.
The backward error says how well the annotations explain where each cluster's label lies (the method's
claim), the forward error how well the labels locate the annotations.

Without `--labels` the bootstrap runs (`data.pseudo_labels.bootstrap`, the `cpu` profile's config for the
data set with the name=value fields over it) on the first `--images` of the fit images that choice studies
train on (`experiments.choices.choice_store`), never on the scored split. With `--labels` (a run's
`labels_roundNN.pt`) the labels are scored against the split they were made on (`--split`, default fit).
Each result goes to `--reports/label_quality/<name>.json`, the table of all of them to
`--reports/label_quality.md`.

`--oracle` asks instead whether the descriptor could name the landmarks at all: SIFT descriptors (each
`desc_size` of the fields, default the config's) taken at the annotated landmarks of the same fit images, and
the share whose nearest descriptor from another image belongs to the same landmark (chance: 1 / landmarks).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import h5py
import torch

from ..data import LandmarkStore
from ..data.pseudo_labels import PseudoLabels, bootstrap
from ..eval import annotations, score
from ..methods.selftrain import SelfTrainConfig
from ..ops.coords import norm_to_pixels
from ..ops.interest import grey_uint8, sift_descriptors
from ..profiles import CPU, method_config
from ..train import parse_fields
from .choices import SPLITS, choice_store

COLUMNS = ("name", "images", "clusters", "labels per image", "clusters on >= 50 % of images", "forward NME %",
           "backward NME %", "kp. spread %", "backward, clusters on >= 50 % %", "minutes")


def label_scores(labels: PseudoLabels, data, *, common: float = 0.5) -> dict:
    """The shared protocol's errors of `labels` on the items of `data` they index, in percent.

    Clusters present on no image of one half are dropped (no regressor can be fit or scored for them).
    `common`: the backward error is also given over the clusters found on at least this share of images,
    the labels a read-out that keeps frequent channels (card section 8) would learn from."""
    pts, present = labels.dense()  # (R, M, 2), (R, M) by "index"
    idx = labels.index
    pts, present = pts[idx], present[idx]  # (N, M, 2) rows of the labelled images
    half = torch.arange(len(idx)) % 2 == 0
    both = present[half].any(0) & present[~half].any(0)  # (M,) clusters scoreable in both halves
    pts, present = pts[:, both], present[:, both]
    ann = annotations(data, idx)
    fit, test = ann.subset(torch.nonzero(half).squeeze(1)), ann.subset(torch.nonzero(~half).squeeze(1))
    r = score(pts[half], fit, pts[~half], test, fit_present=present[half], test_present=present[~half])
    share = present.double().mean(0)  # (M',)
    per = torch.tensor([float("nan") if e is None else e for e in r["per_keypoint_backward"]])
    often = (share >= common) & per.isfinite()
    return {"images": len(idx), "clusters": int(both.sum()), "labels_per_image": float(present.sum(1).double().mean()),
            "common_clusters": int(often.sum()), "forward_nme": r["metrics"]["nme"],
            "backward_nme": r["metrics"]["backward_nme"], "keypoint_spread": r["metrics"]["keypoint_spread"],
            "backward_common": float(per[often].mean()) if often.any() else None}  # percent, as `score`


def descriptor_oracle(data, n_images: int, size: int, desc_size: float) -> float:
    """Share of SIFT descriptors at the visible annotated landmarks of the first `n_images` items of `data`
    (grey image at `size` px, patch `desc_size` px) whose nearest descriptor on another image is of the same
    landmark."""
    desc, landmark, image = [], [], []
    for i in range(n_images):  # one OpenCV call per image
        item = data[i]
        vis = torch.nonzero(item["visible"].bool()).squeeze(1)
        px = norm_to_pixels(item["keypoints"][vis].float(), (size, size))
        desc.append(sift_descriptors(grey_uint8(item["image"], size), px, desc_size))
        landmark.append(vis)
        image.append(torch.full((len(vis),), i))
    desc, landmark, image = torch.cat(desc), torch.cat(landmark), torch.cat(image)
    nearest = torch.empty(len(desc), dtype=torch.long)
    for s in range(0, len(desc), 4096):  # (4096, P) distances at a time
        dist = torch.cdist(desc[s:s + 4096], desc)
        dist[image[s:s + 4096, None] == image[None]] = float("inf")  # neighbours from other images only
        nearest[s:s + 4096] = dist.argmin(1)
    return float((landmark[nearest] == landmark).double().mean()) * 100


def table(folder: Path) -> str:
    """The markdown table of every result in `folder/label_quality/`."""
    rows = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for f in sorted((folder / "label_quality").glob("*.json")):
        if f.name.startswith("oracle_"):
            continue
        r = json.loads(f.read_text())

        def num(key, digits=2):
            return "-" if r.get(key) is None else f"{r[key]:.{digits}f}"
        rows.append(f"| {r['name']} | {r['images']} | {r['clusters']} | {num('labels_per_image', 1)} | "
                    f"{r['common_clusters']} | {num('forward_nme')} | {num('backward_nme')} | "
                    f"{num('keypoint_spread')} | {num('backward_common')} | {num('minutes', 1)} |")
    return "\n".join(rows) + "\n"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a store written by notebook 01")
    ap.add_argument("--name", required=True, help="the row's name")
    ap.add_argument("--images", type=int, default=2000, help="fit images bootstrapped (without --labels)")
    ap.add_argument("--labels", default="", help="score this labels file instead of bootstrapping")
    ap.add_argument("--split", default="fit", help="with --labels: the split they were made on")
    ap.add_argument("--hold", type=int, default=1000, help="fit images the choice store holds out (never bootstrapped)")
    ap.add_argument("--oracle", action="store_true", help="score the descriptor at the annotated landmarks instead")
    ap.add_argument("--reports", default="reports/selftrain_choices")
    ap.add_argument("fields", nargs="*", help="SelfTrainConfig fields as name=value (the bootstrap's)")
    a = ap.parse_args(argv)
    t0 = time.time()
    if a.oracle:
        return oracle_main(a)
    if a.labels:
        if a.fields:
            raise SystemExit("name=value fields change the bootstrap; with --labels nothing is bootstrapped")
        data = LandmarkStore(a.data, split=a.split)
        labels = PseudoLabels.load(a.labels)
    else:
        data, dataset = _fit_images(a)
        labels = bootstrap(torch.utils.data.Subset(data, range(a.images)), _config(dataset, a.fields))
    out = {"name": a.name, **label_scores(labels, data), "minutes": (time.time() - t0) / 60,
           "source": a.labels and Path(a.labels).name, "fields": a.fields}
    folder = Path(a.reports)
    (folder / "label_quality").mkdir(parents=True, exist_ok=True)
    (folder / "label_quality" / f"{a.name}.json").write_text(json.dumps(out, indent=1))
    (folder / "label_quality.md").write_text(table(folder))
    print("RESULT", json.dumps({k: v for k, v in out.items() if not isinstance(v, list)}))
    return out


def _config(dataset: str, fields: list[str]) -> SelfTrainConfig:
    """The cpu profile's config for `dataset` with the name=value `fields` over it."""
    return SelfTrainConfig(**{**method_config(CPU, "selftrain", dataset), **parse_fields(SelfTrainConfig, fields)})


def _fit_images(a) -> tuple[LandmarkStore, str]:
    """The choice store's training split (fit images only) and the data set's name; `--images` checked."""
    with h5py.File(a.data, "r") as f:
        dataset = str(f.attrs["dataset"])
    data = LandmarkStore(choice_store(a.data, a.hold), split=SPLITS[0])
    if not 0 < a.images <= len(data):
        raise SystemExit(f"--images {a.images}: the choice store's {SPLITS[0]} split has {len(data)} images")
    return data, dataset


def oracle_main(a) -> dict:
    """`--oracle`: the nearest-neighbour landmark accuracy for each `desc_size` of the fields."""
    data, dataset = _fit_images(a)
    sizes = [f for f in a.fields if f.startswith("desc_size=")]
    rest = [f for f in a.fields if not f.startswith("desc_size=")]
    out = {"name": a.name, "images": a.images, "landmarks": len(data.info.keypoint_names), "accuracy": {}}
    for f in sizes or [""]:
        c = _config(dataset, rest + ([f] if f else []))
        out["accuracy"][f"{c.desc_size:g}"] = descriptor_oracle(data, a.images, c.bootstrap_size, c.desc_size)
    out["bootstrap_size"] = c.bootstrap_size
    folder = Path(a.reports) / "label_quality"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"oracle_{a.name}.json").write_text(json.dumps(out, indent=1))
    print("RESULT", json.dumps(out))
    return out


if __name__ == "__main__":
    main()
