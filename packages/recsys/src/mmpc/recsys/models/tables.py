"""Per-modality item-feature tables, as BM3 and FREEDOM keep them in MMRec."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from mmpc.recsys.models.base import Recommender

if TYPE_CHECKING:
    from mmpc.recsys.types import InteractionData


class FeatureTableRecommender(Recommender):
    """A :class:`Recommender` whose raw item features sit in one (I, d) table per modality.

    MMRec trains these tables (``nn.Embedding.from_pretrained(..., freeze=False)``); with
    ``train_features=False`` they are non-persistent buffers refilled on every ``setup_data``.
    The tables are named ``<modality>_table``; the persistent ``tables_loaded`` flag makes a
    later ``setup_data`` (``test`` after ``fit``, or a model restored from a checkpoint) keep
    the trained values instead of overwriting them with the initial features.
    """

    def _init_tables(self, train_features: bool) -> None:
        """Register a zero table per modality of ``feature_dims`` (call from ``__init__``)."""
        self.train_features = train_features
        for modality, dim in self.feature_dims.items():
            table = torch.zeros(self.num_items, dim)
            if train_features:
                self.register_parameter(f"{modality}_table", nn.Parameter(table))
            else:
                self.register_buffer(f"{modality}_table", table, persistent=False)
        self.register_buffer("tables_loaded", torch.tensor(False))

    def table(self, modality: str) -> Tensor:
        """(I, d) the (trainable) feature table of ``modality``."""
        return getattr(self, f"{modality}_table")

    def _fill_tables(self, data: InteractionData) -> None:
        """Copy ``data.features`` into the tables unless trained tables are already loaded."""
        if self.train_features and bool(self.tables_loaded):
            return
        with torch.no_grad():
            for modality in self.feature_dims:
                self.table(modality).copy_(data.features[modality])
        self.tables_loaded.fill_(True)
