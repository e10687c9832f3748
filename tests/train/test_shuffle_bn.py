"""Shuffle-BN (MoCo's shuffling BatchNorm) for momentum encoders: 2 gloo ranks on CPU, and the
single-process no-op.

With 2 ranks the key encoder must see a random cross-rank shard of the global batch: its BatchNorm
statistics are those of the shard, and every rank gets its own rows back in their original order.
The reference recomputes that from the permutation rank 0 draws (``torch.randperm`` after a known
seed), and the test also checks that the per-rank (unshuffled) computation gives *different* keys,
so it fails if the shuffle is missing.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn

from glocal.data.config import DataConfig
from glocal.config import build
from glocal.errors import ConfigError
from glocal.methods import build_method
from glocal.methods.common import MomentumEncoder
from glocal.methods.moco import MoCoConfig
from glocal.runtime.gather import batch_shuffle, batch_unshuffle, shuffled_forward
from glocal.runtime.distributed import convert_sync_batchnorm
from glocal.train.loss_module import LossModule
from fixtures.ranks import finish_rank, run_ranks

WORLD, B = 2, 3  # 2 ranks x 3 rows
SEED = 123  # torch seed set on every rank right before a shuffled call (rank 0 draws the permutation)
MOCO = dict(depth=10, width_mult=0.125, proj_hidden=16, proj_dim=8, queue_size=16, momentum=0.9)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 4))


def _x() -> torch.Tensor:
    return torch.randn(WORLD * B, 5, generator=torch.Generator().manual_seed(1)) * 3 + 1


def _clips() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return {"a/video": torch.randn(WORLD * B, 3, 4, 16, 16, generator=g),
            "b/video": torch.randn(WORLD * B, 3, 4, 16, 16, generator=g)}


def _moco() -> nn.Module:
    torch.manual_seed(0)
    return build_method(MoCoConfig(**MOCO), DataConfig(sample_rate=16000, fps=8.0))


def _perm() -> torch.Tensor:
    torch.manual_seed(SEED)
    return torch.randperm(WORLD * B)


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    rows = slice(rank * B, (rank + 1) * B)
    res: dict[str, Any] = {}
    # (a) shuffle -> unshuffle round trip, for fp32 rows and bf16 rows (gathered in fp32 on gloo)
    x = _x()[rows]
    torch.manual_seed(SEED)
    shard, unshuffle = batch_shuffle(x)
    res["shard"] = shard
    res["roundtrip"] = batch_unshuffle(shard, unshuffle)
    res["roundtrip_bf16"] = batch_unshuffle(shard.bfloat16(), unshuffle)
    res["roundtrip_tuple"] = shuffled_forward(lambda t: (t * 2, {"id": t}), x)
    try:  # unequal per-rank batches: a clear error on every rank, not a hang
        batch_shuffle(x[: B - rank])
        res["unequal"] = ""
    except ValueError as exc:
        res["unequal"] = str(exc)
    # (b) the key encoder with shuffle-BN (train-mode BN) and without
    ema = MomentumEncoder(_net(), momentum=0.9, bn_train=True, shuffle_bn=True).train()
    res["shuffles"] = ema.shuffles
    torch.manual_seed(SEED)
    res["keys"] = ema(x)
    torch.manual_seed(SEED)
    res["keys_part"] = ema.run(ema.module[:2], x)  # a part of the copy (VCLR runs its encoder alone)
    res["keys_plain"] = MomentumEncoder(_net(), bn_train=True, shuffle_bn=False).train()(x)
    res["shuffles_eval"] = ema.eval().shuffles
    res["shuffles_bn_eval"] = MomentumEncoder(_net(), bn_train=False, shuffle_bn=True).train().shuffles
    synced = convert_sync_batchnorm(MomentumEncoder(_net(), shuffle_bn=True), torch.device("cpu")).train()
    res["shuffles_syncbn"] = synced.shuffles  # global statistics: nothing to shuffle
    # the MoCo step under DDP: the staged keys (gathered, rank order) come from shuffled key shards
    method = _moco().train()
    ddp = torch.nn.parallel.DistributedDataParallel(LossModule(method))
    clips = {k: v[rows] for k, v in _clips().items()}
    torch.manual_seed(SEED)
    losses = ddp(clips)
    losses["loss"].backward()
    res["moco_shuffles"] = method.target.shuffles
    res["moco_keys"] = method.queue._staged[0]
    del ddp, losses  # the DDP Reducer holds the group: release it before destroying the group
    finish_rank(res, out_dir, rank)


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return run_ranks(_worker, tmp_path_factory.mktemp("shuffle_bn"), WORLD)


def test_shuffle_then_unshuffle_returns_the_original_rows(rank_results):
    x, perm = _x(), _perm()
    assert set(perm[:B].tolist()) != set(range(B))  # the seed mixes rows across ranks
    for r, res in enumerate(rank_results):
        rows = x[r * B : (r + 1) * B]
        assert torch.equal(res["shard"], x[perm[r * B : (r + 1) * B]])  # this rank's shard of the shuffle
        assert torch.equal(res["roundtrip"], rows)
        assert torch.equal(res["roundtrip_bf16"], rows.bfloat16())
        doubled, ident = res["roundtrip_tuple"]
        assert torch.equal(doubled, rows * 2) and torch.equal(ident["id"], rows)
        assert "same batch size on every rank" in res["unequal"]


def test_key_encoder_bn_statistics_are_those_of_the_shuffled_shard(rank_results):
    x, perm = _x(), _perm()
    net = _net().train()
    expected, expected_part = torch.empty(WORLD * B, 4), torch.empty(WORLD * B, 6)
    with torch.no_grad():
        for r in range(WORLD):  # the key encoder in train mode on each shard of the permuted global batch
            idx = perm[r * B : (r + 1) * B]
            expected[idx] = net(x[idx])
            expected_part[idx] = net[:2](x[idx])
        plain = torch.cat([net(x[r * B : (r + 1) * B]) for r in range(WORLD)])  # each rank's own samples
    for r, res in enumerate(rank_results):
        assert res["shuffles"]
        rows = slice(r * B, (r + 1) * B)
        assert torch.allclose(res["keys"], expected[rows], atol=1e-6)
        assert torch.allclose(res["keys_part"], expected_part[rows], atol=1e-6)
        # without the shuffle the BN statistics are the rank's own: different keys (so this test can fail)
        assert torch.allclose(res["keys_plain"], plain[rows], atol=1e-6)
        assert not torch.allclose(res["keys"], res["keys_plain"], atol=1e-3)
        assert not res["shuffles_eval"] and not res["shuffles_bn_eval"] and not res["shuffles_syncbn"]


def test_moco_step_under_ddp_uses_shuffled_keys(rank_results):
    clips, perm = _clips(), _perm()
    target = copy.deepcopy(_moco().target).train()  # same initial weights as on the ranks
    keys = torch.empty(WORLD * B, MOCO["proj_dim"])
    with torch.no_grad():
        for r in range(WORLD):
            idx = perm[r * B : (r + 1) * B]
            keys[idx] = target.module(clips["b/video"][idx])[1]
        plain = torch.cat([target.module(clips["b/video"][r * B : (r + 1) * B])[1] for r in range(WORLD)])
    for res in rank_results:
        assert res["moco_shuffles"]
        assert torch.allclose(res["moco_keys"], keys, atol=1e-5)  # gathered in rank order = original order
        assert not torch.allclose(res["moco_keys"], plain, atol=1e-3)


# ------------------------------------------------------------------ one process: a documented no-op


def test_knob_validates_and_defaults():
    assert MoCoConfig().shuffle_bn is True
    assert build(MoCoConfig, {"shuffle_bn": False}).shuffle_bn is False
    with pytest.raises(ConfigError, match="shuffle_bn"):
        build(MoCoConfig, {"shuffle_bn": "sometimes"})
    from glocal.methods.avts import AVTSConfig
    from glocal.methods.vclr import VCLRConfig

    assert AVTSConfig().shuffle_bn is False and VCLRConfig().shuffle_bn is False
    with pytest.raises(ConfigError, match="shuffle_bn"):
        build(VCLRConfig, {"shuffle_bn": 3})
    method = build_method(MoCoConfig(**MOCO), DataConfig(sample_rate=16000, fps=8.0))
    assert method.target.shuffle_bn is True
    method = build_method(MoCoConfig(**MOCO, shuffle_bn=False), DataConfig(sample_rate=16000, fps=8.0))
    assert method.target.shuffle_bn is False


def test_single_process_is_a_no_op():
    assert not dist.is_initialized()
    x = _x()
    ema = MomentumEncoder(_net(), shuffle_bn=True).train()
    plain = MomentumEncoder(_net(), shuffle_bn=False).train()
    assert not ema.shuffles
    state = torch.get_rng_state()
    out = ema(x)
    assert torch.equal(torch.get_rng_state(), state)  # no permutation drawn
    assert torch.equal(out, plain(x))
    assert torch.equal(ema.module[1].running_mean, plain.module[1].running_mean)
    assert batch_shuffle(x)[1] is None and batch_unshuffle(x, None) is x
