"""Content quality against recommendation impact: does a better completion recommend better?

Beyond the paper: Spearman correlation between each content metric (CQBench) and the relative
RecBench difference vs ground truth, over completers × categories, and its scatter plot.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmpc.apps.report.data import ReportInputs
from mmpc.apps.report.plot import Figure, plt, save_png
from mmpc.apps.report.recbench import REC_HEADERS, impact_frame
from mmpc.apps.report.stats import spearman
from mmpc.apps.report.table import Table, fmt
from mmpc.apps.schema import TASK_LABELS


def quality_impact_pairs(
    inp: ReportInputs, metric_key: str, task: str, impact_metric: str
) -> pd.DataFrame:
    """Per (completer, category): mean content metric and recommendation impact, joined."""
    assert inp.cq is not None
    quality = (
        inp.cq[inp.cq["task"] == task]
        .groupby(["completer", "category"])[metric_key]
        .mean()
        .rename("quality")
        .reset_index()
    )
    impact = impact_frame(inp, impact_metric)
    impact = impact[(impact["task"] == task) & (impact["kind"] == "completer")]
    impact = impact.rename(columns={"condition": "completer"})[["completer", "category", "impact"]]
    return quality.merge(impact, on=["completer", "category"], how="inner")


def spearman_table(
    inp: ReportInputs, impact_metrics: tuple[str, ...] = ("recall@20", "ndcg@20")
) -> Table | None:
    """Spearman ρ (p-value) between each content metric and each impact metric, per task."""
    if inp.cq is None or inp.rec is None or inp.cq.empty or inp.rec.empty:
        return None
    rows = []
    for task in ("i2t", "t2i"):
        for m in inp.task_metrics(task):
            for im in impact_metrics:
                pairs = quality_impact_pairs(inp, m.key, task, im)
                rho, p, n = spearman(pairs["quality"], pairs["impact"])
                rows.append([TASK_LABELS[task], m.label, REC_HEADERS[im], rho, p, n])
    values = pd.DataFrame(rows, columns=["Task", "Content metric", "Impact", "rho", "p", "n"])
    shown = values.copy()
    shown["rho"] = [fmt(v) for v in values["rho"]]
    shown["p"] = [fmt(v, 4) for v in values["p"]]
    return Table(
        "spearman",
        inp.label("Content quality vs recommendation impact (Spearman ρ)"),
        values,
        shown,
        "pairs = completers × categories; impact = relative difference "
        "vs GT, mean over recommenders and seeds",
    )


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
        save_png(fig, path)
        figs.append(Figure(f"quality_vs_impact_{task}", title, path, pairs))
    return figs


def tables(inp: ReportInputs) -> list[Table]:
    """The Spearman table, when the run has both CQBench and RecBench results."""
    table = spearman_table(inp)
    return [table] if table is not None else []


def figures(inp: ReportInputs, out: Path) -> list[Figure]:
    """The quality vs impact scatter plots, written under ``out``."""
    return quality_impact_figures(inp, out)
