"""Every method: chance levels for its logged terms, detached diagnostic entries of the right shapes."""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from glocal.methods.base import DIAG_PREFIXES

MODULES = ["test_avid", "test_avts", "test_ctrlaug", "test_glcm", "test_moco", "test_simclr", "test_vclr"]


@pytest.mark.parametrize("name", MODULES)
def test_chance_and_diagnostic_entries(name):
    mod = importlib.import_module(name)
    torch.manual_seed(0)
    m, batch = mod._method(), mod._batch()
    out = m.training_losses(batch)
    terms = {k for k in out if not k.startswith(DIAG_PREFIXES) and k != "loss"}
    chance = m.loss_chance(batch)
    assert chance and set(chance) <= terms
    assert all(math.isfinite(v) and v > 0 for v in chance.values())
    b = next(v for k, v in batch.items() if k.endswith("/video")).shape[0]
    extras = {k: v for k, v in out.items() if k.startswith(DIAG_PREFIXES)}
    assert "feat/video" in extras and extras["feat/video"].shape[0] == b
    # the features the probe sees are what video_features computes: same width
    video = next(v for k, v in batch.items() if k.endswith("/video") and v.dim() == 5)
    m.eval()
    assert extras["feat/video"].shape[1] == m.video_features(video).shape[1]
    pairs = [k for k in extras if k.startswith("pair/")]
    assert pairs and all(k[len("pair/"):] in terms for k in pairs)
    for key, value in extras.items():
        assert not value.requires_grad, key
        if key.startswith("pair/"):
            assert value.dim() == 3 and value.shape[0] == 2, key
        if key.startswith("attn/"):
            assert torch.allclose(value.sum(dim=1), torch.ones(value.shape[0]), atol=1e-5)


@pytest.mark.parametrize("name, weight, term", [
    ("test_glcm", "weight_local", "loss_local"), ("test_glcm", "weight_global", "loss_global"),
    ("test_vclr", "weight_order", "loss_order"), ("test_ctrlaug", "weight_order", "loss_order"),
    ("test_ctrlaug", "weight_inst", "loss_inst"),
])
def test_a_term_of_weight_0_keeps_its_value_but_loses_its_chance_level(name, weight, term):
    """The trainer checks only :meth:`trained_loss_chance`: a switched-off term is still logged
    (its value is computed) but never reported as "still at chance"."""
    mod = importlib.import_module(name)
    torch.manual_seed(0)
    m, batch = mod._method(), mod._batch()
    assert term in m.trained_loss_chance(batch) and m.trained_loss_chance(batch) == m.loss_chance(batch)
    setattr(m.cfg, weight, 0.0)
    out = m.training_losses(batch)
    trained = m.trained_loss_chance(batch)
    assert term in out and term not in trained
    assert trained == {k: v for k, v in m.loss_chance(batch).items() if k != term}
