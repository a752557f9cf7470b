"""Graph builders for the graph recommenders (BM3, FREEDOM), following MMRec's maths.

Graphs are kept as ``(indices (2, nnz) int64, values (nnz,) float32)`` pairs, coalesced (sorted
row-major, no duplicates), so a model can hold them as plain non-persistent buffers (they move
with ``.to()`` and survive DDP buffer broadcasts) and turn them into a torch sparse COO matrix at
no cost with :func:`to_sparse`. Products use ``torch.sparse.mm``.

What is built here:

* :func:`normalized_bipartite_adj`: the symmetric user-item graph of LightGCN / MMRec,
  ``Â = D^{-1/2} A D^{-1/2}`` over the ``(U + I) × (U + I)`` matrix
  ``A = [[0, R], [Rᵀ, 0]]`` with ``D_vv = deg(v) + 1e-7`` (MMRec's epsilon).
* :func:`knn_neighbours` / :func:`knn_graph`: FREEDOM's frozen item-item graph. Cosine similarity
  of the L2-normalised features, the top-``k`` columns of every row (the item itself included, as
  in MMRec), edge values ``(r_i r_j)^{-1/2}`` with ``r`` the row degree plus 1e-7, i.e. ``1/k`` on
  every edge. Rows are processed in chunks (``chunk × I`` similarities then ``topk``), so the dense
  ``I × I`` matrix never exists.
* :func:`mix_graphs`: a weighted sum of graphs (FREEDOM: ``0.1 · image + 0.9 · text``).
* :func:`degree_sensitive_prune`: FREEDOM's denoising: keep ``int(E · (1 - dropout))`` user-item
  edges drawn without replacement with probability proportional to ``1/sqrt(d_u d_i)`` (low-degree
  pairs are kept more often), then renormalise the kept graph with its own degrees.

Zero feature rows: MMRec divides by the row norm and gets NaN; here the norm is clamped at 1e-12,
so a zero row has similarity 0 with every item (its neighbours are then an arbitrary tie set).
"""

from __future__ import annotations

import torch
from torch import Tensor
from tqdm.auto import tqdm

EPS_DEGREE = 1e-7
"""MMRec adds this to every degree before ``deg^{-1/2}`` (avoids division by zero)."""

MULTINOMIAL_MAX = 2**24
"""Most categories ``torch.multinomial`` accepts; larger draws use the Gumbel-top-k trick."""


def spmm(adj: Tensor, dense: Tensor) -> Tensor:
    """``adj @ dense`` for a sparse ``adj``, always in ``adj``'s (float32) precision.

    Under autocast (Lightning ``precision="bf16-mixed"``) torch runs ``torch.sparse.mm`` in bf16
    and its backward then fails on the float32 sparse matrix ("expected scalar type Float but
    found BFloat16", torch 2.x). Here the product runs with autocast off, on ``dense`` cast to
    ``adj``'s dtype: a no-op in full precision.
    """
    with torch.autocast(device_type=dense.device.type, enabled=False):
        return torch.sparse.mm(adj, dense.to(adj.dtype))


