"""Unit tests of the engine's building blocks: sampler, checkpoint files, RNG states, logs, signals."""

from __future__ import annotations

import os
import random
import signal

import numpy as np
import pytest
import torch

from glocal.errors import GlocalError
from glocal.objectives import mil_nce, mil_nce_local
from glocal.runtime.checkpoint import (
    capture_rng_state,
    checkpoint_name,
    clean_partial_writes,
    latest_checkpoint,
    list_checkpoints,
    prune_checkpoints,
    restore_rng_state,
    save_checkpoint,
)
from glocal.runtime.distributed import DistributedBatchSampler, SyncBatchNorm, convert_sync_batchnorm
from glocal.train.runlog import CSVLog
from glocal.train.signals import StopRequest


@pytest.mark.parametrize("size,batch,world", [(23, 2, 3), (16, 4, 2), (10, 3, 1)])
def test_sampler_shards_each_epoch_exactly(size, batch, world):
    samplers = [DistributedBatchSampler(size, batch, seed=5, rank=r, world_size=world) for r in range(world)]
    steps = size // (batch * world)
    for epoch in (0, 1):
        for s in samplers:
            s.set_epoch(epoch)
        per_rank = [list(s) for s in samplers]
        assert all(len(b) == steps and all(len(x) == batch for x in b) for b in per_rank)
        used = [i for b in per_rank for x in b for i in x]
        assert len(used) == len(set(used)) == steps * batch * world  # each sample at most once; remainder dropped
        # rank-major blocks of one global batch = the single-process batch with W·B clips
        single = DistributedBatchSampler(size, batch * world, seed=5)
        single.set_epoch(epoch)
        for s_idx, global_batch in enumerate(single):
            assert sum((per_rank[r][s_idx] for r in range(world)), []) == global_batch
    # different permutation per epoch, same on every rank
    assert samplers[0].permutation(0) != samplers[0].permutation(1)


def test_sampler_resume_skips_done_batches():
    s = DistributedBatchSampler(20, 2, seed=1, rank=1, world_size=2)
    s.set_epoch(3)
    full = list(s)
    s.set_epoch(3, start_batch=2)
    assert list(s) == full[2:] and len(s) == len(full) - 2
    with pytest.raises(GlocalError, match="fewer than one global batch"):
        DistributedBatchSampler(3, 2, seed=0, rank=0, world_size=2)
    tagged = DistributedBatchSampler(20, 2, seed=1, rank=1, world_size=2, with_epoch=True)
    tagged.set_epoch(3, start_batch=2)  # the epoch travels with every index (persistent loader workers)
    assert list(tagged) == [[(3, i) for i in b] for b in full[2:]]


def test_checkpoint_names_order_prune_and_partial_writes(tmp_path):
    for epochs, batch in [(0, 2), (1, 0), (1, 3), (0, 4), (2, 0)]:
        save_checkpoint({"epoch": epochs}, tmp_path / checkpoint_name(epochs, batch))
    save_checkpoint({"epoch": 9}, tmp_path / "best.pt")
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["ckpt_epoch0000_batch000002.pt", "ckpt_epoch0000_batch000004.pt", "ckpt_epoch0001.pt",
                     "ckpt_epoch0001_batch000003.pt", "ckpt_epoch0002.pt"]
    prune_checkpoints(tmp_path, 2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_epoch0001_batch000003.pt", "ckpt_epoch0002.pt"]
    assert (tmp_path / "best.pt").exists()  # never pruned
    (tmp_path / ".ckpt_epoch0003.pt.tmp-1234").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path) == tmp_path / "ckpt_epoch0002.pt"
    assert [p.name for p in clean_partial_writes(tmp_path)] == [".ckpt_epoch0003.pt.tmp-1234"]


def test_rng_state_roundtrip_loads_weights_only(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.normal()  # cached gaussian
    state = capture_rng_state()
    save_checkpoint({"rng": state}, tmp_path / "c.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random(), np.random.normal())
    loaded = torch.load(tmp_path / "c.pt", weights_only=True)["rng"]
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    restore_rng_state(loaded)
    got = (torch.rand(3), np.random.rand(3), random.random(), np.random.normal())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[2] == expected[2] and got[3] == expected[3]


def test_csv_log_widens_and_truncates(tmp_path):
    log = CSVLog(tmp_path / "log.csv")
    log.write({"step": 1, "loss": 2.5})
    log.write({"step": 2, "loss": 2.0, "knn_top1": 0.5})
    assert log.fields == ["step", "loss", "knn_top1"]
    assert [r["knn_top1"] for r in log.rows()] == ["", "0.5"]
    log.write({"step": 3, "loss": 1.0})
    assert CSVLog(tmp_path / "log.csv").truncate("step", 2) == 1
    assert [r["step"] for r in CSVLog(tmp_path / "log.csv").rows()] == ["1", "2"]


def test_stop_request_records_signal_and_restores_handler():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest(verbose=False) as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signal_name == "SIGTERM"
        os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM keeps the first request
        assert stop.requested
    assert signal.getsignal(signal.SIGTERM) == before


def test_mil_nce_local_blocks_equal_full_loss():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 6, 3, generator=g)
    for symmetric in (True, False):
        for pool in ("lse", "mean", "max"):
            full = mil_nce(scores, symmetric=symmetric, pool=pool)
            assert torch.allclose(mil_nce_local(scores, scores, 0, symmetric=symmetric, pool=pool), full)
            # three "ranks" of two anchors each: mean of the per-rank values = the global loss
            parts = [mil_nce_local(scores[r:r + 2], scores[:, r:r + 2], r, symmetric=symmetric, pool=pool)
                     for r in (0, 2, 4)]
            assert torch.allclose(torch.stack(parts).mean(), full, atol=1e-6)


def test_sync_batchnorm_single_process_is_batchnorm():
    net = torch.nn.Sequential(torch.nn.Conv3d(2, 4, 1), torch.nn.BatchNorm3d(4), torch.nn.BatchNorm1d(4, affine=False))
    ref = {k: v.clone() for k, v in net.state_dict().items()}
    conv = convert_sync_batchnorm(net, torch.device("cpu"))
    assert isinstance(conv[1], SyncBatchNorm) and isinstance(conv[2], SyncBatchNorm)
    assert set(conv.state_dict()) == set(ref)
    x = torch.randn(3, 4, 2, 4, 4)
    plain = torch.nn.BatchNorm3d(4)
    plain.load_state_dict(conv[1].state_dict())
    assert torch.allclose(conv[1](x), plain(x))
    assert torch.allclose(conv[1].running_var, plain.running_var)


def test_to_device_finishes_uint8_clips_and_keeps_their_parameters_on_the_host(monkeypatch):
    import glocal.data.photometric as photometric
    from glocal.data.transforms import ClipTransform
    from glocal.train.loop import to_device

    tf = ClipTransform(size=8)
    frames = torch.randint(0, 256, (2, 12, 12, 3), dtype=torch.uint8)
    u8, _, photo = tf.split(frames, np.random.default_rng(0))
    ref, _ = tf(frames, np.random.default_rng(0))
    seen = []
    real = photometric.finish_clips
    monkeypatch.setattr(photometric, "finish_clips", lambda v, p: seen.append(p.device) or real(v, p))
    batch = {"clip/video": u8[None], "clip/photo": photo[None], "label": torch.tensor([3]), "names": ["a"]}
    out = to_device(batch, torch.device("cpu"), channels_last=True)
    assert set(out) == {"clip/video", "label", "names"} and seen == [torch.device("cpu")]
    assert out["clip/video"].is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(out["clip/video"][0], ref, atol=2e-5, rtol=1e-5)
