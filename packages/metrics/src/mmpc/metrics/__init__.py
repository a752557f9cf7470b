"""mmpc.metrics: every MMPCBench metric as a torchmetrics class with a functional twin.

Names are resolved lazily (PEP 562) so that ``import mmpc.metrics`` stays cheap and a user who
only needs ranking metrics never imports open_clip or bert-score.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "TFIDFCosineSimilarity": "mmpc.metrics.text",
    "TFIDFEuclideanSimilarity": "mmpc.metrics.text",
    "TokenOverlap": "mmpc.metrics.text",
    "BERTScore": "mmpc.metrics.bertscore",
    "PSNR": "mmpc.metrics.image",
    "SSIM": "mmpc.metrics.image",
    "MSE": "mmpc.metrics.image",
    "LPIPS": "mmpc.metrics.perceptual",
    "CLIPImageSimilarity": "mmpc.metrics.perceptual",
    "RecallAtK": "mmpc.metrics.ranking",
    "NDCGAtK": "mmpc.metrics.ranking",
    "mean_std": "mmpc.metrics.aggregate",
    "prepare_image_pair": "mmpc.metrics.functional.image",
    "MissingWeightsError": "mmpc.metrics.errors",
    "ImageReadError": "mmpc.metrics.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mmpc.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
