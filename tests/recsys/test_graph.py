"""Graph builders: kNN vs dense brute force, hand-checked normalisation, PyG parity, pruning."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from mmpc.recsys import graph
from mmpc.recsys.graph import (
    bipartite_edge_weights,
    degree_sensitive_prune,
    knn_graph,
    knn_neighbours,
    mix_graphs,
    normalized_bipartite_adj,
    to_sparse,
    unique_edges,
)


def dense(indices: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    return to_sparse(indices, values, n).to_dense()


def brute_force_knn(features: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MMRec's dense construction: full n×n cosine matrix, topk, ones, D^-1/2 A D^-1/2."""
    normed = features / features.norm(dim=-1, keepdim=True)
    sim = normed @ normed.T  # (n, n)
    nbrs = sim.topk(k, dim=-1).indices  # (n, k)
    adj = torch.zeros_like(sim).scatter_(1, nbrs, 1.0)  # (n, n)
    inv_sqrt = (adj.sum(1) + 1e-7).pow(-0.5)
    return nbrs, inv_sqrt[:, None] * adj * inv_sqrt[None, :]


@pytest.mark.parametrize("chunk_size", [1, 5, 64])
def test_knn_graph_equals_dense_brute_force(chunk_size: int) -> None:
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(57, 7, generator=gen)
    nbrs, ref = brute_force_knn(features, k=4)
    ours = knn_neighbours(features, k=4, chunk_size=chunk_size)
    assert [set(r) for r in ours.tolist()] == [set(r) for r in nbrs.tolist()]
    indices, values = knn_graph(features, k=4, chunk_size=chunk_size)
    assert indices.shape == (2, 57 * 4)
    assert bool((indices[0] == indices[1]).sum() == 57)  # every item is its own neighbour
    torch.testing.assert_close(dense(indices, values, 57), ref, rtol=0, atol=0)
    torch.testing.assert_close(values, torch.full_like(values, 1 / (4 + 1e-7)))


def test_knn_row_range_equals_full_rows() -> None:
    features = torch.randn(30, 5, generator=torch.Generator().manual_seed(4))
    full = knn_neighbours(features, k=3, chunk_size=7)
    torch.testing.assert_close(knn_neighbours(features, 3, 4, rows=(5, 19)), full[5:19])
    with pytest.raises(ValueError, match="knn rows must satisfy"):
        knn_neighbours(features, 3, rows=(10, 31))


def test_knn_zero_rows_give_no_nan() -> None:
    features = torch.rand(10, 3)
    features[2] = 0.0
    _, values = knn_graph(features, k=3, chunk_size=4)
    assert torch.isfinite(values).all()
    with pytest.raises(ValueError, match="knn k must lie in"):
        knn_neighbours(features, k=11)


def test_normalized_bipartite_adj_hand_checked() -> None:
    # users 0,1; items 0,1,2 (nodes 2,3,4); (0,1) twice counts once; item 2 has no edge
    edges = torch.tensor([[0, 0, 1, 0], [0, 1, 1, 1]])
    indices, values = normalized_bipartite_adj(edges, num_users=2, num_items=3)
    s2, h = 2**-0.5, 0.5
    expected = torch.zeros(5, 5)
    for u, node, v in [(0, 2, s2), (0, 3, h), (1, 3, s2)]:
        expected[u, node] = expected[node, u] = v
    torch.testing.assert_close(dense(indices, values, 5), expected)
    assert indices.shape[1] == 6


def test_normalized_bipartite_adj_matches_pyg_gcn_norm() -> None:
    gen = torch.Generator().manual_seed(1)
    users, items = 40, 25
    edges = unique_edges(
        torch.stack(
            [
                torch.randint(0, users, (300,), generator=gen),
                torch.randint(0, items, (300,), generator=gen),
            ]
        ),
        users,
        items,
    )
    indices, values = normalized_bipartite_adj(edges, users, items)
    both = torch.cat(
        [edges + torch.tensor([[0], [users]]), edges.flip(0) + torch.tensor([[users], [0]])], 1
    )
    ref_index, ref_weight = gcn_norm(both, num_nodes=users + items, add_self_loops=False)
    ref = torch.zeros(users + items, users + items)
    ref[ref_index[0], ref_index[1]] = ref_weight
    torch.testing.assert_close(dense(indices, values, users + items), ref)


