"""FREEDOM: freezing and denoising graph structures for multimodal recommendation.

Zhou & Shen, ACM MM 2023. Faithful to MMRec's ``models/freedom.py`` and
``configs/model/FREEDOM.yaml`` (defaults: embedding 64, ``knn_k`` 10, ``mm_image_weight`` 0.1,
``n_mm_layers`` 1, ``n_ui_layers`` 2, ``dropout`` 0.8, ``reg_weight`` 1e-4, the value MMRec's
reference run uses from its grid [0, 1e-5, 1e-4, 1e-3]). MMRec's config also reads
``lambda_coeff`` (0.9) and ``degree_ratio``, which its code never uses; they are not parameters
here.

Graphs (built once in :meth:`FREEDOM.setup_data` from the train pairs and the *initial* features,
kept as non-persistent buffers, never cached on disk):

* ``S``: frozen item-item graph, ``S = w_v S_v + (1 - w_v) S_t`` with ``S_m`` the normalised
  top-k cosine graph of modality m (:func:`mmpc.recsys.graph.knn_graph`); a single modality
  gives its own graph.
* ``Â``: the normalised user-item graph (evaluation) and, per epoch, ``Â_p``: the degree-
  sensitively pruned graph (:func:`mmpc.recsys.graph.degree_sensitive_prune`), redrawn in
  :meth:`FREEDOM.on_train_epoch_start` with a generator seeded by ``(seed, epoch)``, identical on
  every DDP rank.

Model, for a user-item graph ``G`` (``Â_p`` in training, ``Â`` in evaluation):
``h̃_I = S^{n_mm} E_item``; ``[h_U; h'_I] = mean_{l=0..n_ui} Gˡ [E_user; E_item]``;
``h_I = h'_I + h̃_I``. Per modality, ``x_m = W_m F_m + b_m`` with ``F_m`` the trainable feature
table (MMRec's ``nn.Embedding.from_pretrained(freeze=False)``).

Loss (BPR with ``bpr(u, p, n) = -mean log σ(u·p - u·n)``)::

    L = bpr(h_u, h_i+, h_i-) + reg_weight · Σ_m bpr(h_u, x_m,i+, x_m,i-)

Scores: ``s(u, i) = h_u · h_i`` on the full graph ``Â``.

Speed without changing the maths: projections are computed for the batch's unique items only
when they are fewer than half the items (:func:`mmpc.recsys.models.bm3.project_rows`); the
evaluation embeddings are propagated once per evaluation pass instead of once per user chunk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmpc.metrics.errors import InputError
from mmpc.recsys.graph import (
    bipartite_edge_weights,
    degree_sensitive_prune,
    knn_graph,
    mix_graphs,
    normalized_bipartite_adj,
    spmm,
    to_sparse,
    unique_edges,
)
from mmpc.recsys.models.bm3 import project_rows
from mmpc.recsys.models.tables import FeatureTableRecommender


def bpr_loss(users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    """``-mean(log σ(⟨u, p⟩ - ⟨u, n⟩))`` over the batch; inputs (B, d)."""
    return -F.logsigmoid((users * pos).sum(-1) - (users * neg).sum(-1)).mean()


def default_graph_device() -> torch.device:
    """This process's CUDA device when there is one (kNN search is a big matmul), else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class FREEDOM(FeatureTableRecommender):
    """FREEDOM (MMRec's defaults); see the module docstring for the graphs and the loss.

    Args:
        num_users: U.
        num_items: I.
        feature_dims: ``{"text": d_t, "image": d_v}``; at least one modality.
        embedding_dim: width of the ID embeddings.
        feat_embed_dim: width of the modality projections; None means ``embedding_dim``, which it
            must equal (projections are scored against user embeddings; MMRec: both 64).
        knn_k: neighbours per item in each modality graph.
        mm_image_weight: weight ``w_v`` of the image graph in the mix.
        n_mm_layers: propagation layers over the item-item graph.
        n_ui_layers: propagation layers over the user-item graph.
        dropout: fraction of user-item edges pruned each epoch.
        reg_weight: weight of the modality BPR terms.
        train_features: train the feature tables (MMRec: yes).
        knn_chunk_size: rows per similarity block when building the kNN graphs.
        seed: seed of the per-epoch pruning draws (epoch e uses ``seed + e``); ``None``
            (default) follows the run: torch's initial seed, i.e. the one
            ``seed_everything`` set, so runs with different seeds draw different graphs.
    """

    uses_negatives = True

    def __init__(
        self,
        num_users: int,
        num_items: int,
        feature_dims: dict[str, int] | None = None,
        embedding_dim: int = 64,
        feat_embed_dim: int | None = None,
        knn_k: int = 10,
        mm_image_weight: float = 0.1,
        n_mm_layers: int = 1,
        n_ui_layers: int = 2,
        dropout: float = 0.8,
        reg_weight: float = 1e-4,
        train_features: bool = True,
        knn_chunk_size: int = 1024,
        seed: int | None = None,
    ) -> None:
        super().__init__(num_users, num_items, feature_dims)
        if not self.feature_dims:
            raise InputError("FREEDOM: needs text and/or image features, feature_dims is empty")
        feat_embed_dim = embedding_dim if feat_embed_dim is None else feat_embed_dim
        if feat_embed_dim != embedding_dim:
            raise InputError(
                f"FREEDOM: feat_embed_dim ({feat_embed_dim}) must equal embedding_dim "
                f"({embedding_dim}); projections are scored against user embeddings"
            )
        if not 0.0 <= dropout < 1.0:
            raise InputError(f"FREEDOM: dropout must lie in [0, 1), got {dropout}")
        self.embedding_dim = embedding_dim
        self.knn_k = knn_k
        self.mm_image_weight = mm_image_weight
        self.n_mm_layers = n_mm_layers
        self.n_ui_layers = n_ui_layers
        self.dropout = dropout
        self.reg_weight = reg_weight
        self.knn_chunk_size = knn_chunk_size
        self.seed = seed

        self.user_embedding = nn.Embedding(num_users, embedding_dim)
        self.item_embedding = nn.Embedding(num_items, embedding_dim)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        self.projections = nn.ModuleDict(
            {m: nn.Linear(d, feat_embed_dim) for m, d in self.feature_dims.items()}
        )
        self._init_tables(train_features)
        for name in ("mm", "adj", "pruned", "edges"):
            self.register_buffer(f"{name}_indices", torch.empty(2, 0, dtype=torch.long), False)
            self.register_buffer(f"{name}_values", torch.empty(0), persistent=False)
        self._eval_cache: tuple[Tensor, Tensor] | None = None

    def setup_data(self, data) -> None:
        """Build ``S`` from the features, ``Â`` from the train pairs; fill the tables once.

        Trained tables survive later calls and checkpoint restores (as in :class:`BM3`); the kNN
        graph is always built from ``data.features``, the initial features, as in MMRec.
        """
        super().setup_data(data)
        device = self.adj_values.device
        graphs = {
            m: knn_graph(feat, self.knn_k, self.knn_chunk_size, default_graph_device())
            for m, feat in data.features.items()
            if m in self.feature_dims
        }
        if len(graphs) == 2:
            w = self.mm_image_weight
            mm = mix_graphs([(w, graphs["image"]), (1.0 - w, graphs["text"])], self.num_items)
        else:
            (mm,) = graphs.values()
        self.mm_indices, self.mm_values = mm[0].to(device), mm[1].to(device)
        edges = unique_edges(data.train_edge_index(), self.num_users, self.num_items)
        weights = bipartite_edge_weights(edges, self.num_users, self.num_items)
        self.edges_indices, self.edges_values = edges.to(device), weights.to(device)
        adj = normalized_bipartite_adj(edges, self.num_users, self.num_items)
        self.adj_indices, self.adj_values = adj[0].to(device), adj[1].to(device)
        self.pruned_indices = torch.empty(2, 0, dtype=torch.long, device=device)
        self.pruned_values = torch.empty(0, device=device)
        self._fill_tables(data)

    def on_train_epoch_start(self, epoch: int) -> None:
        """Redraw the pruned user-item graph ``Â_p`` (MMRec's ``pre_epoch_processing``)."""
        self._check_ready()
        seed = self.seed if self.seed is not None else torch.initial_seed()
        generator = torch.Generator().manual_seed(seed + epoch)
        indices, values = degree_sensitive_prune(
            self.edges_indices.cpu(),
            self.num_users,
            self.num_items,
            self.dropout,
            generator=generator,
            weights=self.edges_values.cpu(),
        )
        device = self.edges_values.device
        self.pruned_indices, self.pruned_values = indices.to(device), values.to(device)

    def _check_ready(self) -> None:
        if self.adj_values.numel() == 0:
            raise RuntimeError("FREEDOM: call setup_data(data) before training or evaluation")

    def propagate(self, indices: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """``(h_U (U, d), h_I (I, d))`` over the user-item graph given as (indices, values)."""
        n = self.num_users + self.num_items
        item_graph = to_sparse(self.mm_indices, self.mm_values, self.num_items)
        h = self.item_embedding.weight  # (I, d)
        for _ in range(self.n_mm_layers):
            h = spmm(item_graph, h)
        adj = to_sparse(indices, values, n)
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight])  # (U+I, d)
        layers = [ego]
        for _ in range(self.n_ui_layers):
            ego = spmm(adj, ego)  # (U+I, d)
            layers.append(ego)
        mean = torch.stack(layers).mean(dim=0)  # (U+I, d)
        users, items = mean.split([self.num_users, self.num_items])
        return users, items + h

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor | None) -> dict[str, Tensor]:
        """BPR on the pruned graph plus ``reg_weight`` × the modality BPR terms."""
        if neg_items is None:
            raise ValueError("FREEDOM: loss needs sampled negatives (neg_items is None)")
        self._check_ready()
        if self.pruned_values.numel() == 0:
            self.on_train_epoch_start(0)
        h_users, h_items = self.propagate(self.pruned_indices, self.pruned_values)
        u = h_users[users]  # (B, d)
        loss_mf = bpr_loss(u, h_items[pos_items], h_items[neg_items])
        parts = {"loss_mf": loss_mf}
        both = torch.cat([pos_items, neg_items])  # (2B,)
        uniq, inverse = torch.unique(both, return_inverse=True)
        pos_idx, neg_idx = inverse.split(pos_items.numel())
        modal = torch.zeros((), device=u.device)
        for modality, proj in self.projections.items():
            x = project_rows(proj, self.table(modality), uniq)  # (B', d)
            loss_m = bpr_loss(u, x[pos_idx], x[neg_idx])
            parts[f"loss_{modality}"] = loss_m
            modal = modal + loss_m
        total = loss_mf + self.reg_weight * modal
        return {"loss": total, **{k: v.detach() for k, v in parts.items()}}

    def prepare_eval(self) -> None:
        """Propagate once over the full graph ``Â`` for the evaluation pass."""
        self._check_ready()
        self._eval_cache = self.propagate(self.adj_indices, self.adj_values)

    def end_eval(self) -> None:
        self._eval_cache = None

    def full_scores(self, users: Tensor) -> Tensor:
        """(B, I) scores ``h_u · h_i`` on the full user-item graph."""
        if self._eval_cache is None:
            self._check_ready()
            h_users, h_items = self.propagate(self.adj_indices, self.adj_values)
        else:
            h_users, h_items = self._eval_cache
        return h_users[users] @ h_items.T  # (B, I)
