"""``mean ± std`` for reports, computed the way the published MMPCBench code computes it.

The paper reports "mean ± std" without saying which standard deviation. Its code
(``CQBench/text_benchmark_all_models_bench.py``) uses ``np.mean`` / ``np.std`` on the per-item
scores of a model × category, and again on the per-category means for the summary tables. ``np.std``
is the population standard deviation (``ddof=0``), so that is the default here; ``ddof=1`` gives
the sample standard deviation (pandas' default) for anyone who wants it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["format_mean_std", "mean_std"]


def mean_std(values: Tensor | Sequence[float], ddof: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of the finite-or-infinite values, NaN ignored.

    ``mean = Σ x_i / n`` and ``std = sqrt(Σ (x_i - mean)^2 / (n - ddof))`` over the ``n`` non-NaN
    values, in float64.

    Args:
        values: Per-item (or per-category) scores, any shape (flattened); NaN entries are skipped.
        ddof: Delta degrees of freedom: 0 (default, population std as ``np.std`` in the published
            code) or 1 (sample std).

    Returns:
        ``(mean, std)`` as Python floats; ``(nan, nan)`` for no values, and ``std`` is NaN when
        ``n <= ddof``.

    Example:
        >>> mean_std([0.1, 0.2, float("nan"), 0.3])
        (0.20000000000000004, 0.0816496580927726)
    """
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 or 1, got {ddof!r}")
    x = torch.as_tensor(values, dtype=torch.float64).detach().cpu().flatten()
    x = x[~torch.isnan(x)]
    n = x.numel()
    if n == 0:
        return math.nan, math.nan
    mean = x.mean().item()
    if n <= ddof:
        return mean, math.nan
    std = torch.sqrt(((x - x.mean()) ** 2).sum() / (n - ddof)).item()
    return mean, std


def format_mean_std(values: Tensor | Sequence[float], digits: int = 3, ddof: int = 0) -> str:
    """``"0.123 ± 0.045"``: :func:`mean_std` rounded to ``digits`` decimals ("nan" if undefined).

    Example:
        >>> format_mean_std([0.1, 0.2, 0.3])
        '0.200 ± 0.082'
    """
    mean, std = mean_std(values, ddof=ddof)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