def test_unique_edges_checks_ids() -> None:
    with pytest.raises(ValueError, match="item ids must lie in"):
        unique_edges(torch.tensor([[0], [3]]), 2, 3)
    with pytest.raises(ValueError, match=r"shape \(2, E\)"):
        unique_edges(torch.zeros(3, 2, dtype=torch.long), 2, 3)


def test_mix_graphs_is_weighted_sum() -> None:
    a = knn_graph(torch.randn(12, 4), k=3)
    b = knn_graph(torch.randn(12, 6), k=3)
    mixed = mix_graphs([(0.1, a), (0.9, b)], 12)
    torch.testing.assert_close(dense(*mixed, 12), 0.1 * dense(*a, 12) + 0.9 * dense(*b, 12))


def _random_bipartite(seed: int, users: int = 30, items: int = 20, n: int = 200):
    gen = torch.Generator().manual_seed(seed)
    pairs = torch.stack(
        [torch.randint(0, users, (n,), generator=gen), torch.randint(0, items, (n,), generator=gen)]
    )
    return unique_edges(pairs, users, items), users, items


def test_pruning_keeps_count_and_renormalises() -> None:
    edges, users, items = _random_bipartite(2)
    gen = torch.Generator().manual_seed(0)
    indices, values = degree_sensitive_prune(edges, users, items, dropout=0.8, generator=gen)
    keep = int(edges.shape[1] * (1 - 0.8))  # MMRec: int(E * (1 - dropout))
    assert indices.shape[1] == 2 * keep
    adj = dense(indices, values, users + items)
    torch.testing.assert_close(adj, adj.T)
    kept = indices[:, indices[0] < users]
    kept[1] -= users
    key = set(map(tuple, kept.T.tolist()))
    assert len(key) == keep and key <= set(map(tuple, edges.T.tolist()))
    ref = normalized_bipartite_adj(kept, users, items)
    torch.testing.assert_close(adj, dense(*ref, users + items))
    full = degree_sensitive_prune(edges, users, items, dropout=0.0)
    torch.testing.assert_close(
        dense(*full, users + items),
        dense(*normalized_bipartite_adj(edges, users, items), users + items),
    )


@pytest.mark.parametrize("gumbel", [False, True])
def test_pruning_draw_follows_inverse_sqrt_degree(gumbel: bool, monkeypatch) -> None:
    """One kept edge: P(e) = w_e / Σw exactly, with w = 1/sqrt(d_u d_i) (low degree preferred)."""
    if gumbel:
        monkeypatch.setattr(graph, "MULTINOMIAL_MAX", 0)
    # user 0 has 6 edges to items 0..5; users 1..4 each one edge to item 6, item 7, ... (degree 1)
    edges = torch.tensor([[0] * 6 + [1, 2, 3, 4], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])
    weights = bipartite_edge_weights(edges, 5, 10)
    draws = 6000
    counts = torch.zeros(edges.shape[1])
    gen = torch.Generator().manual_seed(3)
    for _ in range(draws):
        counts[graph._sample_without_replacement(weights, 1, gen)] += 1
    expected = weights / weights.sum()
    torch.testing.assert_close(counts / draws, expected, atol=0.02, rtol=0)
    # several kept edges: the low-degree edges are kept more often than the high-degree ones
    kept = torch.zeros(edges.shape[1])
    for _ in range(2000):
        kept[graph._sample_without_replacement(weights, 4, gen)] += 1
    assert kept[6:].min() > kept[:6].max()
