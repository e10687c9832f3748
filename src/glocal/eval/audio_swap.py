"""The audio-swap control of ``video_pool=sound``: does the clip's audio reach the pooled video features?

With ``--video-pool sound`` the backbone map is pooled with weights taken from the method's own
sound-source map of the clip's audio (:meth:`~glocal.methods.base.Method.pooled_video_features`).
The weights can carry the audio's class into the pooled *video* features: they select the
positions that look most like the sound's class (or a part of the frame each sound class leans
to), so the pooled features lean towards that class whatever the video shows, and a probe fitted
on clips with their own audio reads it. Then part of a linear-probe or
retrieval score is the audio encoder's, not the video encoder's.

``linear``, ``knn`` and ``retrieval`` run the control whenever ``video_pool=sound``. It re-pools
every test video's clips with the audio of a *donor*: another test video of a different class (a
fixed derangement drawn with the evaluation seed; clip ``k`` of the video gets the audio of clip
``k`` of its donor). The classifier (or the gallery) is unchanged. With
``pred_i`` the prediction for test video ``i`` under its donor's audio, ``y_i`` its class and
``d(i)`` its donor::

    leak   = mean_i 1[pred_i = y_d(i)]                          the donor audio's class, read out of video features
    chance = mean_i |{j : y_j = pred_i, y_j != y_i}| / |{j : y_j != y_i}|
                                                                the same rate if pred_i ignored the donor
    swap   = mean_i 1[pred_i = y_i]                             the video's own class under foreign audio

``leak`` well above ``chance`` (more than 2 binomial standard errors,
``sqrt(chance (1 - chance) / n)``) means the audio reaches the features: the sound-pooled scores
then measure the audio-visual pair, not the video encoder alone, and a warning says so. On a set
whose videos also show an animal of the donor's class (a silent distractor), some leak is
legitimate (the map finds that animal); the test cannot tell that apart and errs towards warning.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Callable

import numpy as np
import torch

from ..methods import Method
from ..runtime.precision import autocast
from .context import EvalContext
from .features import make_loader, to_device

__all__ = ["donors", "leak_chance", "leak_summary", "warn_if_leaking", "swapped_features", "run_control", "LEAK_WARNING"]

#: the warning printed (and kept in the task's ``meta.warnings``) when the control finds a leak
LEAK_WARNING = ("[glocal] warning: {task}: video_pool=sound: pooled with the audio of a video of another class, the "
                "{what} follows that audio's class on {leak:.1%} of the {n} test videos (chance {chance:.1%}): the "
                "clip's audio reaches the pooled video features, so the sound-pooled scores measure the audio-visual "
                "pair, not the video encoder alone (docs/evaluation.md, 'The audio-swap control')")


def donors(labels: np.ndarray, seed: int) -> np.ndarray | None:
    """For each video ``i`` (labels ``(N,)`` int) the index of a donor video of another class, drawn
    uniformly with ``default_rng(seed)``; None when no video has one (fewer than two classes)."""
    labels = np.asarray(labels)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if classes.size < 2:
        return None
    order = np.argsort(inverse, kind="stable")  # the videos grouped by class
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])[inverse]  # (N,) where video i's class block starts
    own = counts[inverse]  # (N,) videos of video i's class
    k = np.floor(np.random.default_rng(seed).random(labels.size) * (labels.size - own)).astype(np.int64)
    return order[np.where(k < start, k, k + own)]  # the k-th video outside i's class block


def leak_chance(pred: np.ndarray, labels: np.ndarray) -> float:
    """Expected ``mean_i 1[pred_i = y_d(i)]`` for a donor drawn uniformly among the other classes'
    videos, independently of ``pred`` (module formula)."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    if labels.size == 0:
        return 0.0
    classes, counts = np.unique(labels, return_counts=True)
    count = dict(zip(classes.tolist(), counts.tolist()))
    n_pred = np.array([count.get(p, 0) for p in pred.tolist()], dtype=np.float64)
    others = labels.size - np.array([count[y] for y in labels.tolist()], dtype=np.float64)
    rates = np.where((pred != labels) & (others > 0), n_pred / np.maximum(others, 1), 0.0)
    return float(rates.mean())


