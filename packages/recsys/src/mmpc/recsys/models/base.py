"""The interface every multimodal recommender core implements.

A :class:`Recommender` is a plain ``nn.Module`` holding the model's parameters, its own training
loss and its scoring rule. Everything else (BPR batches, the optimiser, full-ranking evaluation,
logging, checkpoints, early stopping, DDP) lives in :class:`mmpc.recsys.module.RecommenderModule`,
so a new model is a few dozen lines.

Life cycle, as driven by ``RecommenderModule``:

1. ``__init__(num_users, num_items, feature_dims, **hyperparameters)``: parameters only, no I/O.
   ``num_users`` / ``num_items`` / ``feature_dims`` come from
   :class:`mmpc.recsys.data.InteractionDataModule` (LightningCLI links them).
2. ``setup_data(data)``: called once per fit/test from ``LightningModule.setup`` with the
   :class:`mmpc.recsys.types.InteractionData`. Build graphs and feature buffers here from the
   TRAIN interactions and the features only, as non-persistent buffers (never cached to disk, so
   swapped features can never meet a stale graph). Call ``super().setup_data(data)`` first: it
   checks the sizes.
3. Per epoch: ``on_train_epoch_start(epoch)`` (e.g. FREEDOM resamples its pruned graph), then per
   batch ``loss(users, pos_items, neg_items)``. ``neg_items`` is ``None`` when
   ``uses_negatives`` is False (BM3). The returned dict must hold ``"loss"``; every other entry
   is logged as ``train/<name>``.
4. Per evaluation pass: ``prepare_eval()`` once (e.g. propagate the graph and cache the final
   user/item embeddings), ``full_scores(users)`` per chunk of users, ``end_eval()`` once (drop
   the cache). Evaluation runs under ``torch.no_grad()`` with the module in eval mode.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor, nn

from mmpc.metrics.errors import InputError
from mmpc.recsys.types import MODALITIES, InteractionData


class Recommender(nn.Module, ABC):
    """A multimodal recommender core; training/eval/logging live in RecommenderModule.

    Args:
        num_users: number of users U (ids 0..U-1).
        num_items: number of items I (ids 0..I-1).
        feature_dims: feature width per modality, e.g. ``{"text": 384, "image": 4096}``; a
            modality the data does not provide is absent. Models that need features raise a
            one-line ``ValueError`` when none are given.

    Attributes:
        uses_negatives: whether ``loss`` needs sampled negatives (BPR); BM3 sets False.
    """

    uses_negatives: bool = True

    def __init__(
        self, num_users: int, num_items: int, feature_dims: dict[str, int] | None = None
    ) -> None:
        super().__init__()
        if num_users <= 0 or num_items <= 0:
            raise InputError(
                f"{type(self).__name__}: num_users and num_items must be positive, "
                f"got {num_users} and {num_items}"
            )
        unknown = set(feature_dims or {}) - set(MODALITIES)
        if unknown:
            raise InputError(
                f"{type(self).__name__}: unknown modalities {sorted(unknown)}; use {MODALITIES}"
            )
        self.num_users = int(num_users)
        self.num_items = int(num_items)
        self.feature_dims: dict[str, int] = {
            m: int(d) for m, d in (feature_dims or {}).items() if d
        }

    def setup_data(self, data: InteractionData) -> None:
        """Check that ``data`` matches the sizes this model was built for.

        Subclasses override this to build graphs and feature buffers (calling super first).

        Raises:
            ValueError: one line naming the mismatching size.
        """
        name = type(self).__name__
        if data.num_users != self.num_users or data.num_items != self.num_items:
            raise ValueError(
                f"{name}: built for {self.num_users} users / {self.num_items} items but the data "
                f"has {data.num_users} / {data.num_items}"
            )
        for modality, dim in self.feature_dims.items():
            feat = data.features.get(modality)
            if feat is None or feat.shape[1] != dim:
                got = None if feat is None else tuple(feat.shape)
                raise ValueError(
                    f"{name}: expects {modality} features of width {dim}, the data has {got}"
                )

    @abstractmethod
    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor | None) -> dict[str, Tensor]:
        """Training loss of one batch.

        Args:
            users: (B,) user ids.
            pos_items: (B,) items the users trained on.
            neg_items: (B,) sampled items the users did not train on, or None.

        Returns:
            ``{"loss": scalar, **parts}``; the parts are logged as ``train/<name>``.
        """

    @abstractmethod
    def full_scores(self, users: Tensor) -> Tensor:
        """(B, I) preference scores of ``users`` (B,) over all items; higher ranks first."""

    def on_train_epoch_start(self, epoch: int) -> None:
        """Hook at the start of each training epoch (default: nothing)."""

    def prepare_eval(self) -> None:
        """Hook before an evaluation pass, e.g. to cache the final embeddings (default: nothing)."""

    def end_eval(self) -> None:
        """Hook after an evaluation pass, e.g. to drop cached embeddings (default: nothing)."""
