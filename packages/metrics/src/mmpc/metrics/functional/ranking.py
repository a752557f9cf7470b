"""Full-ranking top-K metrics of RecBench: Recall@K and NDCG@K, several K in one pass.

Inputs are dense score and relevance matrices for a chunk of users over all items:

- ``preds``: float scores of shape (U, I); higher means ranked earlier.
- ``target``: held-out relevance of shape (U, I), bool (or 0/1 integers).

**Masking is the caller's job.** Items a user must not be recommended (their training items, and
in the strict protocol their validation items) are removed by setting their scores to ``-inf``
before calling; a ``-inf`` item can still fill a top-K list only when fewer than K items remain.

Definitions (MMRec's, binary relevance; ``rel_i`` = relevance of the item at rank i, ranks 1..K,
``n`` = number of held-out items of the user):

- ``Recall@K = (Σ_{i≤K} rel_i) / n`` (divided by n, not by ``min(K, n)``: MMRec's and PyG's
  ``LinkPredRecall`` definition; a user with n > K cannot reach 1).
- ``NDCG@K = DCG@K / IDCG@K`` with ``DCG@K = Σ_{i≤K} rel_i / log2(i + 1)`` and
  ``IDCG@K = Σ_{i≤min(n, K)} 1 / log2(i + 1)``.

Users without any held-out item (n = 0) have no defined value: the functional forms return NaN for
them and the metric classes leave them out of the mean. K larger than the number of items is
clamped to the number of items. Ties in ``preds`` are broken by ``torch.topk`` (unspecified order);
real-valued model scores rarely tie.

One ``torch.topk`` with the largest K serves every K: the per-K values are read off the cumulative
sums of the hit matrix (U, K_max). To share that ``topk`` between Recall and NDCG, compute
``hits = top_k_hits(preds, target, max_k)`` once and pass it to both classes' ``update(hits)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["TopKHits", "ndcg_at_k", "recall_at_k", "top_k_hits"]


class TopKHits(NamedTuple):
    """The top-``max_k`` relevance of a chunk of users (see :func:`top_k_hits`)."""

    hits: Tensor  # (U, min(max_k, I)) float64, 1.0 where the item at that rank is held out
    n_pos: Tensor  # (U,) float64, number of held-out items per user
    max_k: int  # the list length asked for


def _as_ks(k: int | Sequence[int]) -> tuple[int, ...]:
    """Validate ``k`` (one int or a sequence of ints) into a tuple of positive ints."""
    ks = (k,) if isinstance(k, int) else tuple(k)
    if not ks or any(not isinstance(v, int) or isinstance(v, bool) or v <= 0 for v in ks):
        raise ValueError(f"k must be a positive int or a non-empty sequence of them, got {k!r}")
    return ks


def top_k_hits(preds: Tensor, target: Tensor, max_k: int) -> TopKHits:
    """Relevance of each user's top-``max_k`` items, and each user's number of held-out items.

    Args:
        preds: Scores (U, I), floating point, no NaN (``-inf`` marks excluded items).
        target: Held-out relevance (U, I), bool or 0/1 integers.
        max_k: Length of the ranked list; clamped to I.

    Returns:
        :class:`TopKHits`: ``hits`` float64 (U, min(max_k, I)) with 1.0 where the item at that
        rank is held out, ``n_pos`` float64 (U,) the number of held-out items per user.
    """
    if preds.ndim != 2 or target.shape != preds.shape:
        raise ValueError(
            f"preds and target must both be (users, items); got {tuple(preds.shape)} and "
            f"{tuple(target.shape)}"
        )
    if not preds.is_floating_point():
        raise ValueError(f"preds must be floating point scores, got dtype {preds.dtype}")
    if target.dtype != torch.bool:
        if target.is_floating_point() or ((target != 0) & (target != 1)).any():
            raise ValueError(f"target must be bool or 0/1 integers, got dtype {target.dtype}")
        target = target.bool()
    top = preds.topk(min(max_k, preds.shape[1]), dim=1)  # (U, K)
    # topk ranks NaN above every number, so a NaN anywhere in a row shows up in its top-K.
    if torch.isnan(top.values).any():
        raise ValueError("preds contains NaN scores; mask excluded items with -inf instead")
    relevant = target.view(torch.uint8)  # same bytes, faster gather/sum than bool
    hits = relevant.gather(1, top.indices).to(torch.float64)  # (U, K)
    n_pos = relevant.sum(dim=1, dtype=torch.int64).to(torch.float64)  # (U,)
    return TopKHits(hits, n_pos, max_k)


def _recall_from_hits(hits: Tensor, n_pos: Tensor, ks: Sequence[int]) -> dict[int, Tensor]:
    """Recall@k per user (NaN where n_pos == 0) for every k, from the top-K hit matrix."""
    cum_hits = hits.cumsum(dim=1)  # (U, K)
    width = hits.shape[1]
    return {k: cum_hits[:, min(k, width) - 1] / n_pos for k in ks}


def _ndcg_from_hits(hits: Tensor, n_pos: Tensor, ks: Sequence[int]) -> dict[int, Tensor]:
    """NDCG@k per user (NaN where n_pos == 0) for every k, from the top-K hit matrix."""
    width = hits.shape[1]
    ranks = torch.arange(2, width + 2, dtype=torch.float64, device=hits.device)
    gain = 1.0 / torch.log2(ranks)  # (K,)
    cum_dcg = (hits * gain).cumsum(dim=1)  # (U, K)
    cum_idcg = gain.cumsum(dim=0)  # (K,)
    out = {}
    for k in ks:
        kk = min(k, width)
        ideal_len = n_pos.clamp(min=1, max=kk).long() - 1  # (U,)
        ndcg = cum_dcg[:, kk - 1] / cum_idcg[ideal_len]  # (U,)
        out[k] = torch.where(n_pos > 0, ndcg, torch.full_like(ndcg, float("nan")))
    return out


def _single_or_dict(
    values: dict[int, Tensor], k: int | Sequence[int]
) -> Tensor | dict[int, Tensor]:
    return values[k] if isinstance(k, int) else values


def recall_at_k(
    preds: Tensor, target: Tensor, k: int | Sequence[int] = (5, 10, 20, 50)
) -> Tensor | dict[int, Tensor]:
    """Recall@K per user: ``hits in the top K / number of held-out items`` (MMRec's definition).

    Args:
        preds: Scores (U, I); excluded (training) items set to ``-inf`` by the caller.
        target: Held-out relevance (U, I), bool.
        k: One K, or several K computed from a single ``topk``.

    Returns:
        float64 (U,) for one K, else ``{K: (U,)}``; NaN for users without held-out items.

    Example:
        >>> preds = torch.tensor([[0.9, 0.1, 0.8, 0.3, 0.5]])
        >>> target = torch.tensor([[True, False, False, True, True]])
        >>> recall_at_k(preds, target, k=3)
        tensor([0.6667], dtype=torch.float64)
    """
    ks = _as_ks(k)
    hits, n_pos, _ = top_k_hits(preds, target, max(ks))
    return _single_or_dict(_recall_from_hits(hits, n_pos, ks), k)


def ndcg_at_k(
    preds: Tensor, target: Tensor, k: int | Sequence[int] = (5, 10, 20, 50)
) -> Tensor | dict[int, Tensor]:
    """NDCG@K per user with binary relevance; IDCG over ``min(n_pos, K)`` ideal hits.

    Args:
        preds: Scores (U, I); excluded (training) items set to ``-inf`` by the caller.
        target: Held-out relevance (U, I), bool.
        k: One K, or several K computed from a single ``topk``.

    Returns:
        float64 (U,) for one K, else ``{K: (U,)}``; NaN for users without held-out items.

    Example:
        >>> preds = torch.tensor([[0.9, 0.1, 0.8, 0.3, 0.5]])
        >>> target = torch.tensor([[True, False, False, True, True]])
        >>> ndcg_at_k(preds, target, k=3)
        tensor([0.7039], dtype=torch.float64)
    """
    ks = _as_ks(k)
    hits, n_pos, _ = top_k_hits(preds, target, max(ks))
    return _single_or_dict(_ndcg_from_hits(hits, n_pos, ks), k)