def to_sparse(indices: Tensor, values: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Wrap coalesced ``(indices, values)`` as a torch sparse COO matrix (no copy, no sorting).

    Args:
        indices: (2, nnz) int64, row-major sorted and unique (as returned by this module).
        values: (nnz,) edge values.
        size: ``n`` for an ``n × n`` matrix, or ``(rows, cols)``.
    """
    shape = (size, size) if isinstance(size, int) else size
    return torch.sparse_coo_tensor(
        indices, values, shape, is_coalesced=True, check_invariants=False
    )


def coalesce_edges(indices: Tensor, values: Tensor, num_rows: int, num_cols: int) -> tuple:
    """Sort ``(indices, values)`` row-major and sum the values of duplicate entries.

    Returns:
        ``(indices (2, nnz'), values (nnz',))`` with unique, sorted entries.
    """
    key = indices[0] * num_cols + indices[1]  # (nnz,)
    unique, inverse = torch.unique(key, sorted=True, return_inverse=True)
    summed = torch.zeros(unique.numel(), dtype=values.dtype, device=values.device)
    summed.index_add_(0, inverse, values)
    return torch.stack([unique // num_cols, unique % num_cols]), summed


def unique_edges(edge_index: Tensor, num_users: int, num_items: int) -> Tensor:
    """(2, E') user-item pairs with duplicates removed, sorted by user then item.

    Raises:
        ValueError: an id outside ``[0, num_users)`` / ``[0, num_items)``.
    """
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
    users, items = edge_index.long()
    if users.numel() and (users.min() < 0 or users.max() >= num_users):
        raise ValueError(f"edge_index: user ids must lie in [0, {num_users})")
    if items.numel() and (items.min() < 0 or items.max() >= num_items):
        raise ValueError(f"edge_index: item ids must lie in [0, {num_items})")
    key = torch.unique(users * num_items + items, sorted=True)  # (E',)
    return torch.stack([key // num_items, key % num_items])


def bipartite_edge_weights(edge_index: Tensor, num_users: int, num_items: int) -> Tensor:
    """(E,) ``1 / sqrt((d_u + 1e-7)(d_i + 1e-7))`` per user-item edge (degrees from the edges).

    This is both the value of the edge in the normalised graph and FREEDOM's sampling weight.
    """
    users, items = edge_index
    deg_u = torch.bincount(users, minlength=num_users).to(torch.float32) + EPS_DEGREE  # (U,)
    deg_i = torch.bincount(items, minlength=num_items).to(torch.float32) + EPS_DEGREE  # (I,)
    return deg_u.pow(-0.5)[users] * deg_i.pow(-0.5)[items]  # (E,)


def _symmetric_bipartite(
    edge_index: Tensor, values: Tensor, num_users: int, num_items: int
) -> tuple[Tensor, Tensor]:
    """Both directions of user-item edges in the ``(U + I)`` node space, coalesced."""
    users, items = edge_index
    rows = torch.cat([users, items + num_users])  # (2E,)
    cols = torch.cat([items + num_users, users])  # (2E,)
    n = num_users + num_items
    return coalesce_edges(torch.stack([rows, cols]), torch.cat([values, values]), n, n)


def normalized_bipartite_adj(
    edge_index: Tensor, num_users: int, num_items: int
) -> tuple[Tensor, Tensor]:
    """LightGCN / MMRec normalised user-item graph ``D^{-1/2} A D^{-1/2}``, ``(U+I) × (U+I)``.

    Args:
        edge_index: (2, E) train (user, item) pairs; duplicates count once (as MMRec's ``A > 0``).
        num_users: U.
        num_items: I.

    Returns:
        ``(indices (2, 2E'), values (2E',))``; node ids: users ``0..U-1``, items ``U..U+I-1``.
    """
    edges = unique_edges(edge_index, num_users, num_items)
    values = bipartite_edge_weights(edges, num_users, num_items)
    return _symmetric_bipartite(edges, values, num_users, num_items)


def degree_sensitive_prune(
    edge_index: Tensor,
    num_users: int,
    num_items: int,
    dropout: float,
    generator: torch.Generator | None = None,
    weights: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """FREEDOM's degree-sensitive edge pruning, renormalised (one draw; call once per epoch).

    Keeps ``m = int(E · (1 - dropout))`` edges sampled without replacement with
    ``P(e = (u, i)) ∝ 1 / sqrt(d_u d_i)`` (full-graph degrees), then returns the normalised
    symmetric graph of the kept edges, ``value(u, i) = ((d'_u + 1e-7)(d'_i + 1e-7))^{-1/2}`` with
    the kept graph's degrees ``d'``. ``dropout <= 0`` returns the full normalised graph.

    Args:
        edge_index: (2, E) unique train (user, item) pairs (see :func:`unique_edges`).
        num_users: U.
        num_items: I.
        dropout: fraction of edges to drop, in ``[0, 1)``.
        generator: random source of the draw (a CPU generator when the edges are on the CPU).
        weights: (E,) precomputed :func:`bipartite_edge_weights` of ``edge_index``.

    Returns:
        ``(indices (2, 2m), values (2m,))`` in the ``(U + I)`` node space.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    if weights is None:
        weights = bipartite_edge_weights(edge_index, num_users, num_items)
    if dropout <= 0.0:
        return _symmetric_bipartite(edge_index, weights, num_users, num_items)
    keep = int(edge_index.shape[1] * (1.0 - dropout))
    kept = _sample_without_replacement(weights, keep, generator)  # (m,)
    kept_edges = edge_index[:, kept]  # (2, m)
    values = bipartite_edge_weights(kept_edges, num_users, num_items)
    return _symmetric_bipartite(kept_edges, values, num_users, num_items)


def _sample_without_replacement(
    weights: Tensor, num: int, generator: torch.Generator | None
) -> Tensor:
    """``num`` distinct indices drawn one after another with ``P ∝ weights`` (MMRec's draw).

    ``torch.multinomial`` (what MMRec calls) handles up to 2^24 categories; beyond that the
    Gumbel-top-k trick draws from the same distribution: ``argtop_num(log w + Gumbel)``.
    """
    if weights.numel() <= MULTINOMIAL_MAX:
        return torch.multinomial(weights, num, replacement=False, generator=generator)
    uniform = torch.rand(weights.shape, generator=generator, device=weights.device)
    gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-20)))
    return (weights.log() + gumbel).topk(num).indices


