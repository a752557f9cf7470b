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
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["format_mean_std", "mean_std"]


def _as_float64(values: Tensor | Sequence[float] | np.ndarray) -> np.ndarray:
    """``values`` flattened into a float64 numpy array (a tensor may be on a GPU or need grad)."""
    if hasattr(values, "detach"):  # a torch Tensor; torch itself is not imported for a list
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64).ravel()


def mean_std(
    values: Tensor | Sequence[float] | np.ndarray, ddof: int = 0, *, finite_only: bool = False
) -> tuple[float, float]:
    """Mean and standard deviation of the values, NaN ignored (and ±inf too with ``finite_only``).

    ``mean = Σ x_i / n`` and ``std = sqrt(Σ (x_i - mean)^2 / (n - ddof))`` over the ``n`` kept
    values, in float64, computed by ``numpy.mean`` / ``numpy.std`` exactly as the published code
    does (so a table written from these numbers has the same digits to the last bit).

    Args:
        values: Per-item (or per-category) scores, any shape (flattened); NaN entries are skipped.
        ddof: Delta degrees of freedom: 0 (default, population std as ``np.std`` in the published
            code) or 1 (sample std).
        finite_only: Also skip ``±inf``. The report's summaries use it: a group whose mean is
            infinite (e.g. PSNR of an image identical to its original) is left out of the
            mean ± std across groups instead of turning the whole row into ``inf ± nan``.

    Returns:
        ``(mean, std)`` as Python floats; ``(nan, nan)`` for no values, and ``std`` is NaN when
        ``n <= ddof``.

    Example:
        >>> mean_std([0.1, 0.2, float("nan"), 0.3])
        (0.20000000000000004, 0.0816496580927726)
        >>> mean_std([1.0, float("inf"), 3.0], finite_only=True)
        (2.0, 1.0)
    """
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 or 1, got {ddof!r}")
    x = _as_float64(values)
    x = x[np.isfinite(x)] if finite_only else x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return math.nan, math.nan
    with np.errstate(invalid="ignore"):  # inf - inf in the std is NaN by definition, no warning
        mean = float(x.mean())
        if n <= ddof:
            return mean, math.nan
        return mean, float(x.std(ddof=ddof))


def format_mean_std(
    values: Tensor | Sequence[float] | np.ndarray, digits: int = 3, ddof: int = 0
) -> str:
    """``"0.123 ± 0.045"``: :func:`mean_std` rounded to ``digits`` decimals ("nan" if undefined).

    Example:
        >>> format_mean_std([0.1, 0.2, 0.3])
        '0.200 ± 0.082'
    """
    mean, std = mean_std(values, ddof=ddof)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
