"""Recall@K and NDCG@K as torchmetrics classes, several K per pass, correct under DDP.

Definitions are in :mod:`mmpc.metrics.functional.ranking`. The classes keep, per K, the sum of the
per-user values and the number of users with at least one held-out item (``dist_reduce_fx="sum"``),
so chunks of users may be fed through many ``update`` calls, on many processes, and ``compute``
still returns the exact mean over users: ``{K: Σ_u metric_u@K / #users with n_u > 0}``.

``update(preds, target)`` runs one ``torch.topk``; to share it between Recall and NDCG pass
``hits = top_k_hits(preds, target, max_k)`` to both: ``recall.update(hits)``, ``ndcg.update(hits)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from mmpc.metrics.functional.ranking import (
    TopKHits,
    _as_ks,
    _ndcg_from_hits,
    _recall_from_hits,
    top_k_hits,
)

__all__ = ["NDCGAtK", "RecallAtK"]

_FromHits = Callable[[Tensor, Tensor, Sequence[int]], dict[int, Tensor]]


class _TopKMetric(Metric):
    """Accumulates per-K sums over users with held-out items, and their count."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    sums: Tensor
    count: Tensor
    per_user: list[Tensor]
    _from_hits: _FromHits

    def __init__(
        self, k: int | Sequence[int] = (5, 10, 20, 50), reduction: str = "mean", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        self.ks = _as_ks(k)
        self.reduction = reduction
        self.add_state("sums", torch.zeros(len(self.ks), dtype=torch.float64), "sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), "sum")
        if reduction == "none":
            self.add_state("per_user", [], "cat")

    def update(self, preds: Tensor | TopKHits, target: Tensor | None = None) -> None:
        """Add a chunk of users.

        Args:
            preds: Scores (U, I), the caller having set excluded (training) items to ``-inf``;
                or a :class:`TopKHits` from ``top_k_hits(preds, target, max_k)`` (then no
                ``target``), to share one ``topk`` between several metrics.
            target: Held-out relevance (U, I), bool.
        """
        if isinstance(preds, TopKHits):
            if target is not None:
                raise ValueError("pass either TopKHits alone or (preds, target), not both")
            if preds.max_k < max(self.ks):
                raise ValueError(f"TopKHits of max_k={preds.max_k} < largest K {max(self.ks)}")
            hits, n_pos, _ = preds
        elif target is None:
            raise ValueError("target is required with a score matrix")
        else:
            hits, n_pos, _ = top_k_hits(preds, target, max(self.ks))
        values = self._from_hits(hits, n_pos, self.ks)
        stacked = torch.stack([values[k] for k in self.ks], dim=1)  # (U, len(ks))
        valid = n_pos > 0  # (U,)
        self.sums += stacked[valid].sum(dim=0)
        self.count += valid.sum()
        if self.reduction == "none":
            self.per_user.append(stacked[valid])

    def compute(self) -> dict[int, Tensor]:
        """``{K: mean over users with held-out items}`` (NaN if there were none), or with
        ``reduction="none"`` ``{K: (U_valid,) per-user values}`` in update order."""
        if self.reduction == "none":
            if not self.per_user:
                return {k: torch.zeros(0, dtype=torch.float64) for k in self.ks}
            per_user = dim_zero_cat(self.per_user)  # (U_valid, len(ks))
            return {k: per_user[:, i] for i, k in enumerate(self.ks)}
        if self.count == 0:
            return {k: torch.tensor(math.nan, dtype=torch.float64) for k in self.ks}
        means = self.sums / self.count  # (len(ks),)
        return {k: means[i] for i, k in enumerate(self.ks)}


class RecallAtK(_TopKMetric):
    """Recall@K = hits in the top K / number of held-out items, mean over users that have any.

    Same definition as MMRec and PyG ``LinkPredRecall`` (not divided by ``min(K, n)``). Training
    items must be masked by the caller (scores set to ``-inf``).

    Args:
        k: One K or several (default 5, 10, 20, 50), all from one ``torch.topk``.
        reduction: ``"mean"`` (default) or ``"none"`` (per-user values of users with held-out
            items, in update order).
        kwargs: Passed to :class:`torchmetrics.Metric`.

    Example:
        >>> metric = RecallAtK(k=(1, 3))
        >>> metric.update(torch.tensor([[0.9, 0.1, 0.8]]), torch.tensor([[False, True, True]]))
        >>> {k: round(v.item(), 3) for k, v in metric.compute().items()}
        {1: 0.0, 3: 1.0}
    """

    _from_hits = staticmethod(_recall_from_hits)


class NDCGAtK(_TopKMetric):
    """NDCG@K with binary relevance, ``DCG@K / IDCG@K``, IDCG over ``min(n, K)`` ideal hits.

    ``DCG@K = Σ_{i≤K} rel_i / log2(i + 1)``; mean over users with at least one held-out item.
    Training items must be masked by the caller (scores set to ``-inf``).

    Args:
        k: One K or several (default 5, 10, 20, 50), all from one ``torch.topk``.
        reduction: ``"mean"`` (default) or ``"none"`` (per-user values of users with held-out
            items, in update order).
        kwargs: Passed to :class:`torchmetrics.Metric`.
    """

    _from_hits = staticmethod(_ndcg_from_hits)
