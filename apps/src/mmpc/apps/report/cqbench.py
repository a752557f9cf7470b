"""CQBench in the report: content quality of each completer, its tables and its figure.

Paper tables and figures reproduced: completer × metric mean ± std per task (Tables 2, 3),
category × metric (Tables 4, 5) and the radar chart of normalised metrics (Fig. 3). The per
completer × category tables (Tables 10, 11) belong here too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmpc.apps.report.data import ReportInputs
from mmpc.apps.report.plot import Figure, plt, save_png
from mmpc.apps.report.stats import radar_scores, two_level_summary
from mmpc.apps.report.table import Table, fmt
from mmpc.apps.schema import TASK_LABELS


def cq_tables(inp: ReportInputs, row: str) -> list[Table]:
    """Per task: ``row`` (completer or category) × metric, mean ± std of per-group means."""
    if inp.cq is None or inp.cq.empty:
        return []
    over = "category" if row == "completer" else "completer"
    tables = []
    for task in ("i2t", "t2i"):
        metrics = inp.task_metrics(task)
        sub = inp.cq[inp.cq["task"] == task]
        if not metrics or sub.empty:
            continue
        summary = two_level_summary(sub, row, over, [m.key for m in metrics])
        shown = pd.DataFrame(index=summary.index)
        for m in metrics:
            shown[m.header] = [
                f"{fmt(a)} ± {fmt(b)}"
                for a, b in zip(summary[(m.key, "mean")], summary[(m.key, "std")], strict=True)
            ]
        shown.index.name = row.capitalize()
        what = "models" if row == "category" else "categories"
        notes = "; ".join(f"{m.label}: {m.note}" for m in metrics if m.note)
        tables.append(
            Table(
                f"cq_{row}_{task}",
                inp.label(
                    f"{TASK_LABELS[task]} content quality by {row} (mean ± std across {what})"
                ),
                summary,
                shown,
                notes,
            )
        )
    return tables


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
        save_png(fig, path)
        figs.append(Figure(f"radar_{task}", title, path, scores))
    return figs


def tables(inp: ReportInputs) -> list[Table]:
    """Every CQBench table, in reading order: by completer (Tables 2, 3), by category (4, 5)."""
    return cq_tables(inp, "completer") + cq_tables(inp, "category")


def figures(inp: ReportInputs, out: Path) -> list[Figure]:
    """Every CQBench figure, written under ``out``: the radar charts (Fig. 3)."""
    return radar_figures(inp, out)
