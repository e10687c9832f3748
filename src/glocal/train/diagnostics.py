"""Online "is anything being learned?" diagnostics of a pretraining run (docs/diagnostics.md).

Per step, from what :meth:`~glocal.methods.Method.training_losses` returns beside its loss terms
(reserved keys :data:`~glocal.methods.base.DIAG_PREFIXES`) and from
:meth:`~glocal.methods.Method.loss_chance`:

* ``<term>/chance`` — the term's chance level (its value at all-equal scores) and
  ``<term>/below_chance = 1 - loss / chance`` (0: at chance; < 0: above it) — ``log.csv`` and
  ``epochs.csv``;
* ``<term>/align``, ``<term>/uniform`` — alignment and uniformity (Wang & Isola 2020) of the
  positive pairs the contrastive term sees (uniformity: mean of the two sides) — ``epochs.csv``;
* ``<name>/entropy`` — normalised entropy of an attention map (1 = uniform) — ``epochs.csv``.

Sums stay on the device (no host sync per step); :meth:`EpochDiagnostics.means` syncs once per epoch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..methods.base import DIAG_PREFIXES
from ..objectives.diagnostics import alignment, attention_entropy, uniformity

__all__ = ["split_outputs", "EpochDiagnostics", "chance_lines", "GENERIC_HINT"]

#: appended to every "still at chance" warning
GENERIC_HINT = ("check that the loss sees real positives (data, augmentations); try a lower optim.lr or a "
                "longer optim.warmup_epochs, another method.tau, a larger train.batch_size")

#: a term's embeddings count as collapsed onto one point when its uniformity ``<term>/uniform``
#: (0 when every embedding is equal; about -4 for points spread over a high-dimensional sphere)
#: is above minus this. Calibrated on the real-parts runs (docs/methods_results.md): AVTS's
#: collapsed V-A terms pass -0.005 at epochs 3-7 and end at -0.004 to 0.000; no run that learned
#: (96 AVID, GLCM and SimCLR runs still on disk) went above -0.010 after epoch 3, though
#: AVID's V-A term sits at -0.01 to -0.05 for its first epochs
COLLAPSE_UNIFORMITY = 0.005


def split_outputs(out: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """``training_losses`` output -> (loss entries incl. ``"loss"``, reserved diagnostic entries)."""
    losses = {k: v for k, v in out.items() if not k.startswith(DIAG_PREFIXES)}
    extras = {k: v for k, v in out.items() if k.startswith(DIAG_PREFIXES)}
    return losses, extras


class EpochDiagnostics:
    """Running epoch sums of the diagnostics (device tensors for the embedding metrics)."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor | float] = {}
        self.counts: dict[str, int] = {}

    def _add(self, key: str, value: Tensor | float) -> None:
        self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.counts[key] = self.counts.get(key, 0) + 1

    @torch.no_grad()
    def add_extras(self, extras: dict[str, Tensor]) -> None:
        """Alignment / uniformity of every ``pair/<term>`` ``(2, N, D)``, entropy of every ``attn/<name>``."""
        for key, value in extras.items():
            kind, _, name = key.partition("/")
            if kind == "pair" and value.shape[1] >= 2:
                x, y = value[0].float(), value[1].float()
                self._add(f"{name}/align", alignment(x, y))
                # U = (U(x) + U(y)) / 2: each side's spread over the hypersphere
                self._add(f"{name}/uniform", 0.5 * (uniformity(x) + uniformity(y)))
            elif kind == "attn":
                self._add(f"{name}/entropy", attention_entropy(value))

    def add_chance(self, chance: dict[str, float]) -> None:
        """One step's chance levels (Python floats)."""
        for term, value in chance.items():
            self._add(f"{term}/chance", float(value))

    def means(self) -> dict[str, float]:
        """Epoch means (one host sync) and reset."""
        out = {k: float(v) / self.counts[k] for k, v in self.sums.items()}
        self.sums, self.counts = {}, {}
        return out

    def state(self) -> dict[str, Any]:
        """Sums as floats (checkpoint; mid-epoch resume)."""
        return {"sums": {k: float(v) for k, v in self.sums.items()}, "counts": dict(self.counts)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.sums = {k: float(v) for k, v in dict(state.get("sums", {})).items()}
        self.counts = {k: int(v) for k, v in dict(state.get("counts", {})).items()}


def below_chance(loss: float, chance: float) -> float:
    """Fraction below chance ``1 - loss / chance`` (0: at chance, 1: loss 0, < 0: above chance)."""
    return 1.0 - loss / chance if chance > 0 else float("nan")


def chance_columns(terms: dict[str, float], chance: dict[str, float]) -> dict[str, float]:
    """``<term>/chance`` and ``<term>/below_chance`` of every term with a chance level."""
    out: dict[str, float] = {}
    for term, c in chance.items():
        if term in terms:
            out[f"{term}/chance"] = c
            out[f"{term}/below_chance"] = below_chance(terms[term], c)
    return out


def chance_lines(row: dict[str, Any], epoch: int, warn_epochs: int, tolerance: float,
                 hints: dict[str, str]) -> tuple[list[str], list[str]]:
    """Per-term report lines, "still at chance" warnings and collapse warnings of an epoch row
    (``<term>/uniform`` above ``-COLLAPSE_UNIFORMITY``).

    Args:
        row: the epoch row (``<term>`` means and ``<term>/chance``).
        epoch: epochs completed (1-based).
        warn_epochs: warn from this epoch on (0: never).
        tolerance: a term is "at chance" when ``below_chance < tolerance`` (e.g. 0.02).
        hints: extra advice per term (:attr:`~glocal.methods.Method.chance_hints`).
    """
    lines, warnings = [], []
    for key in sorted(k for k in row if k.endswith("/chance")):
        term = key[: -len("/chance")]
        if term not in row or not math.isfinite(float(row[term])):
            continue
        loss, c = float(row[term]), float(row[key])
        gap = below_chance(loss, c)
        where = f"{100 * gap:.1f} % below" if gap >= 0 else f"{-100 * gap:.1f} % above"
        lines.append(f"{term} {loss:.4g} (chance {c:.4g}: {where})")
        if warn_epochs and epoch >= warn_epochs and gap < tolerance:
            hint = hints.get(term, "")
            warnings.append(
                f"warning: {term} is still at chance after {epoch} epochs ({loss:.4g} vs {c:.4g}, within "
                f"{100 * tolerance:g} %): nothing is being learned by this term; see docs/diagnostics.md "
                f"(try {hint + '; ' if hint else ''}{GENERIC_HINT})"
            )
    for key in sorted(k for k in row if k.endswith("/uniform")):
        term, u = key[: -len("/uniform")], float(row[key])
        if warn_epochs and epoch >= warn_epochs and math.isfinite(u) and u > -COLLAPSE_UNIFORMITY:
            hint = hints.get(term, "")
            warnings.append(
                f"warning: {term}'s embeddings have collapsed onto one point after {epoch} epochs (uniformity "
                f"{u:.3g}; 0 = all equal): the term can only sit at chance now; see docs/diagnostics.md"
                f"{' (try ' + hint + ')' if hint else ''}"
            )
    return lines, warnings
