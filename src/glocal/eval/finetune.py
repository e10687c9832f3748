"""Fine-tuning the video encoder for classification (spec 8.2 "Action recognition — fine-tune").

Protocol: a copy of the method (the evaluated model is left untouched) plus a linear head on
``method.video_features`` is trained end-to-end with cross-entropy and Adam (``finetune_lr``,
``finetune_epochs`` epochs, batch ``finetune_batch_size``) on the train split, with random temporal
clips and random resized crops / flips / colour jitter; after every epoch the val split is scored
(logits averaged over ``finetune_test_clips`` uniformly spaced centre-cropped clips per video) and
the best-val weights are kept (the last epoch's without a val split). Metric: test top-1 with the
same multi-clip averaging.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..methods import Method
from ..runtime.precision import autocast
from .context import EvalContext
from .features import extract_features, make_loader

__all__ = ["requires", "run"]


def requires(ctx: EvalContext) -> None:
    ctx.require_labels("finetune")


def _accuracy(model: Method, head: nn.Module, ctx: EvalContext, split: str) -> float:
    data = dataclasses.replace(ctx.data, clips_per_video=max(1, ctx.options.finetune_test_clips))
    loader = make_loader(ctx.split(split), data, with_audio=False)
    logits, labels = extract_features(model, loader, lambda m, b: head(m.video_features(b["clip/video"])),
                                      device=ctx.device, dtype=ctx.dtype, desc=f"finetune eval [{split}]",
                                      progress=ctx.progress)
    return float(np.mean(logits.argmax(axis=1) == labels))


def run(method: Method, ctx: EvalContext) -> dict[str, Any]:
    """Test top-1 after end-to-end fine-tuning with best-val selection."""
    opts = ctx.options
    torch.manual_seed(ctx.seed)
    model = copy.deepcopy(method).to(ctx.device)
    classes = len(ctx.manifest.class_names)
    data = dataclasses.replace(ctx.data, clips_per_video=1, batch_size=opts.finetune_batch_size)
    base = make_loader(ctx.split("train"), data, with_audio=False, train_aug=True, seed=ctx.seed)
    dataset = base.dataset
    g = torch.Generator().manual_seed(ctx.seed)
    loader = DataLoader(dataset, batch_size=data.batch_size, shuffle=True, generator=g, num_workers=data.num_workers,
                        collate_fn=base.collate_fn, drop_last=len(dataset) > data.batch_size)
    with torch.no_grad():
        model.eval()
        probe = next(iter(make_loader(ctx.split("train"), dataclasses.replace(data, batch_size=1), with_audio=False)))
        dim = int(model.video_features(probe["clip/video"].to(ctx.device)).shape[1])
    head = nn.Linear(dim, classes).to(ctx.device)
    optim = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=opts.finetune_lr)
    has_val = ctx.has_split("val")
    best: dict[str, Any] = {"epoch": 0, "val_top1": -1.0, "state": None}
    losses = []
    for epoch in range(1, opts.finetune_epochs + 1):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        model.train()
        total, count = 0.0, 0
        for batch in tqdm(loader, desc=f"finetune epoch {epoch}", disable=not ctx.progress, leave=False):
            video, label = batch["clip/video"].to(ctx.device), batch["label"].to(ctx.device)
            with autocast(ctx.device, ctx.dtype):
                logits = head(model.video_features(video)).float()
            loss = nn.functional.cross_entropy(logits, label)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            total, count = total + loss.item() * len(label), count + len(label)
        losses.append(total / max(count, 1))
        if has_val:
            acc = _accuracy(model, head, ctx, "val")
            if acc > best["val_top1"]:
                best = {"epoch": epoch, "val_top1": acc,
                        "state": (copy.deepcopy(model.state_dict()), copy.deepcopy(head.state_dict()))}
    if best["state"] is not None:
        model.load_state_dict(best["state"][0])
        head.load_state_dict(best["state"][1])
    top1 = _accuracy(model, head, ctx, "test")
    return {"top1": top1, "meta": {"best_epoch": best["epoch"] if has_val else opts.finetune_epochs,
                                   "val_top1": best["val_top1"] if has_val else None, "train_loss": losses,
                                   "epochs": opts.finetune_epochs, "lr": opts.finetune_lr,
                                   "test_clips": opts.finetune_test_clips}}
