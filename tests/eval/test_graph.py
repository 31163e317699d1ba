import torch

from lmkcore.data import ProceduralFigures
from lmkcore.data.procedural import SKELETON
from lmkcore.eval import evaluate
from lmkcore.eval.graph import keypoint_joints, skeleton_recovery
from lmkcore.eval.gather import annotations


def test_keypoints_that_copy_joints_are_mapped_to_them_and_the_skeleton_is_recovered():
    data = ProceduralFigures(200, 32, seed=1)
    ann = annotations(data)
    follow = torch.tensor([13, 12, 8, 7, 6])  # head top, neck, right shoulder, elbow, wrist
    noise = torch.randn(len(data), 5, 2, generator=torch.Generator().manual_seed(0))
    kp = (ann.keypoints[:, follow] * 2 - 1) * 0.5 + 0.1 + 0.01 * noise  # scaled and shifted copies
    joints = keypoint_joints(kp, ann)
    assert joints.tolist() == follow.tolist()
    g = torch.zeros(5, 5)
    for a, b in [(0, 1), (1, 2), (2, 3), (3, 4)]:  # the arm chain, as a learned graph would have it
        g[a, b] = g[b, a] = 1.0
    g[0, 4] = g[4, 0] = 0.1  # a weak wrong edge, outside the strongest K - 1
    r = skeleton_recovery(g, joints, SKELETON)
    assert r["precision"] == 1.0 and r["recall"] == 4 / len(SKELETON)
    g[0, 4] = g[4, 0] = 2.0  # now a wrong edge is among the strongest
    assert skeleton_recovery(g, joints, SKELETON)["precision"] == 3 / 4


def test_the_protocol_checks_a_learned_graph_against_the_skeleton(tiny_autolink):
    """`evaluate` adds the skeleton check for a method with a graph on data with a skeleton, and only then."""
    fit, test = ProceduralFigures(64, 32, seed=1), ProceduralFigures(16, 32, seed=2)
    r = evaluate(tiny_autolink, fit, test)
    sk = r["skeleton"]
    assert 0 <= sk["precision"] <= 1 and 0 <= sk["recall"] <= 1
    assert len(sk["edges"]) == 3 and len(sk["keypoint_joints"]) == 4  # K - 1 edges, a joint per keypoint
    with torch.no_grad():
        fit_kp = tiny_autolink.keypoints(torch.stack([fit[i]["image"] for i in range(64)]))
        test_kp = tiny_autolink.keypoints(torch.stack([test[i]["image"] for i in range(16)]))
    assert sk["keypoint_joints"] == keypoint_joints(fit_kp, annotations(fit)).tolist()  # all 64 fit images (< GRAPH_FIT)
    kp_only = evaluate((fit_kp, test_kp), fit, test)
    assert "skeleton" not in kp_only  # keypoints alone have no graph
