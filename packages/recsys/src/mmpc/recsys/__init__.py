"""mmpc.recsys: VBPR, BM3 and FREEDOM as one shared LightningModule, plus data and features.

Names are resolved lazily (PEP 562): ``from mmpc.recsys import VBPR`` imports only what it needs.
See ``docs/recsys.md``.
"""

from __future__ import annotations

from mmpc.metrics.lazy import lazy_exports

_EXPORTS = {
    "Recommender": "mmpc.recsys.models.base",
    "VBPR": "mmpc.recsys.models.vbpr",
    "BM3": "mmpc.recsys.models.bm3",
    "FREEDOM": "mmpc.recsys.models.freedom",
    "RecommenderModule": "mmpc.recsys.module",
    "summarize_runs": "mmpc.recsys.module",
    "InteractionData": "mmpc.recsys.types",
    "InteractionDataModule": "mmpc.recsys.data",
    "TextEncoder": "mmpc.recsys.features",
    "ImageEncoder": "mmpc.recsys.features",
    "extract_features": "mmpc.recsys.features",
    "write_feature_folder": "mmpc.recsys.features",
    "Condition": "mmpc.recsys.conditions",
    "condition_features": "mmpc.recsys.conditions",
    "read_condition": "mmpc.recsys.conditions",
    "save_condition": "mmpc.recsys.conditions",
    "write_condition": "mmpc.recsys.conditions",
    "write_imputed_condition": "mmpc.recsys.conditions",
    "impute": "mmpc.recsys.conditions",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
