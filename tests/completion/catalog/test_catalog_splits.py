"""Per-user random / chronological splits, the official cut-offs, and the disjoint samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmpc.completion.catalog.splits import (
    OFFICIAL_TEST_START_MS,
    OFFICIAL_VALID_START_MS,
    draw_samples,
    split_interactions,
)


def _frame(sizes: dict[str, int]) -> pd.DataFrame:
    rows = [(u, f"i{j}", 1000 * j + 7) for u, n in sizes.items() for j in range(n)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return frame.sample(frac=1.0, random_state=1)  # row order must not matter


def test_random_split_sizes_per_user() -> None:
    frame = _frame({"a": 5, "b": 10, "c": 20, "d": 2})
    frame["split"] = split_interactions(frame, "random", seed=0)
    got = frame.groupby(["user_id", "split"]).size().unstack(fill_value=0)
    assert got.loc["a"].to_dict() == {"test": 1, "train": 3, "valid": 1}
    assert got.loc["b"].to_dict() == {"test": 1, "train": 8, "valid": 1}
    assert got.loc["c"].to_dict() == {"test": 2, "train": 16, "valid": 2}
    assert got.loc["d"].to_dict() == {"test": 0, "train": 2, "valid": 0}


def test_random_split_is_seeded_and_random() -> None:
    frame = _frame({f"u{i}": 10 for i in range(30)})
    a = split_interactions(frame, "random", seed=0)
    b = split_interactions(frame, "random", seed=0)
    c = split_interactions(frame, "random", seed=1)
    pd.testing.assert_series_equal(a, b)
    assert (a != c).any()
    # not chronological: some test interaction is earlier than some train one of the same user
    frame["split"] = a
    last_train = frame[frame["split"] == "train"].groupby("user_id")["timestamp"].max()
    first_test = frame[frame["split"] == "test"].groupby("user_id")["timestamp"].min()
    assert (first_test < last_train).any()


def test_chrono_split_puts_latest_in_test() -> None:
    frame = _frame({"a": 10, "b": 7})
    frame["split"] = split_interactions(frame, "chrono")
    for _, user in frame.groupby("user_id"):
        order = user.sort_values("timestamp")["split"].tolist()
        assert order[-1] == "test" and order[-2] == "valid"
        assert set(order[:-2]) == {"train"}


def test_absolute_split_uses_official_cutoffs() -> None:
    ts = [
        OFFICIAL_VALID_START_MS - 1,
        OFFICIAL_VALID_START_MS,
        OFFICIAL_TEST_START_MS - 1,
        OFFICIAL_TEST_START_MS,
    ]
    frame = pd.DataFrame({"user_id": "u", "item_id": list("abcd"), "timestamp": ts})
    assert split_interactions(frame, "absolute").tolist() == ["train", "valid", "valid", "test"]


def test_unknown_split_method() -> None:
    with pytest.raises(ValueError, match="split method 'leave-one-out'"):
        split_interactions(_frame({"a": 5}), "leave-one-out")


def test_samples_disjoint_capped_and_seeded() -> None:
    items = pd.DataFrame(
        {
            "item_id": [f"A{i:03d}" for i in range(50)] + [f"B{i:03d}" for i in range(8)],
            "category": ["A"] * 50 + ["B"] * 8,
        }
    )
    s = draw_samples(items, cqbench_n=20, grpo_n=10, seed=0)
    cat = s["item_id"].str[0]
    assert ((cat == "A") & (s["sample"] == "cqbench")).sum() == 20
    assert ((cat == "A") & (s["sample"] == "grpo")).sum() == 10
    assert ((cat == "B") & (s["sample"] == "cqbench")).sum() == 8  # fewer items than asked
    assert ((cat == "B") & (s["sample"] == "grpo")).sum() == 0
    assert not s["item_id"].duplicated().any()
    pd.testing.assert_frame_equal(s, draw_samples(items, cqbench_n=20, grpo_n=10, seed=0))
    other = draw_samples(items, cqbench_n=20, grpo_n=10, seed=1)
    assert set(other["item_id"][other["sample"] == "cqbench"]) != set(
        s["item_id"][s["sample"] == "cqbench"]
    )
    # input order does not matter
    shuffled = items.iloc[np.random.default_rng(0).permutation(len(items))]
    pd.testing.assert_frame_equal(s, draw_samples(shuffled, cqbench_n=20, grpo_n=10, seed=0))
