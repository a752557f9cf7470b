"""Recommender cores (plain ``nn.Module``s) trained by ``mmpc.recsys.module.RecommenderModule``."""

from mmpc.recsys.models.base import MODALITIES, Recommender
from mmpc.recsys.models.vbpr import VBPR

__all__ = ["MODALITIES", "VBPR", "Recommender"]
