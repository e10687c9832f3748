"""``Method.on_step_end`` written once: the base walks the declared (online, momentum copy) pairs
and step queues; MoCo, VCLR, AVTS and AVID only declare theirs."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from glocal.config import build
from glocal.data.config import DataConfig
from glocal.methods import METHODS, build_method
from glocal.methods.base import Method
from glocal.methods.common import MomentumEncoder, StagedQueue

TINY_VIDEO = dict(depth=10, width_mult=0.125, proj_hidden=32, proj_dim=16)
AUDIO = dict(audio_width_mult=0.125, logmel_preset="glcm", n_mels=32)
DECLARING: dict[str, dict[str, Any]] = {
    "moco": {**TINY_VIDEO, "queue_size": 8},
    "vclr": {"depth": 18, "width_mult": 0.0625, "proj_hidden": 32, "proj_dim": 16, "queue_size": 8},
    "avts": {**TINY_VIDEO, **AUDIO, "queue_size": 8},
    "avid": {**TINY_VIDEO, **AUDIO, "queue_size": 8},
    "avid_no_memory": {**TINY_VIDEO, **AUDIO, "queue_size": 0},
}


class Toy(Method):
    momentum_pairs = (("online", "target"),)
    step_queues = ("queue", "absent")

    def __init__(self) -> None:
        super().__init__(None, DataConfig())
        self.online = nn.Linear(3, 2)
        self.target = MomentumEncoder(self.online, momentum=0.75)
        self.queue = StagedQueue(4, 2)
        self.absent: StagedQueue | None = None


def test_base_updates_every_pair_then_flushes_every_queue() -> None:
    torch.manual_seed(0)
    m = Toy()
    with torch.no_grad():
        m.online.weight.add_(1.0)
    before = m.target.module.weight.clone()
    keys = torch.randn(3, 2)
    m.queue.stage(keys)
    m.on_step_end()
    # θ_k <- m θ_k + (1 - m) θ_q
    torch.testing.assert_close(m.target.module.weight, 0.75 * before + 0.25 * m.online.weight)
    torch.testing.assert_close(m.queue.queue[:3], F.normalize(keys, dim=1))
    assert m.queue.num_staged == 0 and int(m.queue.ptr) == 3


@pytest.mark.parametrize("key", sorted(DECLARING))
def test_declared_pairs_and_queues_name_the_methods_modules(key: str) -> None:
    name = key.split("_")[0]
    m = build_method(build(METHODS[name].config_class, {**DECLARING[key], "name": name}), DataConfig(sample_rate=8000, fps=8.0))
    assert m.momentum_pairs or m.step_queues
    for online, target in m.momentum_pairs:
        copy = getattr(m, target)
        assert isinstance(copy, MomentumEncoder)
        assert [n for n, _ in copy.module.named_parameters()] == [n for n, _ in getattr(m, online).named_parameters()]
    queues = [getattr(m, q) for q in m.step_queues]
    assert all(q is None or isinstance(q, StagedQueue) for q in queues)
    staged = [q for q in m.modules() if isinstance(q, StagedQueue)]
    assert len(staged) == len([q for q in queues if q is not None])  # every queue of the method is flushed
    copies = [c for c in m.modules() if isinstance(c, MomentumEncoder)]
    assert len(copies) == len(m.momentum_pairs)  # every momentum copy is updated


@pytest.mark.parametrize("name", ["moco", "vclr", "avid"])
def test_the_methods_only_declare(name: str) -> None:
    assert "on_step_end" not in vars(METHODS[name])
