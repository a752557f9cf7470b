"""Duplicate removal and iterative k-core filtering of a user-item interaction table."""

from __future__ import annotations

import numpy as np
import pandas as pd


def drop_repeats(interactions: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep the first interaction of each repeated (user_id, item_id) pair.

    "First" is the earliest ``timestamp``; equal timestamps keep the earlier row (stable sort), so
    for a file read in order it is the first line. Returns the kept rows (in their original order)
    and how many were dropped.
    """
    order = np.argsort(interactions["timestamp"].to_numpy(), kind="stable")
    first = ~interactions.iloc[order].duplicated(["user_id", "item_id"], keep="first")
    keep = np.zeros(len(interactions), dtype=bool)
    keep[order[first.to_numpy()]] = True
    return interactions[keep], int((~keep).sum())


def kcore_mask(users: np.ndarray, items: np.ndarray, k: int = 5) -> np.ndarray:
    """Boolean mask of the edges in the greatest k-core of the bipartite user-item graph.

    Iterative: remove every user and item with fewer than ``k`` remaining edges until none is left.
    The fixpoint is the unique maximal edge set in which every user and every item has at least
    ``k`` edges (the greatest k-core). ``users`` / ``items`` are integer codes (0..n-1), one per
    edge, without repeated pairs.
    """
    keep = np.ones(len(users), dtype=bool)
    n_users = int(users.max()) + 1 if len(users) else 0
    n_items = int(items.max()) + 1 if len(items) else 0
    while True:
        user_deg = np.bincount(users[keep], minlength=n_users)  # (U,)
        item_deg = np.bincount(items[keep], minlength=n_items)  # (I,)
        new_keep = keep & (user_deg[users] >= k) & (item_deg[items] >= k)
        if new_keep.sum() == keep.sum():
            return new_keep
        keep = new_keep


def kcore(interactions: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """The rows of ``interactions`` (user_id, item_id, no repeated pairs) in the greatest k-core."""
    users = pd.factorize(interactions["user_id"])[0]
    items = pd.factorize(interactions["item_id"])[0]
    return interactions[kcore_mask(users, items, k)]
