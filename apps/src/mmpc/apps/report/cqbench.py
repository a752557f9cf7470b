"""CQBench in the report: content quality of each completer, its tables and its figure.

Paper tables and figures reproduced: completer × metric mean ± std per task (Tables 2, 3),
category × metric (Tables 4, 5), the radar chart of normalised metrics (Fig. 3) and completer ×
category mean ± std over items of every metric (Tables 10, 11).

A spread across fewer than two groups says nothing (a std over one completer is 0.000; a radar
normalised across one completer is a perfect square): such a column shows the mean alone and such
a radar is left out, each with a one-line note (:func:`notes`).
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
from mmpc.metrics.aggregate import mean_std

# The paper's number of each table and figure, by (key kind, task).
PAPER_NUMBERS = {
    ("completer", "i2t"): "Table 2",
    ("completer", "t2i"): "Table 3",
    ("category", "i2t"): "Table 4",
    ("category", "t2i"): "Table 5",
    ("by_completer_category", "i2t"): "Table 10",
    ("by_completer_category", "t2i"): "Table 11",
    ("radar", "i2t"): "Fig. 3",
    ("radar", "t2i"): "Fig. 3",
}


def spread_groups(inp: ReportInputs, task: str, over: str) -> int:
    """How many distinct ``over`` values (completers or categories) ``task`` has in ``cq``."""
    if inp.cq is None or inp.cq.empty:
        return 0
    return int(inp.cq.loc[inp.cq["task"] == task, over].nunique())


def cq_tables(inp: ReportInputs, row: str) -> list[Table]:
    """Per task: ``row`` (completer or category) × metric, mean ± std of per-group means."""
    if inp.cq is None or inp.cq.empty:
        return []
    over = "category" if row == "completer" else "completer"
    tables = []
    for task, metrics, sub in inp.cq_tasks():
        summary = two_level_summary(sub, row, over, [m.key for m in metrics])
        spread = sub[over].nunique() >= 2
        shown = pd.DataFrame(index=summary.index)
        for m in metrics:
            shown[m.header] = [
                f"{fmt(a)} ± {fmt(b)}" if spread else fmt(a)
                for a, b in zip(summary[(m.key, "mean")], summary[(m.key, "std")], strict=True)
            ]
        shown.index.name = row.capitalize()
        what = "models" if row == "category" else "categories"
        lines = [f"{m.label}: {m.note}" for m in metrics if m.note]
        if not spread:
            lines.insert(0, f"one {over} only: means shown without a ± across {what}")
        summary_of = f"mean ± std across {what}" if spread else f"mean over one {over}"
        tables.append(
            Table(
                f"cq_{row}_{task}",
                inp.label(
                    f"{PAPER_NUMBERS[(row, task)]}: {TASK_LABELS[task]} content quality by "
                    f"{row} ({summary_of})"
                ),
                summary,
                shown,
                "; ".join(lines),
            )
        )
    return tables


def radar_figures(inp: ReportInputs, out: Path) -> list[Figure]:
    """Per task: completers' metrics normalised to [0, 1] across completers, summed (Fig. 3)."""
    figs = []
    if inp.cq is None or inp.cq.empty:
        return figs
    for task, metrics, sub in inp.cq_tasks():
        # Normalised across completers: one completer would score 1 on every axis.
        if sub["completer"].nunique() < 2:
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
        title = inp.label(
            f"{PAPER_NUMBERS[('radar', task)]}: {TASK_LABELS[task]} content quality radar "
            "(normalised, summed)"
        )
        ax.set_title(title, fontsize=10, pad=18)
        ax.legend(loc="upper left", bbox_to_anchor=(1.05, 1.0), fontsize=8)
        path = out / f"radar_{task}.png"
        save_png(fig, path)
        figs.append(Figure(f"radar_{task}", title, path, scores))
    return figs


def completer_category_tables(inp: ReportInputs) -> list[Table]:
    """Per task: (completer, category) × metric, mean ± std over the items (Tables 10, 11).

    The std is the population std over the scored items of the cell (as :func:`mean_std`);
    a metric with no value in a cell shows ``–``.
    """
    if inp.cq is None or inp.cq.empty:
        return []
    tables = []
    for task, metrics, sub in inp.cq_tasks():
        groups = sub.groupby(["completer", "category"], sort=True)
        values = pd.DataFrame(
            {
                (m.key, stat): groups[m.key].agg(
                    lambda s, i=i: mean_std(s.to_numpy(dtype=float), finite_only=True)[i]
                )
                for m in metrics
                for i, stat in enumerate(("mean", "std"))
            }
        )
        values.columns = pd.MultiIndex.from_tuples(values.columns)
        values["items"] = groups.size()
        shown = pd.DataFrame(index=values.index)
        for m in metrics:
            shown[m.header] = [
                f"{fmt(a)} ± {fmt(b)}"
                for a, b in zip(values[(m.key, "mean")], values[(m.key, "std")], strict=True)
            ]
        shown["Items"] = values["items"].to_numpy()
        shown.index.names = ["Completer", "Category"]
        metric_notes = "; ".join(f"{m.label}: {m.note}" for m in metrics if m.note)
        tables.append(
            Table(
                f"cq_by_completer_category_{task}",
                inp.label(
                    f"{PAPER_NUMBERS[('by_completer_category', task)]}: {TASK_LABELS[task]} "
                    "content quality by completer and category (mean ± std over items)"
                ),
                values,
                shown,
                metric_notes,
            )
        )
    return tables


def notes(inp: ReportInputs) -> list[str]:
    """One line per CQBench figure this run leaves out because it would show no comparison."""
    lines = []
    for task in ("i2t", "t2i"):
        n = spread_groups(inp, task, "completer")
        if n == 1:
            lines.append(
                f"{PAPER_NUMBERS[('radar', task)]} ({TASK_LABELS[task]} radar): left out, one "
                "completer only: normalised across completers it would score 1 on every axis."
            )
    return lines


def tables(inp: ReportInputs) -> list[Table]:
    """Every CQBench table, in reading order: by completer (Tables 2, 3), by category (4, 5),
    by completer and category (10, 11)."""
    return cq_tables(inp, "completer") + cq_tables(inp, "category") + completer_category_tables(inp)


def figures(inp: ReportInputs, out: Path) -> list[Figure]:
    """Every CQBench figure, written under ``out``: the radar charts (Fig. 3)."""
    return radar_figures(inp, out)
