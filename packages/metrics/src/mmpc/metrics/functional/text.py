"""Lexical text metrics of CQBench: TF-IDF cosine, TF-IDF Euclidean similarity, token overlap.

All three follow the published MMPCBench code (``CQBench/text_benchmark_all_models_bench.py``):

1. **Cleaning.** ``clean_text(s)``: lower-case, replace every character that is not an ASCII letter,
   an ASCII digit or whitespace by a space (regex ``[^a-zA-Z0-9\\s]``), collapse whitespace, strip.
   Non-ASCII letters are therefore removed, as in the published code; ``unicode=True`` keeps every
   Unicode letter and digit instead (``str.isalnum``), a documented departure for non-English text.
2. **TF-IDF on the pair alone.** A scikit-learn ``TfidfVectorizer(stop_words="english",
   ngram_range=(1, 2), max_features=1000)`` is fitted on the two cleaned texts. Its word analyzer
   keeps tokens of two or more word characters (``(?u)\\b\\w\\w+\\b``), drops English stop words
   and forms bigrams from the remaining tokens. With ``n = 2`` documents the smooth idf is
   ``idf(t) = ln((1 + n) / (1 + df(t))) + 1``, i.e. ``1`` for a term in both texts and
   ``1 + ln(3/2)`` for a term in one. Each text's vector is ``v_t = tf(t) * idf(t)``, l2-normalised.

   - cosine similarity: ``cos = <v_a, v_b>`` (vectors are unit length);
   - Euclidean similarity: ``1 / (1 + ||v_a - v_b||_2)``.

   This module computes those weights itself with counters over scikit-learn's own analyzer
   (``TfidfVectorizer.build_analyzer``), which gives the same numbers as fitting a vectorizer per
   pair at a fraction of the cost. When the pair has more than ``max_features`` distinct terms the
   vocabulary is cut exactly as scikit-learn cuts it (``(-tf).argsort()[:max_features]`` over the
   alphabetically sorted terms).
3. **Token overlap** (the paper's "Overlap", the code's Jaccard): ``|A ∩ B| / |A ∪ B|`` with
   ``A = set(clean_text(a).split())`` (no stop-word removal, single characters kept).

Defined behaviour for degenerate input (never NaN, never an exception): if either text is empty
after cleaning, or either text has no TF-IDF term left after stop-word removal, all TF-IDF scores of
that pair are ``0.0``; token overlap is ``0.0`` when either token set is empty. The published code
gives the same ``0.0`` except in one case: a pair where exactly one side consists only of stop words
scores Euclidean ``1 / (1 + 1) = 0.5`` there (a zero vector at distance 1 from a unit vector). This
project scores it ``0.0``, the same as an empty text, as issue 2 asks.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from torch import Tensor

__all__ = [
    "clean_text",
    "tfidf_cosine_similarity",
    "tfidf_euclidean_similarity",
    "tfidf_pair_scores",
    "token_overlap",
]

_ASCII_STRIP = re.compile(r"[^a-zA-Z0-9\s]")
_UNICODE_STRIP = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")
_IDF_ONE_SIDE = math.log(3.0 / 2.0) + 1.0  # smooth idf with n=2 documents, df=1
DEFAULT_MAX_FEATURES = 1000


def clean_text(text: str, unicode: bool = False) -> str:
    """Clean a text as the published code does before every lexical metric.

    Args:
        text: Raw text. Anything that is not a ``str`` (e.g. ``None``, NaN) cleans to ``""``.
        unicode: ``False`` (default, as published): only ASCII letters and digits survive.
            ``True``: every Unicode letter/digit survives (underscore is removed in both modes).

    Returns:
        Lower-cased text whose tokens are separated by single spaces, stripped.
    """
    if not isinstance(text, str):
        return ""
    text = text.lower()
    text = (_UNICODE_STRIP if unicode else _ASCII_STRIP).sub(" ", text)
    return _SPACES.sub(" ", text).strip()


@lru_cache(maxsize=1)
def _analyzer() -> Callable[[str], list[str]]:
    """scikit-learn's word analyzer with the published vectorizer settings (built once)."""
    return TfidfVectorizer(stop_words="english", ngram_range=(1, 2)).build_analyzer()


