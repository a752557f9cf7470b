"""Train/valid/test splits of interactions and the CQBench / GRPO item samples."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

# Amazon Reviews 2023 "timestamp" benchmark split: absolute cut-offs in milliseconds.
OFFICIAL_VALID_START_MS = 1628643414042
OFFICIAL_TEST_START_MS = 1658002729837
SPLIT_METHODS = ("random", "chrono", "absolute")


def _per_user_sizes(n: np.ndarray, valid: float, test: float) -> tuple[np.ndarray, np.ndarray]:
    """(n_valid, n_test) per user: ``max(1, round(n * ratio))`` each, when the user has >= 3."""
    n_valid = np.where(n >= 3, np.maximum(1, np.rint(n * valid)), 0).astype(np.int64)
    n_test = np.where(n >= 3, np.maximum(1, np.rint(n * test)), 0).astype(np.int64)
    return n_valid, n_test


def split_interactions(
    interactions: pd.DataFrame,
    method: str = "random",
    *,
    seed: int = 0,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> pd.Series:
    """Assign each interaction to "train", "valid" or "test"; returns a Series aligned on the index.

    Methods:
        random: MMRec's per-user random split. Each user's interactions are shuffled (seeded) and
            the last ``max(1, round(0.1 n))`` go to test, the ``max(1, round(0.1 n))`` before
            them to valid, the rest (at least 3 for a 5-core user) to train. Users with fewer
            than 3 interactions keep all of them in train.
        chrono: the same sizes, but each user's interactions in time order (latest to test).
        absolute: the Amazon Reviews 2023 official timestamp split: timestamp < 1628643414042 ms
            train, < 1658002729837 valid, else test (global cut-offs, not per user).
    """
    if method not in SPLIT_METHODS:
        raise ValueError(f"split method {method!r} not in {SPLIT_METHODS}")
    ts = interactions["timestamp"].to_numpy(np.int64)
    if method == "absolute":
        labels = np.where(
            ts < OFFICIAL_VALID_START_MS,
            "train",
            np.where(ts < OFFICIAL_TEST_START_MS, "valid", "test"),
        )
        return pd.Series(labels, index=interactions.index, name="split")
    users = pd.factorize(interactions["user_id"], sort=True)[0]
    if method == "random":
        key = np.random.default_rng(seed).random(len(interactions))
    else:
        key = ts.astype(np.float64)
    order = np.lexsort((np.arange(len(users)), key, users))  # by user, then key, then row
    sorted_users = users[order]
    counts = np.bincount(users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(order)) - starts[sorted_users]  # position within the user
    n_valid, n_test = _per_user_sizes(counts, ratios[1], ratios[2])
    n = counts[sorted_users]
    from_end = n - rank  # 1 for the last one
    labels_sorted = np.where(
        from_end <= n_test[sorted_users],
        "test",
        np.where(from_end <= n_test[sorted_users] + n_valid[sorted_users], "valid", "train"),
    )
    labels = np.empty(len(order), dtype=object)
    labels[order] = labels_sorted
    return pd.Series(labels, index=interactions.index, name="split")


def draw_samples(
    items: pd.DataFrame,
    *,
    cqbench_n: int | Mapping[str, int] = 1000,
    grpo_n: int | Mapping[str, int] = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """The CQBench sample and the disjoint GRPO sample, per category, seeded.

    Per category (sorted item ids, one seeded permutation): the first ``min(cqbench_n, n)`` items
    are the CQBench sample, the next ``min(grpo_n, n - cqbench)`` the GRPO sample. Disjointness is
    asserted. Returns a frame (item_id, sample).
    """
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str]] = []
    for cat in sorted(items["category"].unique()):
        ids = np.array(sorted(items.loc[items["category"] == cat, "item_id"]), dtype=object)
        perm = ids[rng.permutation(len(ids))]
        n_cq = min(cqbench_n if isinstance(cqbench_n, int) else cqbench_n[cat], len(perm))
        n_gr = min(grpo_n if isinstance(grpo_n, int) else grpo_n[cat], len(perm) - n_cq)
        cq, gr = perm[:n_cq], perm[n_cq : n_cq + n_gr]
        assert not set(cq) & set(gr), f"category {cat}: CQBench and GRPO samples overlap"
        rows += [(i, "cqbench") for i in cq] + [(i, "grpo") for i in gr]
    frame = pd.DataFrame(rows, columns=["item_id", "sample"])
    assert not frame["item_id"].duplicated().any(), "CQBench and GRPO samples overlap"
    return frame