def knn_neighbours(
    features: Tensor,
    k: int,
    chunk_size: int = 1024,
    device: torch.device | str | None = None,
    progress: bool = False,
    rows: tuple[int, int] | None = None,
) -> Tensor:
    """(n, k) indices of each row's top-``k`` cosine neighbours (itself included), in chunks.

    ``sim = X̂[rows] X̂ᵀ`` with ``X̂ = X / max(||X||, 1e-12)``, computed ``chunk_size`` rows at a
    time, so peak memory is ``X̂`` plus ``chunk_size × n`` floats, never ``n × n``.

    Args:
        features: (n, d) item features (any float dtype; computed in float32).
        k: neighbours per row, ``1 <= k <= n``.
        chunk_size: rows per similarity block.
        device: where to compute (default: the features' device); the result is returned there.
        progress: show a tqdm bar over chunks.
        rows: ``(start, stop)``: only these query rows (against all n items), returning
            ``(stop - start, k)``; e.g. to split the build over processes.
    """
    n = features.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"knn k must lie in [1, {n}] for {n} items, got {k}")
    dev = features.device if device is None else torch.device(device)
    normed = features.to(device=dev, dtype=torch.float32)
    normed = normed / normed.norm(p=2, dim=-1, keepdim=True).clamp_min(1e-12)  # (n, d)
    first, last = (0, n) if rows is None else rows
    if not 0 <= first <= last <= n:
        raise ValueError(f"knn rows must satisfy 0 <= start <= stop <= {n}, got {rows}")
    out = torch.empty(last - first, k, dtype=torch.long, device=dev)
    starts = range(first, last, chunk_size)
    for start in tqdm(starts, desc="kNN graph", disable=not progress, leave=False):
        stop = min(start + chunk_size, last)
        sim = normed[start:stop] @ normed.T  # (c, n)
        out[start - first : stop - first] = sim.topk(k, dim=-1).indices  # (c, k)
        del sim
    return out


def knn_graph(
    features: Tensor,
    k: int,
    chunk_size: int = 1024,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> tuple[Tensor, Tensor]:
    """MMRec's normalised item-item kNN graph (``n × n``, ``n·k`` edges, row i → its neighbours).

    Edge values are ``(r_i + 1e-7)^{-1/2} (r_j + 1e-7)^{-1/2}`` with ``r`` the row degrees (``k``
    for every row), i.e. ``1 / (k + 1e-7)`` everywhere, as MMRec's
    ``compute_normalized_laplacian``. Computed on ``device`` (default: the features'), returned on
    the features' device.

    Returns:
        ``(indices (2, n·k), values (n·k,))``, coalesced.
    """
    n = features.shape[0]
    nbrs = knn_neighbours(features, k, chunk_size, device, progress).to(features.device)
    rows = torch.arange(n, device=features.device).repeat_interleave(k)  # (n·k,)
    indices = torch.stack([rows, nbrs.reshape(-1)])
    row_deg = torch.full((n,), float(k), device=features.device) + EPS_DEGREE  # (n,)
    values = row_deg.pow(-0.5)[indices[0]] * row_deg.pow(-0.5)[indices[1]]
    return coalesce_edges(indices, values, n, n)


def mix_graphs(graphs: list[tuple[float, tuple[Tensor, Tensor]]], n: int) -> tuple[Tensor, Tensor]:
    """Weighted sum ``Σ_m w_m G_m`` of ``n × n`` graphs given as ``(w_m, (indices, values))``.

    Entries present in several graphs add up (a sparse matrix sum).
    """
    if not graphs:
        raise ValueError("mix_graphs needs at least one graph")
    indices = torch.cat([g[0] for _, g in graphs], dim=1)
    values = torch.cat([w * g[1] for w, g in graphs])
    return coalesce_edges(indices, values, n, n)
