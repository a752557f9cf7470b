"""Functional twins of the metric classes (lazily resolved, see ``mmpc.metrics``)."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "tfidf_cosine_similarity": "mmpc.metrics.functional.text",
    "tfidf_euclidean_similarity": "mmpc.metrics.functional.text",
    "token_overlap": "mmpc.metrics.functional.text",
    "bert_score": "mmpc.metrics.functional.bertscore",
    "peak_signal_noise_ratio": "mmpc.metrics.functional.image",
    "structural_similarity": "mmpc.metrics.functional.image",
    "mean_squared_error": "mmpc.metrics.functional.image",
    "prepare_image_pair": "mmpc.metrics.functional.image",
    "lpips": "mmpc.metrics.functional.perceptual",
    "clip_image_similarity": "mmpc.metrics.functional.perceptual",
    "recall_at_k": "mmpc.metrics.functional.ranking",
    "ndcg_at_k": "mmpc.metrics.functional.ranking",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mmpc.metrics.functional' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
