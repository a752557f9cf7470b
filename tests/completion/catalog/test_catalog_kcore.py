"""Repeated pairs and the iterative k-core: property tests against brute force."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mmpc.completion.catalog.kcore import drop_repeats, kcore, kcore_mask

edges_small = st.sets(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=11)
edges_large = st.sets(st.tuples(st.integers(0, 14), st.integers(0, 14)), max_size=120)


def _is_kcore(edges: set[tuple[int, int]], k: int) -> bool:
    users = pd.Series([u for u, _ in edges]).value_counts()
    items = pd.Series([i for _, i in edges]).value_counts()
    return not edges or (users.min() >= k and items.min() >= k)


def _peel(edges: set[tuple[int, int]], k: int) -> set[tuple[int, int]]:
    """Reference: remove one under-degree vertex at a time until none is left."""
    edges = set(edges)
    while True:
        deg: dict[tuple[str, int], int] = {}
        for u, i in edges:
            deg[("u", u)] = deg.get(("u", u), 0) + 1
            deg[("i", i)] = deg.get(("i", i), 0) + 1
        weak = next((v for v, d in sorted(deg.items()) if d < k), None)
        if weak is None:
            return edges
        side, node = weak
        edges = {e for e in edges if (e[0] if side == "u" else e[1]) != node}


def _run(edges: set[tuple[int, int]], k: int) -> set[tuple[int, int]]:
    pairs = sorted(edges)
    frame = pd.DataFrame(
        {"user_id": [f"u{u}" for u, _ in pairs], "item_id": [f"i{i}" for _, i in pairs]}
    )
    out = kcore(frame, k)
    return {(int(u[1:]), int(i[1:])) for u, i in zip(out["user_id"], out["item_id"], strict=True)}


@settings(max_examples=60, deadline=None)
@given(edges=edges_small, k=st.integers(1, 3))
def test_kcore_is_the_greatest_kcore_by_brute_force(edges, k) -> None:
    got = _run(edges, k)
    assert _is_kcore(got, k)
    # the greatest k-core is the largest edge subset that is a k-core (k-cores are closed under
    # union, so it is unique): search all subsets from the largest down
    pairs = sorted(edges)
    best = next(
        set(sub)
        for r in range(len(pairs), -1, -1)
        for sub in combinations(pairs, r)
        if _is_kcore(set(sub), k)
    )
    assert got == best


@settings(max_examples=60, deadline=None)
@given(edges=edges_large, k=st.integers(1, 5))
def test_kcore_matches_one_at_a_time_peeling(edges, k) -> None:
    got = _run(edges, k)
    assert _is_kcore(got, k)
    assert got == _peel(edges, k)


def test_kcore_cascades() -> None:
    # a 5x5 complete block survives; a user with 4 edges goes, then the item it propped up
    edges = {(u, i) for u in range(5) for i in range(5)} | {(5, i) for i in (0, 1, 2, 5)}
    edges |= {(u, 5) for u in range(4)}
    assert _run(edges, 5) == {(u, i) for u in range(5) for i in range(5)}


def test_kcore_mask_empty() -> None:
    empty = np.array([], dtype=np.int64)
    assert kcore_mask(empty, empty, 5).shape == (0,)


def test_drop_repeats_keeps_earliest_then_first_line() -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "b"],
            "item_id": ["x", "x", "x", "y", "y"],
            "timestamp": [30, 10, 10, 5, 5],
            "rating": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    kept, dropped = drop_repeats(frame)
    assert dropped == 3
    assert kept["rating"].tolist() == [2.0, 4.0]  # earliest; ties: the earlier line
