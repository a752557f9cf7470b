"""The report's figures, each written as a PNG (matplotlib, Agg backend).

Paper figures: radar chart of normalised content metrics (Fig. 3), heatmap of recommendation
degradation vs ground truth by completer × category (Fig. 4), GRPO reward curves (Fig. 5).
Beyond the paper: content quality vs recommendation impact scatter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm

from mmpc.apps.report.data import TASK_LABELS, ReportInputs
from mmpc.apps.report.stats import radar_scores, two_level_summary
from mmpc.apps.report.tables import REC_HEADERS, impact_frame, quality_impact_pairs
from mmpc.metrics.files import atomic_write_text


@dataclass
class Figure:
    """A PNG written into the report folder, with the title shown above it in the report."""

    key: str
    title: str
    path: Path
    data: pd.DataFrame


def _save(fig: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


def radar_figures(inp: ReportInputs, out: Path) -> list[Figure]:
    """Per task: completers' metrics normalised to [0, 1] across completers, summed (Fig. 3)."""
    figs = []
    if inp.cq is None or inp.cq.empty:
        return figs
    for task in ("i2t", "t2i"):
        metrics = inp.task_metrics(task)
        sub = inp.cq[inp.cq["task"] == task]
        if not metrics or sub["completer"].nunique() < 1:
            continue
        summary = two_level_summary(sub, "completer", "category", [m.key for m in metrics])
        means = pd.DataFrame({m.key: summary[(m.key, "mean")] for m in metrics})
        scores = radar_scores(means, {m.key: m.higher_is_better for m in metrics})
        keys = [m.key for m in metrics if m.key in scores.columns]
        labels = [m.label for m in metrics if m.key in scores.columns]
        angles = np.linspace(0, 2 * np.pi, len(keys), endpoint=False).tolist()
        fig, ax = plt.subplots(figsize=(6.2, 5.2), subplot_kw={"polar": True})
        for completer, row in scores.iterrows():
            vals = [float(row[k]) for k in keys]
            ax.plot(
                angles + angles[:1],
                vals + vals[:1],
                linewidth=1.5,
                label=f"{completer} (sum {row['sum']:.2f} / {len(keys)})",
            )
            ax.fill(angles + angles[:1], vals + vals[:1], alpha=0.08)
        ax.set_xticks(angles, labels)
        ax.set_ylim(0, 1.05)
        title = inp.label(f"{TASK_LABELS[task]} content quality radar (normalised, summed)")
        ax.set_title(title, fontsize=10, pad=18)
        ax.legend(loc="upper left", bbox_to_anchor=(1.05, 1.0), fontsize=8)
        path = out / f"radar_{task}.png"
        _save(fig, path)
        figs.append(Figure(f"radar_{task}", title, path, scores))
    return figs


def heatmap_figures(inp: ReportInputs, out: Path) -> list[Figure]:
    """Per task: relative difference vs GT of ``inp.heatmap_metric`` by condition × category.

    Values are ``(mean_cond - mean_GT) / mean_GT`` in percent, means over recommenders and seeds;
    blue is degradation (as the paper's Fig. 4), red improvement, white no change.
    """
    figs = []
    metric = inp.heatmap_metric
    impact = impact_frame(inp, metric)
    for task, sub in impact.groupby("task", sort=True):
        sub = sub.assign(
            label=[
                f"{c} (imputation)" if k == "imputation" else c
                for c, k in zip(sub["condition"], sub["kind"], strict=True)
            ]
        )
        grid = sub.pivot_table(index="label", columns="category", values="impact") * 100.0
        values = grid.to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        bound = float(np.abs(finite).max()) if finite.size else 1.0
        bound = bound if bound > 0 else 1.0
        fig, ax = plt.subplots(figsize=(1.1 * grid.shape[1] + 3.5, 0.5 * grid.shape[0] + 2))
        image = ax.imshow(
            values,
            cmap="coolwarm",
            aspect="auto",
            norm=TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound),
        )
        ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=35, ha="right", fontsize=8)
        ax.set_yticks(range(grid.shape[0]), grid.index, fontsize=8)
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=7)
        fig.colorbar(image, ax=ax, label=f"{REC_HEADERS[metric]} rel. diff. vs GT (%)")
        title = inp.label(
            f"{TASK_LABELS[task]} RecBench degradation vs ground truth ({REC_HEADERS[metric]})"
        )
        ax.set_title(title, fontsize=10)
        path = out / f"heatmap_{task}.png"
        _save(fig, path)
        figs.append(Figure(f"heatmap_{task}", title, path, grid))
    return figs


def reward_columns(log: pd.DataFrame) -> list[str]:
    """Columns of a GRPO CSV log that hold rewards (their name contains ``reward``)."""
    return [
        c
        for c in log.columns
        if "reward" in c.lower() and pd.api.types.is_numeric_dtype(log[c]) and log[c].notna().any()
    ]


