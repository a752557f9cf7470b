"""mean ± std: parity with numpy (population and sample std), NaN / inf handling, formatting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmpc.metrics import mean_std
from mmpc.metrics.aggregate import format_mean_std


def test_matches_numpy_population_and_sample_std() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0.4, 0.1, size=1000)
    mean, std = mean_std(torch.from_numpy(values))
    assert mean == pytest.approx(np.mean(values), rel=1e-12)
    assert std == pytest.approx(np.std(values), rel=1e-12)  # the published code's np.std
    _, sample_std = mean_std(values.tolist(), ddof=1)
    assert sample_std == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    assert sample_std != pytest.approx(std, rel=1e-6)


def test_nan_is_ignored_and_empty_is_nan() -> None:
    mean, std = mean_std([0.1, float("nan"), 0.3])
    assert mean == pytest.approx(0.2)
    assert std == pytest.approx(0.1)
    assert all(math.isnan(v) for v in mean_std([]))
    assert all(math.isnan(v) for v in mean_std(torch.tensor([math.nan, math.nan])))
    mean, std = mean_std([0.5], ddof=1)
    assert mean == 0.5 and math.isnan(std)


def test_bit_identical_to_numpy_on_lists_arrays_and_tensors() -> None:
    # Report CSVs print these floats in full, so "close" is not enough: the digits must match.
    rng = np.random.default_rng(1)
    for size in (2, 3, 7, 8, 9, 129, 1000):
        values = rng.lognormal(-1.0, 0.7, size=size)
        expected = (float(np.mean(values)), float(np.std(values)))
        assert mean_std(values) == expected
        assert mean_std(values.tolist()) == expected
        assert mean_std(torch.from_numpy(values).reshape(-1, 1)) == expected
        assert mean_std(values, ddof=1)[1] == float(np.std(values, ddof=1))


def test_finite_only_also_skips_infinities() -> None:
    values = [1.0, math.inf, 3.0, math.nan, -math.inf]
    assert mean_std(values, finite_only=True) == (2.0, 1.0)
    # Without the option an infinity is a value: the mean is infinite, the std undefined.
    mean, std = mean_std(values)
    assert math.isnan(mean) and math.isnan(std)
    mean, std = mean_std([1.0, math.inf])
    assert mean == math.inf and math.isnan(std)
    assert all(math.isnan(v) for v in mean_std([math.inf, math.nan], finite_only=True))
    assert mean_std(torch.tensor([2.0, math.inf]), finite_only=True) == (2.0, 0.0)


def test_format_and_bad_ddof() -> None:
    assert format_mean_std([0.1, 0.2, 0.3]) == "0.200 ± 0.082"
    assert format_mean_std(torch.tensor([[1.0, 3.0]]), digits=1) == "2.0 ± 1.0"
    assert format_mean_std([]) == "nan ± nan"
    with pytest.raises(ValueError, match="ddof"):
        mean_std([1.0], ddof=2)
