"""Online linear probe (solo-learn style): a linear classifier on detached backbone features.

Trained during pretraining on the labelled clips of every training micro-batch (``label >= 0``),
with its own Adam optimizer, off the pretraining loss's graph: the features are detached and the
probe's parameters belong to no other optimizer, so the pretraining losses are unchanged. The
weights start at zero (no random numbers drawn: the run's RNG streams, hence exact resume, are
untouched). Reports the running training top-1 of each epoch (predictions made *before* each
update) and, given frozen features of a labelled split, their top-1.

Accumulators stay on the device; :meth:`epoch_top1` is the only host sync (once per epoch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["OnlineProbe"]


class OnlineProbe:
    """Linear ``C -> num_classes`` classifier built lazily at the first batch (``C`` from the features)."""

    def __init__(self, num_classes: int, lr: float, device: torch.device) -> None:
        if num_classes < 2:
            raise ValueError(f"the online probe needs >= 2 classes; got {num_classes}")
        self.num_classes, self.lr, self.device = num_classes, lr, device
        self.linear: nn.Linear | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.seen = torch.zeros((), dtype=torch.long, device=device)

    def _build(self, in_dim: int) -> None:
        # built on the meta device (its default init draws nothing), then zero-initialised: the
        # global RNG stream, and so the pretraining trajectory, is untouched
        self.linear = nn.Linear(in_dim, self.num_classes, device="meta").to_empty(device=self.device)
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.bias.zero_()
        self.optimizer = torch.optim.Adam(self.linear.parameters(), lr=self.lr)

    def step(self, features: Tensor, labels: Tensor) -> None:
        """One update on ``features`` ``(B, C)`` (detached here) with ``labels`` ``(B,)`` (-1 = none).

        ``L = Σ_{b: y_b >= 0} CE(W f_b + c, y_b) / max(1, #labelled)``; running counts of
        ``argmax(W f_b + c) == y_b`` over labelled rows, predicted before the update.
        """
        if self.linear is None:
            self._build(features.shape[1])
        assert self.linear is not None and self.optimizer is not None
        x, y = features.detach().float(), labels.to(features.device).long()
        mask = y >= 0
        with torch.enable_grad(), torch.autocast(device_type=x.device.type, enabled=False):
            logits = self.linear(x)  # (B, num_classes)
            loss = F.cross_entropy(logits, y.clamp_min(0), reduction="none")
            loss = (loss * mask).sum() / mask.sum().clamp_min(1)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.correct += ((logits.detach().argmax(dim=1) == y) & mask).sum()
        self.seen += mask.sum()

    def epoch_top1(self) -> float | None:
        """Running training top-1 since the last call (``None`` if no labelled clip was seen); resets."""
        seen, correct = int(self.seen), int(self.correct)
        self.correct.zero_()
        self.seen.zero_()
        return correct / seen if seen else None

    @torch.no_grad()
    def top1(self, features: np.ndarray | Tensor, labels: np.ndarray | Tensor) -> float | None:
        """Top-1 of frozen ``features`` ``(N, C)`` against ``labels`` ``(N,)`` (-1 rows ignored)."""
        if self.linear is None:
            return None
        x = torch.as_tensor(np.asarray(features), dtype=torch.float32, device=self.device)
        y = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=self.device)
        keep = y >= 0
        if not bool(keep.any()):
            return None
        pred = self.linear(x[keep]).argmax(dim=1)
        return float((pred == y[keep]).float().mean())

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Weights, optimizer state and the running counts (mid-epoch resume)."""
        return {
            "linear": None if self.linear is None else self.linear.state_dict(),
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "correct": int(self.correct), "seen": int(self.seen),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("linear") is not None:
            self._build(state["linear"]["weight"].shape[1])
            assert self.linear is not None and self.optimizer is not None
            self.linear.load_state_dict(state["linear"])
            self.optimizer.load_state_dict(state["optimizer"])
        self.correct.fill_(int(state.get("correct", 0)))
        self.seen.fill_(int(state.get("seen", 0)))