def leak_summary(pred: np.ndarray, labels: np.ndarray, donor_labels: np.ndarray) -> dict[str, Any]:
    """``leak``, ``chance``, ``swap`` (module formulas), the test size and whether ``leak`` exceeds
    ``chance`` by more than 2 binomial standard errors."""
    pred, labels, donor_labels = np.asarray(pred), np.asarray(labels), np.asarray(donor_labels)
    n = int(labels.size)
    leak = float(np.mean(pred == donor_labels)) if n else 0.0
    chance = leak_chance(pred, labels)
    se = math.sqrt(max(chance * (1 - chance), 1e-12) / max(n, 1))
    return {"leak": leak, "chance": chance, "swap": float(np.mean(pred == labels)) if n else 0.0, "videos": n,
            "leaks": bool(leak > chance + 2 * se)}


def warn_if_leaking(summary: dict[str, Any], task: str, what: str) -> list[str]:
    """Print :data:`LEAK_WARNING` when ``summary`` says the audio leaks; the printed lines."""
    if not summary["leaks"]:
        return []
    line = LEAK_WARNING.format(task=task, what=what, leak=summary["leak"], n=summary["videos"],
                               chance=summary["chance"])
    print(line, file=sys.stderr)
    return [line]


@torch.no_grad()
def swapped_features(method: Method, ctx: EvalContext, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Sound-pooled features ``(N, D)`` of ``split``'s videos with their donors' audio (clip by clip),
    their labels ``(N,)`` and their donors' labels ``(N,)``; cached per model. None when the split
    has a single class. Reads the split's video twice (its own clips, and the donors' files for
    their audio)."""
    key = (id(method), "video-donor-audio", split, ctx.data, ctx.seed)
    if key in ctx.cache:
        return ctx.cache[key]
    man = ctx.split(split)
    d = donors(man.labels, ctx.seed)
    if d is None:
        ctx.cache[key] = None
        return None
    own = make_loader(man, ctx.data, with_audio=False)
    donor = make_loader(man.select(d), ctx.data, with_audio=True)
    method.eval()
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, int] = {}
    for vb, ab in zip(own, donor):
        if not torch.equal(vb["index"], ab["index"]):
            raise RuntimeError("audio-swap control: the video and donor loaders fell out of step")
        vb, ab = to_device(vb, ctx.device), to_device(ab, ctx.device)
        with autocast(ctx.device, ctx.dtype):
            feats = method.pooled_video_features(vb["clip/video"], "sound", ab["clip/audio"]).float().cpu()
        for row, vid in enumerate(vb["index"].tolist()):
            sums[vid] = sums.get(vid, 0) + feats[row]
            counts[vid] = counts.get(vid, 0) + 1
    order = sorted(sums)
    x = torch.stack([sums[v] / counts[v] for v in order]).numpy().astype(np.float32)
    out = (x, man.labels[order], man.labels[d][order])
    ctx.cache[key] = out
    return out


def run_control(method: Method, ctx: EvalContext, predict: Callable[[np.ndarray], np.ndarray], task: str, what: str,
                metric: str) -> tuple[dict[str, float], dict[str, Any]]:
    """The control of one task: ``predict`` maps test features ``(N, D)`` to predicted labels
    ``(N,)`` (the task's classifier, or the nearest gallery video's class). Returns the result
    fields ``leak_<metric>``, ``leak_chance``, ``swap_<metric>`` and the meta entries
    ``audio_swap`` / ``warnings``; both empty when the test split has a single class."""
    swapped = swapped_features(method, ctx, "test")
    if swapped is None:
        return {}, {}
    xs, ys, yd = swapped
    summary = leak_summary(predict(xs), ys, yd)
    fields = {f"leak_{metric}": summary["leak"], "leak_chance": summary["chance"], f"swap_{metric}": summary["swap"]}
    return fields, {"audio_swap": summary, "warnings": warn_if_leaking(summary, task, what)}
