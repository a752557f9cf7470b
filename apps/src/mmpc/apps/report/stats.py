"""Statistics behind the report: summaries, radar scores, paired bootstrap, rank correlation.

``mean ± std`` itself is :func:`mmpc.metrics.aggregate.mean_std` (population std, as the paper).

All functions are pure (arrays or DataFrames in, numbers or DataFrames out) so each formula is
unit-tested on constructed cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from mmpc.metrics.aggregate import mean_std


def two_level_summary(
    df: pd.DataFrame, row: str, over: str, metrics: Sequence[str]
) -> pd.DataFrame:
    """Mean ± std of per-group means, the paper's summary tables (Tables 2-5).

    For each ``row`` value r and metric m: first ``g[r, o] = mean of m over the items of (r, o)``
    for each value o of ``over``; then ``mean_o g[r, o]`` and ``std_o g[r, o]``. With
    ``row="completer", over="category"`` this is Table 2 (mean over categories of per-category
    means); with ``row="category", over="completer"`` it is Table 4.

    Returns a frame indexed by the ``row`` values with columns ``(metric, "mean"|"std")``.
    """
    per_group = df.groupby([row, over], sort=True)[list(metrics)].mean()
    out = {}
    for metric in metrics:
        grouped = per_group[metric].groupby(level=0)
        # finite_only: a group with no value (NaN) or an infinite mean is left out of the summary.
        out[(metric, "mean")] = grouped.apply(lambda s: mean_std(s.to_numpy(), finite_only=True)[0])
        out[(metric, "std")] = grouped.apply(lambda s: mean_std(s.to_numpy(), finite_only=True)[1])
    return pd.DataFrame(out)


def radar_scores(means: pd.DataFrame, higher_is_better: dict[str, bool]) -> pd.DataFrame:
    """Per-metric min-max normalisation across completers (rows), oriented so 1 is best.

    For metric m with values v_c over completers c: ``n_c = (v_c - min) / (max - min)`` when higher
    is better, ``(max - v_c) / (max - min)`` when lower is better; when all completers tie
    (max = min) every ``n_c = 1``. The radar score of c is ``sum_m n_c``, at most the number of
    metrics (4 for I→T, 5 for T→I, as in the paper's Fig. 3). Metrics with no finite value are
    dropped. Returns the normalised frame with an extra column ``"sum"``.
    """
    cols = [c for c in means.columns if np.isfinite(means[c].to_numpy(dtype=float)).any()]
    norm = pd.DataFrame(index=means.index)
    for col in cols:
        v = means[col].astype(float)
        lo, hi = v.min(), v.max()
        if hi - lo <= 0:
            norm[col] = 1.0
        elif higher_is_better.get(col, True):
            norm[col] = (v - lo) / (hi - lo)
        else:
            norm[col] = (hi - v) / (hi - lo)
    norm["sum"] = norm[cols].sum(axis=1)
    return norm


@dataclass(frozen=True)
class BootstrapCI:
    """A paired difference ``mean(cond - gt)`` with its percentile confidence interval."""

    delta: float
    low: float
    high: float
    n: int

    @property
    def significant(self) -> bool:
        """True when the interval excludes zero."""
        return bool(self.low > 0 or self.high < 0)


def paired_bootstrap(
    gt: np.ndarray, cond: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> BootstrapCI:
    """Percentile bootstrap CI of ``mean_u (cond_u - gt_u)`` resampling users with replacement.

    ``gt`` and ``cond`` hold one metric value per user, aligned (the same users in the same order;
    the pairing removes the between-user variance that both conditions share). Each of ``n_boot``
    replicates draws ``U`` user indices with replacement and takes the mean difference; the
    interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the replicates.
    """
    gt = np.asarray(gt, dtype=np.float64)
    cond = np.asarray(cond, dtype=np.float64)
    if gt.shape != cond.shape or gt.ndim != 1:
        raise ValueError(f"paired_bootstrap: shapes {gt.shape} and {cond.shape} do not pair")
    diff = cond - gt  # (U,)
    n = diff.size
    if n == 0:
        return BootstrapCI(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot, dtype=np.float64)
    chunk = max(1, min(n_boot, 4_000_000 // max(n, 1)))
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))  # (b, U)
        reps[start:stop] = diff[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    return BootstrapCI(float(diff.mean()), float(low), float(high), n)


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, int]:
    """Spearman's rank correlation ``(rho, p-value, n)`` over pairs where both are finite.

    ``rho`` is Pearson's correlation of the (average-tie) ranks; the two-sided p-value is scipy's.
    Fewer than 3 pairs, or a constant side, gives ``(nan, nan, n)``.
    """
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    n = int(xa.size)
    if n < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return float("nan"), float("nan"), n
    res = sps.spearmanr(xa, ya)
    return float(res.statistic), float(res.pvalue), n


def relative_diff(value: float, reference: float) -> float:
    """``(value - reference) / reference``; nan when the reference is 0 or not finite."""
    if not np.isfinite(reference) or reference == 0:
        return float("nan")
    return float((value - reference) / reference)
