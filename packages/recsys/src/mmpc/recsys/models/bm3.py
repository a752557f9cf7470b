"""BM3: Bootstrap latent representations for multimodal recommendation (Zhou et al., WWW 2023).

Faithful to MMRec's ``models/bm3.py`` and ``configs/model/BM3.yaml`` (defaults: embedding 64,
``n_layers`` 1, ``reg_weight`` 0.1, ``dropout`` 0.5, ``cl_weight`` 2.0, no negative sampling).

Model. LightGCN propagation of ``E⁰ = [E_user; E_item]`` over the normalised user-item graph
``Â`` (:func:`mmpc.recsys.graph.normalized_bipartite_adj`), mean over layers 0..L, plus a
residual on items: ``h_u = mean_l(Âˡ E⁰)_u``, ``h_i = mean_l(Âˡ E⁰)_i + E_item,i``. Each modality
m has a trainable feature table ``F_m`` (initialised with the item features, trained as MMRec's
``nn.Embedding.from_pretrained(freeze=False)``) and a projection ``x_m,i = W_m F_m,i + b_m``.
A shared predictor ``p(·)`` (a ``Linear(64, 64)``) maps every online view.

Loss for a batch of observed pairs (u, i), with ``cos`` the cosine similarity, ``sg`` stop-grad and
``drop`` element dropout with rate ``dropout`` (rescaled by ``1/(1-dropout)``) giving the target
views:

    L = [1 - cos(p(h_u), sg drop(h_i))] + [1 - cos(p(h_i), sg drop(h_u))]
        + reg_weight · (‖h_U‖_F + ‖h_I‖_F) / I
        + cl_weight · Σ_m ([1 - cos(p(x_m,i), sg drop(h_i))] + [1 - cos(p(x_m,i), sg drop(x_m,i))])

each bracket averaged over the batch; ``h_U`` / ``h_I`` are all users' / items' embeddings
(MMRec's ``EmbLoss``: Frobenius norms, not squared, divided by the number of items). Scores:
``s(u, i) = p(h_u) · p(h_i)``.

Speed without changing the maths. MMRec predicts every item and user in every batch and then
indexes the batch rows; here only the batch's unique rows are predicted, and projected when they
are fewer than half the items (identical values and gradients: other rows never reach the
loss). A target view is dropped out once per unique user / item and shared by its repeats in the
batch, exactly like MMRec's whole-table dropout followed by indexing. The feature tables stay
dense trainable parameters, so Adam updates every row each step as in MMRec (rows outside the
batch move through Adam's momentum); see ``docs/recsys-graph-models.md`` for the cost.
``train_features=False`` freezes the tables instead: faster, but no longer MMRec's model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmpc.metrics.errors import InputError
from mmpc.recsys.graph import normalized_bipartite_adj, spmm, to_sparse
from mmpc.recsys.models.tables import FeatureTableRecommender


def unique_dropout(table: Tensor, rows: Tensor, p: float) -> Tensor:
    """``F.dropout(table, p)[rows]`` computed on the unique rows only (same distribution).

    Args:
        table: (N, d) values (no gradient needed; targets).
        rows: (B,) row ids, possibly repeated.
        p: dropout rate.

    Returns:
        (B, d): each distinct row gets one mask, shared by its repeats.
    """
    uniq, inverse = torch.unique(rows, return_inverse=True)
    return F.dropout(table[uniq], p, training=True)[inverse]  # (B, d)


def project_rows(proj: nn.Linear, table: Tensor, rows: Tensor) -> Tensor:
    """``proj(table)[rows]`` for unique ``rows``, computed the cheaper of two exact ways.

    Gathering the rows first saves the product for the other rows but copies the rows and
    scatters their gradient back; when the rows cover at least half the table, projecting the
    whole table and indexing (MMRec's way) is faster on CPU (measured). Values and gradients are
    the same either way.

    Args:
        proj: the modality projection.
        table: (I, d) feature table.
        rows: (B',) unique row ids.

    Returns:
        (B', d_out) projections.
    """
    if 2 * rows.numel() >= table.shape[0]:
        return proj(table)[rows]  # (B', d_out)
    return proj(table[rows])  # (B', d_out)


class BM3(FeatureTableRecommender):
    """BM3 (MMRec's defaults); see the module docstring for the exact loss.

    Args:
        num_users: U.
        num_items: I.
        feature_dims: ``{"text": d_t, "image": d_v}``; at least one modality.
        embedding_dim: width of the ID embeddings, projections and predictor (MMRec uses
            ``embedding_size`` for the projections too).
        n_layers: LightGCN layers.
        reg_weight: weight of the embedding-norm regulariser.
        cl_weight: weight of the multimodal bootstrap terms.
        dropout: dropout rate of the target views.
        train_features: train the feature tables (MMRec: yes).
    """

    uses_negatives = False

    def __init__(
        self,
        num_users: int,
        num_items: int,
        feature_dims: dict[str, int] | None = None,
        embedding_dim: int = 64,
        n_layers: int = 1,
        reg_weight: float = 0.1,
        cl_weight: float = 2.0,
        dropout: float = 0.5,
        train_features: bool = True,
    ) -> None:
        super().__init__(num_users, num_items, feature_dims)
        if not self.feature_dims:
            raise InputError("BM3: needs text and/or image features, feature_dims is empty")
        if not 0.0 <= dropout < 1.0:
            raise InputError(f"BM3: dropout must lie in [0, 1), got {dropout}")
        self.embedding_dim = embedding_dim
        self.n_layers = n_layers
        self.reg_weight = reg_weight
        self.cl_weight = cl_weight
        self.dropout = dropout

        self.user_embedding = nn.Embedding(num_users, embedding_dim)
        self.item_embedding = nn.Embedding(num_items, embedding_dim)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        self.predictor = nn.Linear(embedding_dim, embedding_dim)
        nn.init.xavier_normal_(self.predictor.weight)
        self.projections = nn.ModuleDict()
        for modality, dim in self.feature_dims.items():
            proj = nn.Linear(dim, embedding_dim)
            nn.init.xavier_normal_(proj.weight)
            self.projections[modality] = proj
        self._init_tables(train_features)
        self.register_buffer("adj_indices", torch.empty(2, 0, dtype=torch.long), persistent=False)
        self.register_buffer("adj_values", torch.empty(0), persistent=False)
        self._eval_cache: tuple[Tensor, Tensor] | None = None

    def setup_data(self, data) -> None:
        """Build ``Â`` from the train pairs; load the features into the tables (first call only).

        A later call (``test`` after ``fit``, or on a model restored from a checkpoint, whose
        ``tables_loaded`` buffer is set) keeps the trained tables; frozen tables are refilled.
        """
        super().setup_data(data)
        indices, values = normalized_bipartite_adj(
            data.train_edge_index(), self.num_users, self.num_items
        )
        device = self.adj_values.device
        self.adj_indices, self.adj_values = indices.to(device), values.to(device)
        self._fill_tables(data)

    def propagate(self) -> tuple[Tensor, Tensor]:
        """``(h_U (U, d), h_I (I, d))``: layer-mean LightGCN embeddings, items plus their IDs."""
        if self.adj_values.numel() == 0:
            raise RuntimeError("BM3: call setup_data(data) before training or evaluation")
        n = self.num_users + self.num_items
        adj = to_sparse(self.adj_indices, self.adj_values, n)
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight])  # (U+I, d)
        layers = [ego]
        for _ in range(self.n_layers):
            ego = spmm(adj, ego)  # (U+I, d)
            layers.append(ego)
        mean = torch.stack(layers).mean(dim=0)  # (U+I, d)
        users, items = mean.split([self.num_users, self.num_items])
        return users, items + self.item_embedding.weight

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor | None) -> dict[str, Tensor]:
        """BM3 loss of a batch of observed pairs (``neg_items`` is ignored)."""
        h_users, h_items = self.propagate()  # (U, d), (I, d)
        with torch.no_grad():
            u_target = unique_dropout(h_users, users, self.dropout)  # (B, d)
            i_target = unique_dropout(h_items, pos_items, self.dropout)  # (B, d)
        u_online = self.predictor(h_users[users])  # (B, d)
        i_online = self.predictor(h_items[pos_items])  # (B, d)
        loss_ui = 1 - F.cosine_similarity(u_online, i_target, dim=-1).mean()
        loss_iu = 1 - F.cosine_similarity(i_online, u_target, dim=-1).mean()
        reg = (h_users.norm(p=2) + h_items.norm(p=2)) / self.num_items
        parts = {"loss_ui": loss_ui, "loss_iu": loss_iu, "reg": reg}

        uniq, inverse = torch.unique(pos_items, return_inverse=True)
        modal = torch.zeros((), device=h_items.device)
        for modality, proj in self.projections.items():
            x = project_rows(proj, self.table(modality), uniq)  # (B', d) online projection
            with torch.no_grad():
                x_target = F.dropout(x.detach(), self.dropout, training=True)[inverse]  # (B, d)
            x_online = self.predictor(x)[inverse]  # (B, d)
            loss_m = 1 - F.cosine_similarity(x_online, i_target, dim=-1).mean()
            loss_mm = 1 - F.cosine_similarity(x_online, x_target, dim=-1).mean()
            parts[f"loss_{modality}"] = loss_m
            parts[f"loss_{modality}_{modality}"] = loss_mm
            modal = modal + loss_m + loss_mm
        total = loss_ui + loss_iu + self.reg_weight * reg + self.cl_weight * modal
        return {"loss": total, **{k: v.detach() for k, v in parts.items()}}

    def prepare_eval(self) -> None:
        """Cache ``p(h_U)`` and ``p(h_I)`` for the evaluation pass."""
        h_users, h_items = self.propagate()
        self._eval_cache = (self.predictor(h_users), self.predictor(h_items))

    def end_eval(self) -> None:
        self._eval_cache = None

    def full_scores(self, users: Tensor) -> Tensor:
        """(B, I) scores ``p(h_u) · p(h_i)`` (cached by ``prepare_eval`` when called)."""
        if self._eval_cache is None:
            h_users, h_items = self.propagate()
            return self.predictor(h_users[users]) @ self.predictor(h_items).T
        u_pred, i_pred = self._eval_cache
        return u_pred[users] @ i_pred.T  # (B, I)
