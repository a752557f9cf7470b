"""Recommender cores (plain ``nn.Module``s) trained by ``mmpc.recsys.module.RecommenderModule``."""

from mmpc.recsys.models.base import MODALITIES, Recommender

__all__ = ["MODALITIES", "Recommender"]
