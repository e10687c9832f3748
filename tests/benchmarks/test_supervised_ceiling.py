"""benchmarks/supervised_ceiling.py: every named encoder builds, crops keep their shape, and a tiny
run on in-memory clips trains and scores."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("supervised_ceiling", ROOT / "benchmarks" / "supervised_ceiling.py")
ceiling = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ceiling)

NAMES = ["r3d", "r3d_max", "r3d_ls1max", "r3d_stem1max", "r2d", "r2d_max", "cnn2d", "cnn2d_w0.5", "cnn2d_w0.5_mean"]


@pytest.mark.parametrize("name", NAMES)
def test_every_documented_encoder_builds_and_pools_to_a_vector(name: str) -> None:
    assert name.removesuffix("_mean") in ceiling.__doc__
    enc = ceiling.build_encoder(name).eval()
    with torch.no_grad():
        out = enc(torch.randn(2, 3, 4, 32, 32))
    assert out.shape == (2, enc.out_channels)
    if name.startswith("cnn2d"):
        assert enc.pool == ("mean" if name.endswith("_mean") else "max")


def test_unknown_encoder_stops_with_its_name() -> None:
    with pytest.raises(SystemExit, match="unknown encoder 'vgg'"):
        ceiling.build_encoder("vgg")


def test_crops_share_one_window_per_clip_and_keep_the_size() -> None:
    g = np.random.default_rng(0)
    frame = torch.rand(2, 3, 1, 16, 16)
    still = frame.expand(2, 3, 4, 16, 16)  # every frame of a clip the same image
    out = ceiling.random_crops(still, 8, (0.2, 0.5), g)
    assert out.shape == (2, 3, 4, 8, 8)
    for t in range(1, 4):  # one window (and one mirror) for all the frames of a clip
        torch.testing.assert_close(out[:, :, t], out[:, :, 0])
    flat = torch.ones(1, 3, 2, 16, 16) * 0.25  # a constant clip stays constant whatever the window
    torch.testing.assert_close(ceiling.random_crops(flat, 16, (0.4, 1.0), g), flat)


def test_a_tiny_run_trains_and_scores() -> None:
    torch.manual_seed(0)
    video = torch.randint(0, 256, (8, 6, 32, 32, 3), dtype=torch.uint8)
    labels = torch.tensor([0, 1] * 4)
    args = argparse.Namespace(seed=0, lr=1e-3, epochs=2, batch_size=4, clip_frames=4, crop_min=0.4, eval_every=1)
    result = ceiling.train_one("cnn2d_w0.5", (video, labels), (video, labels), args, n_classes=2)
    assert [r["epoch"] for r in result["epochs"]] == [1, 2]
    assert all(0.0 <= r["eval_top1"] <= 1.0 and r["train_loss"] > 0 for r in result["epochs"])
    assert result["final_eval_top1"] == result["epochs"][-1]["eval_top1"] and result["params"] > 0
