"""Lexical text metrics of CQBench as torchmetrics classes (TF-IDF cosine/Euclidean, overlap).

The formulas and the cleaning recipe are documented in :mod:`mmpc.metrics.functional.text`; these
classes only accumulate per-item scores (``dist_reduce_fx="cat"``) so that ``compute`` returns the
mean, or every per-item value with ``reduction="none"`` (what ``mean ± std`` reports need).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from mmpc.metrics.functional.text import (
    DEFAULT_MAX_FEATURES,
    _reduce,
    _tfidf_update,
    _token_overlap_update,
)

__all__ = ["TFIDFCosineSimilarity", "TFIDFEuclideanSimilarity", "TokenOverlap"]


class _PerItemScore(Metric):
    """Holds per-item float64 scores; ``compute`` reduces them (mean or none)."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    scores: list[Tensor]

    def __init__(self, reduction: str = "mean", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        self.reduction = reduction
        self.add_state("scores", default=[], dist_reduce_fx="cat")

    def compute(self) -> Tensor:
        """Mean over all items seen (NaN if none), or the (N,) per-item tensor."""
        if not self.scores:
            values = torch.zeros(0, dtype=torch.float64)
        else:
            values = dim_zero_cat(self.scores)
        return _reduce(values, self.reduction)


class _TFIDFPairScore(_PerItemScore):
    """Shared state and update of the two per-pair TF-IDF similarities."""

    _which: int

    def __init__(
        self,
        reduction: str = "mean",
        unicode: bool = False,
        max_features: int | None = DEFAULT_MAX_FEATURES,
        **kwargs: Any,
    ) -> None:
        super().__init__(reduction=reduction, **kwargs)
        self.unicode = unicode
        self.max_features = max_features

    def update(self, preds: Sequence[str], target: Sequence[str]) -> None:
        """Score a batch of (generated, reference) text pairs."""
        scores = _tfidf_update(preds, target, self.unicode, self.max_features)[self._which]
        self.scores.append(scores)


class TFIDFCosineSimilarity(_TFIDFPairScore):
    """TF-IDF cosine similarity, a vectorizer fitted on each (pred, target) pair alone.

    ``cos = <v_p, v_t>`` with ``v`` the l2-normalised TF-IDF vectors of the cleaned texts
    (English stop words removed, uni- and bigrams, smooth idf over the two texts). Equal to
    scikit-learn's ``TfidfVectorizer`` + ``cosine_similarity`` per pair; 0.0 when either text has
    no term left.

    Args:
        reduction: ``"mean"`` (default) or ``"none"`` (per-item float64 tensor (N,)).
        unicode: Keep non-ASCII letters when cleaning (default ``False``, as published).
        max_features: Vocabulary cap of the per-pair vectorizer (published code: 1000).
        kwargs: Passed to :class:`torchmetrics.Metric`.

    Example:
        >>> metric = TFIDFCosineSimilarity()
        >>> metric.update(["red leather wallet"], ["red wallet"])
        >>> round(metric.compute().item(), 4)
        0.3563
    """

    _which = 0  # index of the cosine in _tfidf_update's (cosine, euclidean)


class TFIDFEuclideanSimilarity(_TFIDFPairScore):
    """TF-IDF Euclidean similarity ``1 / (1 + ||v_p - v_t||_2)`` of the per-pair TF-IDF vectors.

    Same vectors as :class:`TFIDFCosineSimilarity`; for unit vectors
    ``||v_p - v_t|| = sqrt(2 - 2 cos)``, so a non-degenerate pair scores in ``[1/(1+√2), 1]``;
    0.0 when either text has no term left.

    Args:
        reduction: ``"mean"`` (default) or ``"none"`` (per-item float64 tensor (N,)).
        unicode: Keep non-ASCII letters when cleaning (default ``False``, as published).
        max_features: Vocabulary cap of the per-pair vectorizer (published code: 1000).
        kwargs: Passed to :class:`torchmetrics.Metric`.
    """

    _which = 1  # index of the Euclidean similarity in _tfidf_update's result


class TokenOverlap(_PerItemScore):
    """Token overlap: Jaccard ``|A ∩ B| / |A ∪ B|`` of the cleaned whitespace token sets.

    Tokens: lower-cased text with every non-alphanumeric character replaced by a space, split on
    whitespace (no stop-word removal). 0.0 when either set is empty.

    Args:
        reduction: ``"mean"`` (default) or ``"none"`` (per-item float64 tensor (N,)).
        unicode: Keep non-ASCII letters when cleaning (default ``False``, as published).
        kwargs: Passed to :class:`torchmetrics.Metric`.
    """

    def __init__(self, reduction: str = "mean", unicode: bool = False, **kwargs: Any) -> None:
        super().__init__(reduction=reduction, **kwargs)
        self.unicode = unicode

    def update(self, preds: Sequence[str], target: Sequence[str]) -> None:
        """Score a batch of (generated, reference) text pairs."""
        self.scores.append(_token_overlap_update(preds, target, self.unicode))