def _limit_features(counts_a: Counter, counts_b: Counter, limit: int) -> set[str]:
    """Terms scikit-learn keeps when the pair's vocabulary exceeds ``max_features``."""
    terms = sorted(counts_a.keys() | counts_b.keys())
    tfs = np.array([counts_a.get(t, 0) + counts_b.get(t, 0) for t in terms], dtype=np.int64)
    keep = (-tfs).argsort()[:limit]
    return {terms[i] for i in keep}


def tfidf_pair_scores(
    a: str, b: str, unicode: bool = False, max_features: int | None = DEFAULT_MAX_FEATURES
) -> tuple[float, float]:
    """TF-IDF cosine and Euclidean similarity of one pair (vectorizer fitted on the pair alone).

    Args:
        a: First text (order does not matter: both scores are symmetric).
        b: Second text.
        unicode: Cleaning mode, see :func:`clean_text`.
        max_features: Vocabulary cap of the fitted vectorizer (the published code uses 1000).

    Returns:
        ``(cosine, 1 / (1 + l2_distance))``, both ``0.0`` if either text has no term.
    """
    clean_a, clean_b = clean_text(a, unicode), clean_text(b, unicode)
    if not clean_a or not clean_b:
        return 0.0, 0.0
    analyze = _analyzer()
    counts_a, counts_b = Counter(analyze(clean_a)), Counter(analyze(clean_b))
    if max_features is not None and len(counts_a.keys() | counts_b.keys()) > max_features:
        kept = _limit_features(counts_a, counts_b, max_features)
        counts_a = Counter({t: c for t, c in counts_a.items() if t in kept})
        counts_b = Counter({t: c for t, c in counts_b.items() if t in kept})
    if not counts_a or not counts_b:
        return 0.0, 0.0
    weights_a = {t: c * (1.0 if t in counts_b else _IDF_ONE_SIDE) for t, c in counts_a.items()}
    weights_b = {t: c * (1.0 if t in counts_a else _IDF_ONE_SIDE) for t, c in counts_b.items()}
    norm_a = math.sqrt(sum(w * w for w in weights_a.values()))
    norm_b = math.sqrt(sum(w * w for w in weights_b.values()))
    dot = sum(w * weights_b[t] for t, w in weights_a.items() if t in weights_b)
    cosine = min(max(dot / (norm_a * norm_b), 0.0), 1.0)
    # ||u - v||^2 over the union of terms, with u, v the l2-normalised vectors. Summed in sorted
    # term order: a set's order follows the per-process string hash seed, and another order moves
    # the last bit of the sum, so a rerun in another process would not be bit-identical.
    sq_dist = sum(
        (weights_a.get(t, 0.0) / norm_a - weights_b.get(t, 0.0) / norm_b) ** 2
        for t in sorted(weights_a.keys() | weights_b.keys())
    )
    return cosine, 1.0 / (1.0 + math.sqrt(sq_dist))


def _check_pairs(preds: Sequence[str], target: Sequence[str]) -> tuple[list[str], list[str]]:
    """Validate two parallel lists of texts (a lone ``str`` is one text)."""
    if isinstance(preds, str):
        preds = [preds]
    if isinstance(target, str):
        target = [target]
    preds, target = list(preds), list(target)
    if len(preds) != len(target):
        raise ValueError(f"preds has {len(preds)} texts but target has {len(target)}")
    return preds, target


def _tfidf_update(
    preds: Sequence[str],
    target: Sequence[str],
    unicode: bool = False,
    max_features: int | None = DEFAULT_MAX_FEATURES,
) -> tuple[Tensor, Tensor]:
    """Per-pair TF-IDF cosine and Euclidean similarity, each float64 of shape (N,)."""
    preds, target = _check_pairs(preds, target)
    pairs = zip(preds, target, strict=True)
    scores = [tfidf_pair_scores(p, t, unicode, max_features) for p, t in pairs]
    out = torch.tensor(scores, dtype=torch.float64).reshape(-1, 2)  # (N, 2)
    return out[:, 0], out[:, 1]


