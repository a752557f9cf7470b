"""VBPR (He & McAuley, AAAI 2016) as implemented in MMRec ("recommended version").

Scoring, for user u and item i with raw features f_i = [text_i ‖ image_i] (the modalities the
data has, text first as in MMRec):

    x_ui = p_u · [q_i ‖ (W f_i + b)],      p_u ∈ R^{2d}, q_i ∈ R^d, W ∈ R^{d × |f|}

(no bias terms: MMRec's version drops them). Loss per batch of (u, i, j) triples:

    L = -mean log(1e-10 + σ(x_ui - x_uj)) + λ · (‖P_B‖_F + ‖E_B^+‖_F + ‖E_B^-‖_F) / B

where P_B, E_B^± are the batch's user vectors and full item vectors [q ‖ W f + b] (the norms are
NOT squared, and are divided by the batch size: MMRec's ``EmbLoss``). Initialisation as MMRec:
Xavier-uniform P and Q, Xavier-normal W, zero b. MMRec's ``forward`` accepts a dropout that its
training never sets (0.0), so there is none here.

Speed: MMRec projects the features of ALL items for every batch; here only the batch's distinct
items are projected (the loss and its gradients are identical), and evaluation projects all items
once per pass (``prepare_eval``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmpc.metrics.errors import InputError
from mmpc.recsys.models.base import Recommender
from mmpc.recsys.types import MODALITIES

if TYPE_CHECKING:
    from mmpc.recsys.types import InteractionData


def bpr_loss(pos_scores: Tensor, neg_scores: Tensor, gamma: float = 1e-10) -> Tensor:
    """MMRec's BPR loss: ``-mean(log(gamma + sigmoid(pos - neg)))``."""
    return -torch.log(gamma + torch.sigmoid(pos_scores - neg_scores)).mean()


def emb_norm_loss(*embeddings: Tensor) -> Tensor:
    """MMRec's ``EmbLoss``: ``sum_k ‖E_k‖_F / rows(E_last)`` (Frobenius norms, not squared)."""
    total = sum(torch.linalg.vector_norm(e) for e in embeddings)
    return total / embeddings[-1].shape[0]


class VBPR(Recommender):
    """Visual BPR with text + image features (MMRec defaults: d=64, reg_weight=1e-4).

    Args:
        num_users: U.
        num_items: I.
        feature_dims: widths of the modalities to use; at least one is required.
        embedding_dim: d; users get 2d, items d (ID) + d (projected features).
        reg_weight: λ of the embedding-norm regulariser.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        feature_dims: dict[str, int] | None = None,
        embedding_dim: int = 64,
        reg_weight: float = 1e-4,
    ) -> None:
        super().__init__(num_users, num_items, feature_dims)
        if not self.feature_dims:
            raise InputError("VBPR needs item features: feature_dims is empty")
        self.embedding_dim = embedding_dim
        self.reg_weight = reg_weight
        self.modalities = [m for m in MODALITIES if m in self.feature_dims]
        raw_dim = sum(self.feature_dims[m] for m in self.modalities)
        self.user_embedding = nn.Parameter(torch.empty(num_users, 2 * embedding_dim))
        self.item_embedding = nn.Parameter(torch.empty(num_items, embedding_dim))
        self.item_linear = nn.Linear(raw_dim, embedding_dim)
        nn.init.xavier_uniform_(self.user_embedding)
        nn.init.xavier_uniform_(self.item_embedding)
        nn.init.xavier_normal_(self.item_linear.weight)
        nn.init.zeros_(self.item_linear.bias)
        self.register_buffer("raw_features", torch.empty(0, raw_dim), persistent=False)
        self._eval_items: Tensor | None = None

    def setup_data(self, data: InteractionData) -> None:
        super().setup_data(data)
        raw = torch.cat([data.features[m] for m in self.modalities], dim=1)  # (I, |f|)
        self.raw_features = raw.to(self.item_linear.weight.device)

    def item_vectors(self, items: Tensor | None = None) -> Tensor:
        """(n, 2d) item vectors [q_i ‖ W f_i + b] of ``items`` (all items when None)."""
        if items is None:
            return torch.cat([self.item_embedding, self.item_linear(self.raw_features)], dim=1)
        projected = self.item_linear(self.raw_features[items])  # (n, d)
        return torch.cat([self.item_embedding[items], projected], dim=1)

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor | None) -> dict[str, Tensor]:
        if neg_items is None:
            raise ValueError("VBPR is trained with sampled negatives; neg_items is None")
        items, inverse = torch.unique(torch.cat([pos_items, neg_items]), return_inverse=True)
        vectors = self.item_vectors(items)  # (n_unique, 2d)
        pos_e, neg_e = vectors[inverse[: users.numel()]], vectors[inverse[users.numel() :]]
        user_e = self.user_embedding[users]  # (B, 2d)
        mf = bpr_loss((user_e * pos_e).sum(1), (user_e * neg_e).sum(1))
        reg = emb_norm_loss(user_e, pos_e, neg_e)
        return {"loss": mf + self.reg_weight * reg, "bpr": mf.detach(), "reg": reg.detach()}

    def prepare_eval(self) -> None:
        self._eval_items = self.item_vectors()

    def end_eval(self) -> None:
        self._eval_items = None

    def full_scores(self, users: Tensor) -> Tensor:
        items = self._eval_items if self._eval_items is not None else self.item_vectors()
        return F.linear(self.user_embedding[users], items)  # (B, I)
