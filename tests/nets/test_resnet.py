import pytest
import torch
import torch.nn.functional as F

from lmkcore.nets.resnet import SplitBatchNorm2d, hypercolumn, resnet, stages


def test_split_batchnorm_normalises_each_group_alone():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4) * torch.arange(1.0, 9.0)[:, None, None, None]  # groups with different spreads
    bn = SplitBatchNorm2d(3, splits=2).train()
    y = bn(x)
    for g in range(2):  # group g: the images b with b % 2 == g
        xg = x[g::2]
        var = xg.var((0, 2, 3), unbiased=False, keepdim=True)
        ref = (xg - xg.mean((0, 2, 3), keepdim=True)) / (var + bn.eps).sqrt()
        assert torch.allclose(y[g::2], ref, atol=1e-5)
    # running mean: 0.9 * 0 + 0.1 * (mean of the two groups' means)
    means = torch.stack([x[g::2].mean((0, 2, 3)) for g in range(2)]).mean(0)
    assert torch.allclose(bn.running_mean, 0.1 * means, atol=1e-6)
    bn.eval()
    plain = torch.nn.BatchNorm2d(3).eval()
    plain.load_state_dict(bn.state_dict())
    assert torch.allclose(bn(x), plain(x))


def test_split_batchnorm_uses_fewer_groups_when_the_batch_is_odd():
    bn = SplitBatchNorm2d(2, splits=4).train()
    x = torch.randn(6, 2, 3, 3)
    ref = F.batch_norm(x.reshape(3, 4, 3, 3), None, None, training=True).reshape(6, 2, 3, 3)  # gcd(6, 4) = 2 groups
    assert torch.allclose(bn(x), ref, atol=1e-5)


@pytest.mark.parametrize("model,channels", [("resnet18", (64, 128, 256, 512))])
def test_stages_and_hypercolumn_shapes(model, channels):
    net = resnet(model, 16, bn_splits=2).eval()
    maps = stages(net, torch.rand(2, 3, 64, 64))
    assert [m.shape[1] for m in maps] == list(channels)
    assert [m.shape[-1] for m in maps] == [16, 8, 4, 2]
    assert hypercolumn(maps, 32).shape == (2, sum(channels), 32, 32)
    assert len(stages(net, torch.rand(1, 3, 64, 64), depth=2)) == 2


def test_resnet_rejects_unknown_models_and_has_an_mlp_head():
    with pytest.raises(ValueError, match="resnet18"):
        resnet("vgg16", 8)
    net = resnet("resnet18", 8, mlp=True)
    assert net.fc[-1].out_features == 8
