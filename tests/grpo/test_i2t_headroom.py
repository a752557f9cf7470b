"""The policy choices of ``benchmarks/grpo/i2t_headroom.py`` (what GRPO could learn, issue 22)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest


@pytest.fixture(scope="module")
def headroom(grpo_benchmark: Callable[[str], ModuleType]) -> ModuleType:
    return grpo_benchmark("i2t_headroom.py")


def test_conditional_picks_the_reward_best_policy_per_key_on_the_fitting_items(
    headroom: ModuleType,
) -> None:
    # 3 policies x 6 items; keys: a a b b c c
    reward = np.array(
        [
            [1.0, 1.0, 0.0, 0.0, 0.6, 0.6],  # best for "a"
            [0.0, 0.0, 1.0, 1.0, 0.0, 0.0],  # best for "b"
            [0.6, 0.6, 0.6, 0.6, 0.1, 0.1],  # best on average over items 0..3
        ]
    )
    tfidf = np.arange(18, dtype=float).reshape(3, 6)
    keys = ["a", "a", "b", "b", "c", "c"]
    everyone = np.arange(6)
    r, t = headroom.conditional(reward, tfidf, keys, everyone, everyone)
    # in-sample: policy 0 for a and c, 1 for b
    assert r == pytest.approx(np.mean([1, 1, 1, 1, 0.6, 0.6]))
    assert t == pytest.approx(np.mean([0, 1, 8, 9, 4, 5]))
    # "c" is not among the fitting items: it gets the policy best over them (2), not its own (0)
    r, t = headroom.conditional(reward, tfidf, keys, np.arange(4), np.array([4, 5]))
    assert (r, t) == pytest.approx((0.1, np.mean([16, 17])))


def test_relative_change_is_against_the_reference(headroom: ModuleType) -> None:
    assert headroom.relative(0.11, 0.1) == "0.1100 (+10.0%)"
    assert headroom.relative(0.09, 0.1) == "0.0900 (-10.0%)"
