"""Projection heads."""

from __future__ import annotations

import pytest
import torch

from glocal.errors import ConfigError
from glocal.models import Conv1x1Head, MLPHead


def test_conv1x1_head_3d_and_1d() -> None:
    h3 = Conv1x1Head(16, 8, dims=3)
    x = torch.randn(2, 16, 4, 3, 3)
    y = h3(x)
    assert y.shape == (2, 8, 4, 3, 3)
    # a 1x1x1 conv is a per-position linear map
    ref = torch.einsum("oc,bcthw->bothw", h3.proj.weight.flatten(1), x)
    torch.testing.assert_close(y, ref + h3.proj.bias.view(1, -1, 1, 1, 1))
    h1 = Conv1x1Head(16, 4, dims=1, l2=True)
    z = h1(torch.randn(2, 16, 10))
    assert z.shape == (2, 4, 10)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(2, 10))


def test_conv1x1_head_bad_dims() -> None:
    with pytest.raises(ConfigError, match="dims"):
        Conv1x1Head(4, 4, dims=2)
    with pytest.raises(ValueError):
        Conv1x1Head(4, 4, dims=1)(torch.randn(2, 4, 3, 3))


@pytest.mark.parametrize("bn", [False, True])
def test_mlp_head(bn: bool) -> None:
    h = MLPHead(32, 16, 8, bn=bn)
    assert h(torch.randn(4, 32)).shape == (4, 8)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in h.modules()) == bn
    y = MLPHead(32, 16, 8, l2=True)(torch.randn(4, 32))
    torch.testing.assert_close(y.norm(dim=1), torch.ones(4))


@pytest.mark.parametrize("dims,shape", [(3, (4, 16, 2, 3, 3)), (1, (4, 16, 7))])
def test_conv1x1_head_bn_removes_the_shared_component(dims: int, shape: tuple) -> None:
    """bn=True: in training every output channel has zero mean and unit variance over the batch
    and all positions (a large offset shared by every clip is gone); without it the offset stays."""
    torch.manual_seed(0)
    x = torch.randn(*shape) + 5.0  # a shared component, like post-ReLU features
    head = Conv1x1Head(16, 8, dims=dims, bn=True).train()
    y = head(x)
    axes = [0] + list(range(2, y.dim()))
    torch.testing.assert_close(y.mean(dim=axes), torch.zeros(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(dim=axes, unbiased=False), torch.ones(8), atol=1e-3, rtol=0)
    assert not any(p.requires_grad for n, p in head.named_parameters() if n.startswith("norm"))
    plain = Conv1x1Head(16, 8, dims=dims)(x)
    assert plain.mean(dim=axes).abs().max() > 0.5
