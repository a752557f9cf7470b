"""Reward curves (the paper's Fig. 5) from a Lightning ``CSVLogger`` ``metrics.csv``."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from mmpc.metrics.files import atomic_path

__all__ = ["held_out_rewards", "plot_reward_curve", "reward_table", "rewards_by_step"]


def held_out_rewards(log: pd.DataFrame) -> pd.Series | None:
    """``val/reward`` by step: the greedy reward of the held-out items after ``step`` updates
    (``None`` when the run did not validate)."""
    if "val/reward" not in log or "step" not in log:
        return None
    held = log.dropna(subset=["val/reward"]).groupby("step")["val/reward"].mean()
    return held if len(held) else None


def reward_table(metrics_csv: str | Path) -> pd.DataFrame:
    """Per-step reward columns (``train/reward`` and ``train/rewards/<name>/mean``) by step.

    Raises:
        ValueError: the file has no ``step`` or ``train/reward`` column (one line, naming it).
    """
    return rewards_by_step(pd.read_csv(metrics_csv), str(metrics_csv))


def rewards_by_step(log: pd.DataFrame, source: str = "log") -> pd.DataFrame:
    """:func:`reward_table` of a log already read; ``source`` names it in the error."""
    for column in ("step", "train/reward"):
        if column not in log:
            raise ValueError(f"{source}: no column {column!r} (not a GRPO metrics.csv)")
    parts = sorted(c for c in log if c.startswith("train/rewards/") and c.endswith("/mean"))
    rows = log.dropna(subset=["train/reward"])
    return rows.groupby("step")[["train/reward", *parts]].mean().sort_index()


def plot_reward_curve(
    metrics_csv: str | Path, out: str | Path, *, window: int = 5, title: str | None = None
) -> Path:
    """Plot total and per-component mean rewards per step, raw and as a moving average, and
    the held-out greedy reward (``val/reward``) where the run validated.

    Args:
        metrics_csv: the CSV logger's ``metrics.csv``.
        out: the PNG to write (written aside, then renamed into place).
        window: moving-average window in steps (1 disables smoothing).
        title: figure title (default: the CSV's folder name).

    Returns:
        The PNG path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.read_csv(metrics_csv)
    table = rewards_by_step(frame, str(metrics_csv))
    out = Path(out)
    fig, ax = plt.subplots(figsize=(7, 4))
    for column in table:
        label = "total" if column == "train/reward" else column.split("/")[2]
        series = table[column]
        (line,) = ax.plot(series.index, series, alpha=0.3, linewidth=1)
        smooth = series.rolling(max(window, 1), min_periods=1).mean()
        ax.plot(series.index, smooth, color=line.get_color(), linewidth=2, label=label)
    held = held_out_rewards(frame)
    if held is not None:  # validation: the held-out items' greedy answers
        ax.plot(held.index, held, "ko--", linewidth=1.5, label="total, held-out greedy")
    ax.set_xlabel("step")
    ax.set_ylabel("mean reward")
    ax.set_title(title or f"GRPO reward ({Path(metrics_csv).parent.name})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
            os.chmod(tmp, 0o644)  # temporary files are private; a figure is for sharing
    finally:
        plt.close(fig)
    return out
