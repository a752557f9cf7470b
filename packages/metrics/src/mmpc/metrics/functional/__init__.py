"""Functional twins of the metric classes (lazily resolved, see ``mmpc.metrics``)."""

from __future__ import annotations

from mmpc.metrics.lazy import lazy_exports

_EXPORTS = {
    "tfidf_cosine_similarity": "mmpc.metrics.functional.text",
    "tfidf_euclidean_similarity": "mmpc.metrics.functional.text",
    "token_overlap": "mmpc.metrics.functional.text",
    "bert_score": "mmpc.metrics.functional.bertscore",
    "peak_signal_noise_ratio": "mmpc.metrics.functional.image",
    "structural_similarity": "mmpc.metrics.functional.image",
    "mean_squared_error": "mmpc.metrics.functional.image",
    "prepare_image_pair": "mmpc.metrics.functional.image_io",
    "lpips": "mmpc.metrics.functional.perceptual",
    "clip_image_similarity": "mmpc.metrics.functional.perceptual",
    "recall_at_k": "mmpc.metrics.functional.ranking",
    "ndcg_at_k": "mmpc.metrics.functional.ranking",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
