import itertools

import torch

from lmkcore.ops import edge_map, grid, pair_index, segment_distance2


def _direct_edge_map(kp, weights, h, w, thick):
    """Pixel by pixel, pair by pair: the definition, for comparison only."""
    g = grid(h, w, dtype=kp.dtype)
    out = torch.zeros(kp.shape[0], 1, h, w, dtype=kp.dtype)
    pairs = list(itertools.combinations(range(kp.shape[1]), 2))
    for b in range(kp.shape[0]):
        for y in range(h):
            for x in range(w):
                p = g[y, x]
                vals = []
                for e, (i, j) in enumerate(pairs):
                    a, c = kp[b, i], kp[b, j]
                    t = torch.clamp(torch.dot(p - a, c - a) / torch.dot(c - a, c - a), 0, 1)
                    d2 = ((p - (a + t * (c - a))) ** 2).sum()
                    vals.append(weights[e] * torch.exp(-d2 / thick))
                out[b, 0, y, x] = torch.stack(vals).max()
    return out


def test_pair_index_order():
    i, j = pair_index(4)
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]


def test_segment_distance_closed_form():
    pts = torch.tensor([[0.0, 1.0], [2.0, 0.0], [-1.0, 0.0]])
    a, b = torch.tensor([[[-0.5, 0.0]]]), torch.tensor([[[0.5, 0.0]]])
    d2 = segment_distance2(pts, a, b)[0, 0]
    assert torch.allclose(d2, torch.tensor([1.0, 1.5**2, 0.5**2]))  # above, beyond the end, before the start


def test_edge_map_matches_direct_computation():
    torch.manual_seed(0)
    kp = torch.rand(2, 4, 2, dtype=torch.double) * 2 - 1
    w = torch.rand(6, dtype=torch.double)
    fast = edge_map(kp, w, (7, 6), thick=0.05)
    assert torch.allclose(fast, _direct_edge_map(kp, w, 7, 6, 0.05))


def test_edge_map_gradients():
    torch.manual_seed(1)
    kp = (torch.rand(1, 3, 2, dtype=torch.double) * 2 - 1).requires_grad_()
    w = torch.rand(3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda k, ww: edge_map(k, ww, (5, 5), 0.1), (kp, w))
    # gradients agree with the direct definition
    kp2 = kp.detach().clone().requires_grad_()
    edge_map(kp, w, (5, 5), 0.1).sum().backward()
    _direct_edge_map(kp2, w.detach(), 5, 5, 0.1).sum().backward()
    assert torch.allclose(kp.grad, kp2.grad)


def test_per_image_weights():
    kp = torch.tensor([[[-0.5, 0.0], [0.5, 0.0]]]).repeat(2, 1, 1)
    m = edge_map(kp, torch.tensor([[1.0], [0.25]]), 9, 1e-3)
    assert torch.isclose(m[0].max(), torch.tensor(1.0)) and torch.isclose(m[1].max(), torch.tensor(0.25))


def test_winning_pairs_are_the_brightest_lines():
    """The expanded, matmul form that picks each pixel's pair agrees with the direct distances."""
    from lmkcore.ops.edges import _winning_pairs

    torch.manual_seed(2)
    kp = torch.rand(3, 6, 2, dtype=torch.double) * 2 - 1
    logw = torch.log(torch.rand(1, 15, dtype=torch.double))
    i, j = pair_index(6)
    pts = grid(9, 8, dtype=torch.double).reshape(-1, 2)
    direct = (segment_distance2(pts, kp[:, i], kp[:, j]) / 0.01 - logw[..., None]).argmin(1)
    assert torch.equal(_winning_pairs(pts, kp[:, i], kp[:, j], logw, 0.01), direct)


def test_edge_map_is_fp32_under_autocast():
    torch.manual_seed(3)
    kp, w = torch.rand(2, 5, 2) * 1.6 - 0.8, torch.rand(10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp = edge_map(kp, w, 16, 2.5e-3)
    assert amp.dtype == torch.float32 and torch.equal(amp, edge_map(kp, w, 16, 2.5e-3))