def _token_overlap_update(
    preds: Sequence[str], target: Sequence[str], unicode: bool = False
) -> Tensor:
    """Per-pair Jaccard similarity of cleaned token sets, float64 of shape (N,)."""
    preds, target = _check_pairs(preds, target)
    scores = []
    for p, t in zip(preds, target, strict=True):
        tokens_p = set(clean_text(p, unicode).split())
        tokens_t = set(clean_text(t, unicode).split())
        if not tokens_p or not tokens_t:
            scores.append(0.0)
        else:
            scores.append(len(tokens_p & tokens_t) / len(tokens_p | tokens_t))
    return torch.tensor(scores, dtype=torch.float64)


def _reduce(values: Tensor, reduction: str) -> Tensor:
    """``"mean"`` over items (NaN for no items), or ``"none"`` for the per-item tensor."""
    if reduction == "none":
        return values
    if reduction == "mean":
        return values.mean() if values.numel() else torch.tensor(float("nan"), dtype=values.dtype)
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def tfidf_cosine_similarity(
    preds: Sequence[str],
    target: Sequence[str],
    reduction: str = "mean",
    unicode: bool = False,
    max_features: int | None = DEFAULT_MAX_FEATURES,
) -> Tensor:
    """TF-IDF cosine similarity per pair, vectorizer fitted on each pair alone.

    ``cos(a, b) = <v_a, v_b>`` with ``v`` the l2-normalised smooth-idf TF-IDF vectors (see the
    module docstring for the exact recipe, equal to the published scikit-learn code).

    Args:
        preds: Generated texts, length N.
        target: Reference texts, length N.
        reduction: ``"mean"`` (scalar) or ``"none"`` (float64 tensor of shape (N,)).
        unicode: Keep non-ASCII letters when cleaning (default ``False``, as published).
        max_features: Vocabulary cap of the per-pair vectorizer (published: 1000).

    Example:
        >>> tfidf_cosine_similarity(["red leather wallet"], ["red wallet"], reduction="none")
        tensor([0.3563], dtype=torch.float64)
    """
    cosine, _ = _tfidf_update(preds, target, unicode, max_features)
    return _reduce(cosine, reduction)


def tfidf_euclidean_similarity(
    preds: Sequence[str],
    target: Sequence[str],
    reduction: str = "mean",
    unicode: bool = False,
    max_features: int | None = DEFAULT_MAX_FEATURES,
) -> Tensor:
    """TF-IDF Euclidean similarity per pair: ``1 / (1 + ||v_a - v_b||_2)``, in (1/3, 1] or 0.

    Args:
        preds: Generated texts, length N.
        target: Reference texts, length N.
        reduction: ``"mean"`` (scalar) or ``"none"`` (float64 tensor of shape (N,)).
        unicode: Keep non-ASCII letters when cleaning (default ``False``, as published).
        max_features: Vocabulary cap of the per-pair vectorizer (published: 1000).
    """
    _, euclidean = _tfidf_update(preds, target, unicode, max_features)
    return _reduce(euclidean, reduction)


def token_overlap(
    preds: Sequence[str], target: Sequence[str], reduction: str = "mean", unicode: bool = False
) -> Tensor:
    """Token overlap per pair: Jaccard ``|A ∩ B| / |A ∪ B|`` of cleaned whitespace token sets.

    Args:
        preds: Generated texts, length N.
        target: Reference texts, length N.
        reduction: ``"mean"`` (scalar) or ``"none"`` (float64 tensor of shape (N,)).
        unicode: Keep non-ASCII letters when cleaning (default ``False``, as published).

    Example:
        >>> token_overlap(["Red wallet!"], ["red leather wallet"], reduction="none")
        tensor([0.6667], dtype=torch.float64)
    """
    return _reduce(_token_overlap_update(preds, target, unicode), reduction)