def reward_figure(inp: ReportInputs, out: Path) -> list[Figure]:
    """GRPO reward curves (Fig. 5): every reward column against the step, raw and smoothed."""
    log = inp.grpo_log
    if log is None or log.empty:
        return []
    cols = reward_columns(log)
    if not cols:
        return []
    step = "step" if "step" in log.columns else None
    fig, ax = plt.subplots(figsize=(7, 4))
    for col in cols:
        series = log[[step, col]].dropna() if step else log[[col]].dropna()
        x = series[step].to_numpy() if step else np.arange(len(series))
        y = series[col].to_numpy(dtype=float)
        (line,) = ax.plot(x, y, alpha=0.35, linewidth=1)
        window = max(1, len(y) // 20)
        smooth = pd.Series(y).rolling(window, min_periods=1).mean().to_numpy()
        ax.plot(x, smooth, color=line.get_color(), linewidth=2, label=f"{col} (rolling {window})")
    ax.set_xlabel(step or "row")
    ax.set_ylabel("reward")
    ax.legend(fontsize=8)
    title = inp.label("GRPO reward curves")
    ax.set_title(title, fontsize=10)
    path = out / "grpo_rewards.png"
    _save(fig, path)
    return [Figure("grpo_rewards", title, path, log[[*([step] if step else []), *cols]])]


def grpo_run_figures(inp: ReportInputs, out: Path) -> list[Figure]:
    """Fig. 5 for this run: per GRPO stage, total and per-component mean reward per step, raw
    (thin) and as a rolling mean (thick, window ≈ a tenth of the steps)."""
    figs = []
    for run in inp.grpo_runs:
        log = run.log
        if log is None or log.empty or "train/reward" not in log or "step" not in log:
            continue
        parts = sorted(c for c in log if c.startswith("train/rewards/") and c.endswith("/mean"))
        table = log.dropna(subset=["train/reward"]).groupby("step")[["train/reward", *parts]]
        table = table.mean().sort_index()
        window = max(1, int(np.ceil(len(table) / 10)))
        fig, ax = plt.subplots(figsize=(7, 4))
        for col in table:
            label = "total" if col == "train/reward" else col.split("/")[2]
            (line,) = ax.plot(table.index, table[col], alpha=0.35, linewidth=1)
            smooth = table[col].rolling(window, min_periods=1).mean()
            ax.plot(
                table.index,
                smooth,
                color=line.get_color(),
                linewidth=2,
                label=f"{label} (rolling {window})",
            )
        ax.set_xlabel("step")
        ax.set_ylabel("mean reward")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        title = inp.label(
            f"Fig. 5: GRPO reward curves, {run.completer} {TASK_LABELS[run.task]} "
            f"({len(table)} steps)"
        )
        ax.set_title(title, fontsize=10)
        key = f"grpo_rewards_{run.task}_{run.completer}"
        path = out / f"{key}.png"
        _save(fig, path)
        figs.append(Figure(key, title, path, table))
    return figs


def quality_impact_figures(
    inp: ReportInputs, out: Path, impact_metric: str = "recall@20"
) -> list[Figure]:
    """Per task: content quality (first metric) against recommendation impact, one dot per
    (completer, category)."""
    figs = []
    if inp.cq is None or inp.rec is None:
        return figs
    for task in ("i2t", "t2i"):
        metrics = inp.task_metrics(task)
        if not metrics:
            continue
        m = metrics[0]
        pairs = quality_impact_pairs(inp, m.key, task, impact_metric)
        if pairs.empty:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for completer, grp in pairs.groupby("completer"):
            ax.scatter(grp["quality"], grp["impact"] * 100, label=str(completer), s=28)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_xlabel(m.header)
        ax.set_ylabel(f"{REC_HEADERS[impact_metric]} rel. diff. vs GT (%)")
        ax.legend(fontsize=8)
        title = inp.label(f"{TASK_LABELS[task]} content quality vs recommendation impact")
        ax.set_title(title, fontsize=10)
        path = out / f"quality_vs_impact_{task}.png"
        _save(fig, path)
        figs.append(Figure(f"quality_vs_impact_{task}", title, path, pairs))
    return figs


def all_figures(inp: ReportInputs, out: Path) -> list[Figure]:
    """Every figure the inputs allow, written under ``out``; their data as CSV beside them."""
    figs = (
        radar_figures(inp, out)
        + heatmap_figures(inp, out)
        + reward_figure(inp, out)
        + grpo_run_figures(inp, out)
        + quality_impact_figures(inp, out)
    )
    for f in figs:
        atomic_write_text(out / f"{f.key}.csv", f.data.to_csv())
    return figs
