"""Recommender cores (plain ``nn.Module``s) trained by ``mmpc.recsys.module.RecommenderModule``."""

from mmpc.recsys.models.base import Recommender
from mmpc.recsys.models.bm3 import BM3
from mmpc.recsys.models.freedom import FREEDOM
from mmpc.recsys.models.vbpr import VBPR

__all__ = ["BM3", "FREEDOM", "VBPR", "Recommender"]
