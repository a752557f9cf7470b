"""mmpc.metrics: every MMPCBench metric as a torchmetrics class with a functional twin.

Names are resolved lazily (PEP 562) so that ``import mmpc.metrics`` stays cheap and a user who
only needs ranking metrics never imports open_clip or bert-score.
"""

from __future__ import annotations

from mmpc.metrics.lazy import lazy_exports

_EXPORTS = {
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
    "prepare_image_pair": "mmpc.metrics.functional.image_io",
    "MissingWeightsError": "mmpc.metrics.errors",
    "ImageReadError": "mmpc.metrics.errors",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
