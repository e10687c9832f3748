"""Fine-grained temporal classification (our lip-reading analogue): the world's rhythm label.

Every video of the generated world has a ``rhythm_label`` (the timing pattern of its sound events /
flashes), identical-looking in any single frame, so it can only be read from how features change
over time. Protocol:

* frozen per-step features of the local (fast) pathway without audio,
  ``method.local_video_features(video)`` ``(D, T)``, over each video's whole timeline;
* a small temporal head trained on them: per-channel standardisation (train statistics) →
  ``Conv1d(D, 64, 3)`` → ReLU → ``Conv1d(64, 64, 3, dilation 2)`` → ReLU → mean ‖ max over time →
  ``Linear(128, classes)``, Adam (``head_lr``, weight decay 1e-4) for ``head_epochs`` epochs on
  random windows of ``L`` steps (``L`` = the shortest training video), the epoch with the best
  val top-1 kept;
* test: logits averaged over windows of ``L`` steps (stride ``L / 2``) covering the video; top-1.

Labels: the manifest's ``rhythm_label`` column, else annotations.json ``rhythm``.
"""

from __future__ import annotations

import copy
import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import DataError
from ..methods import Method
from .context import EvalContext
from .timeline import extract_timeline

__all__ = ["TemporalHead", "rhythm_labels", "train_temporal_head", "requires", "run"]


class TemporalHead(nn.Module):
    """``(B, D, L)`` per-step features → ``(B, classes)`` logits (two 1-D convs, mean ‖ max pooling)."""

    def __init__(self, in_dim: int, classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(in_dim, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv1d(hidden, hidden, 3, padding=2, dilation=2), nn.ReLU(),
        )
        self.fc = nn.Linear(2 * hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x)
        return self.fc(torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1))


def rhythm_labels(ctx: EvalContext, split: str) -> tuple[np.ndarray, list[str]]:
    """Integer rhythm labels ``(N,)`` of a split and the sorted class names."""
    manifest = ctx.split(split)
    if ctx.manifest.has_column("rhythm_label"):
        _, names = ctx.manifest.encode("rhythm_label")
        codes, _ = manifest.encode("rhythm_label", names)
    else:
        values = [ctx.video_annotation(p).get("rhythm") for p in manifest.paths.tolist()]
        all_values = [ctx.video_annotation(p).get("rhythm") for p in ctx.manifest.paths.tolist()]
        names = sorted({v for v in all_values if v})
        codes = np.array([names.index(v) if v in names else -1 for v in values], dtype=np.int64)
    if (codes < 0).any():
        raise DataError(f"task 'temporal': {int((codes < 0).sum())} videos of split '{split}' have no rhythm label")
    return codes, names


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run tiny ops on one thread (multi-threaded kernels only add overhead at this size)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _windows(x: np.ndarray, length: int) -> np.ndarray:
    """``(W, D, length)`` windows of ``x (D, F)`` with stride ``length // 2`` covering all of it."""
    f = x.shape[1]
    if f <= length:
        return np.pad(x, ((0, 0), (0, length - f)), mode="edge")[None]
    stride = max(1, length // 2)
    starts = list(range(0, f - length + 1, stride))
    if starts[-1] != f - length:
        starts.append(f - length)
    return np.stack([x[:, s:s + length] for s in starts])


@torch.no_grad()
def _predict(head: TemporalHead, seqs: list[np.ndarray], length: int) -> np.ndarray:
    head.eval()
    return np.array([int(head(torch.from_numpy(_windows(s, length))).mean(dim=0).argmax()) for s in seqs])


def train_temporal_head(
    train: tuple[list[np.ndarray], np.ndarray],
    val: tuple[list[np.ndarray], np.ndarray] | None,
    classes: int,
    *,
    epochs: int = 60,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
) -> tuple[TemporalHead, dict[str, Any], tuple[np.ndarray, np.ndarray], int]:
    """Train the head on standardised ``(D, F_i)`` sequences; returns head, info, (mean, std), window L."""
    seqs, y = train
    length = int(min(s.shape[1] for s in seqs))
    cat = np.concatenate(seqs, axis=1)
    mean, std = cat.mean(axis=1, keepdims=True), cat.std(axis=1, keepdims=True) + 1e-6
    norm = [((s - mean) / std).astype(np.float32) for s in seqs]
    vnorm = [((s - mean) / std).astype(np.float32) for s in val[0]] if val else None
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = TemporalHead(norm[0].shape[0], classes)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=1e-4)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    best_state, best_acc, best_epoch = copy.deepcopy(head.state_dict()), -1.0, 0
    for epoch in range(1, epochs + 1):
        head.train()
        order = rng.permutation(len(norm))
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            crops = []
            for i in idx:
                f = norm[i].shape[1]
                s = int(rng.integers(0, f - length + 1))
                crops.append(norm[i][:, s:s + length])
            loss = nn.functional.cross_entropy(head(torch.from_numpy(np.stack(crops))), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if vnorm is not None:
            acc = float(np.mean(_predict(head, vnorm, length) == val[1]))  # type: ignore[index]
            if acc > best_acc:
                best_state, best_acc, best_epoch = copy.deepcopy(head.state_dict()), acc, epoch
    if vnorm is None:
        best_state, best_epoch = copy.deepcopy(head.state_dict()), epochs
    head.load_state_dict(best_state)
    info = {"best_epoch": best_epoch, "val_top1": best_acc if vnorm is not None else None, "window": length}
    return head, info, (mean, std), length


def requires(ctx: EvalContext) -> None:
    ctx.require_labels("temporal")
    if not ctx.manifest.has_column("rhythm_label"):
        ctx.require_annotation_field("temporal", "rhythm")


def run(method: Method, ctx: EvalContext) -> dict[str, Any]:
    """Test top-1 of the temporal head on frozen local-pathway features."""
    data = {}
    splits = ["train", "test"] + (["val"] if ctx.has_split("val") else [])
    names: list[str] = []
    for split in splits:
        tl = extract_timeline(method, ctx, ctx.split(split), ["video"], desc=f"local video features [{split}]")
        y, names = rhythm_labels(ctx, split)
        data[split] = (tl.features["video"], y)
    if np.unique(data["train"][1]).size < 2:
        raise DataError("task 'temporal': the training split has a single rhythm class")
    with _one_thread():
        head, info, (mean, std), length = train_temporal_head(
            data["train"], data.get("val"), len(names), epochs=ctx.options.head_epochs, lr=ctx.options.head_lr,
            seed=ctx.seed,
        )
        test_seqs = [((s - mean) / std).astype(np.float32) for s in data["test"][0]]
        top1 = float(np.mean(_predict(head, test_seqs, length) == data["test"][1]))
    return {"top1": top1, "meta": {**info, "classes": names, "chance": 1.0 / len(names),
                                   "epochs": ctx.options.head_epochs}}
