"""Does a learned graph recover the ground-truth skeleton? (AutoLink, on data with a skeleton.)

Each discovered keypoint is mapped to the annotated joint it follows by regression (the joint
whose position alone best predicts the keypoint through an affine least-squares map);
the graph's strongest K - 1 edges then become joint pairs and are compared with the skeleton.
`eval.protocol.evaluate` runs it for every method with a `graph()` on data with a skeleton.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..ops.coords import norm_to_unit
from .gather import Annotations

GRAPH_FIT = 1000  # fit images (drawn by the seed) on which keypoints are mapped to joints for the skeleton check


def keypoint_joints(fit_kp: Tensor, fit: Annotations) -> Tensor:
    """`(N, K, 2)` keypoints of the fit images -> `(K,)` index of the joint each keypoint follows:
    the joint whose position alone (by an affine least-squares map) best predicts the keypoint."""
    n, k, _ = fit_kp.shape
    vis = fit.visible[..., None]
    mean_gt = torch.where(vis, fit.keypoints, 0.0).sum(0) / vis.sum(0).clamp_min(1)  # (J, 2)
    gt = torch.where(vis, fit.keypoints, mean_gt).double().transpose(0, 1)  # (J, N, 2) in [0, 1]
    x = torch.cat([gt, torch.ones_like(gt[..., :1])], -1)  # (J, N, 3): one joint, with intercept
    y = norm_to_unit(fit_kp.double()).reshape(n, 2 * k)  # (N, 2K)
    eye = 1e-9 * torch.eye(3, dtype=x.dtype)
    w = torch.linalg.solve(x.transpose(1, 2) @ x + eye, x.transpose(1, 2) @ y)  # (J, 3, 2K)
    residual = ((x @ w - y) ** 2).mean(1).reshape(-1, k, 2).sum(-1)  # (J, K)
    return residual.argmin(0)  # (K,)


def skeleton_recovery(graph: Tensor, joints: Tensor, skeleton, n_edges: int | None = None) -> dict:
    """Strongest `n_edges` (default K - 1) edges of `graph` (K, K), mapped to joint pairs by `joints`.

    precision: fraction of those edges that link two joints adjacent in `skeleton`;
    recall: fraction of skeleton edges that some strong edge links.
    """
    k = graph.shape[0]
    i, j = torch.triu_indices(k, k, offset=1)
    order = graph[i, j].argsort(descending=True)[: n_edges or k - 1]
    truth = {frozenset(e) for e in skeleton}
    mapped = [frozenset((int(joints[i[e]]), int(joints[j[e]]))) for e in order]
    hits = [m in truth for m in mapped]
    return {"precision": sum(hits) / len(hits), "recall": len(truth & set(mapped)) / max(len(truth), 1),
            "edges": [sorted(m) for m in mapped], "keypoint_joints": joints.tolist(),
            "skeleton": [sorted(e) for e in truth]}


def skeleton_text(check: dict, names: list[str]) -> str:
    """A skeleton check (`skeleton_recovery`) in words: precision, recall and each strong edge by joint name,
    marked right (an edge of the skeleton) or wrong."""
    truth = {frozenset(e) for e in check.get("skeleton", [])}
    edges = []
    for e in check["edges"]:
        a, b = (names[i] if i < len(names) else str(i) for i in (e + e)[:2])
        mark = "" if not truth else (" (right)" if frozenset(e) in truth else " (wrong)")
        edges.append(f"{a}-{b}{mark}" if a != b else f"{a}-{b} (one joint)")
    return (f"precision {100 * check['precision']:.0f} %, recall {100 * check['recall']:.0f} % of the skeleton's "
            f"edges; strongest edges: " + ", ".join(edges))


def graph_skeleton(method, fit_kp: Tensor, fit: Annotations, skeleton) -> dict:
    """The skeleton check of a method with a learned `graph()`: its keypoints `(N, K, 2)` on the fit
    images mapped to joints (`keypoint_joints`), then its strongest edges scored (`skeleton_recovery`)."""
    return skeleton_recovery(method.graph().detach().cpu(), keypoint_joints(fit_kp, fit), skeleton)


__all__ = ["graph_skeleton", "keypoint_joints", "skeleton_recovery", "skeleton_text"]
