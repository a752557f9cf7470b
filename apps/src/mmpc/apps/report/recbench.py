"""RecBench in the report: how completed features change recommendation, tables and figure.

Paper tables and figures reproduced: per recommender completer × category Recall/NDCG@{5,10,20,50}
(Tables 12-17), the overall comparison with "Rel. Diff. (vs. GT)" (Table 6) and the heatmap of
degradation vs ground truth by completer × category (Fig. 4). Beyond the paper: paired bootstrap
CIs of every delta vs GT with the spread across seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm

from mmpc.apps.report.data import ReportInputs
from mmpc.apps.report.plot import Figure, plt, save_png
from mmpc.apps.report.stats import paired_bootstrap, relative_diff
from mmpc.apps.report.table import Table, fmt, fmt_pct
from mmpc.apps.schema import GT, KS, REC_METRICS, TASK_LABELS
from mmpc.metrics.aggregate import mean_std

REC_HEADERS = {f"{m}@{k}": f"{m[0].upper()}@{k}" for k in KS for m in ("recall", "ndcg")}
REL_DIFF = "Rel. Diff. (vs. GT)"
# The paper's per-recommender tables: (I→T, T→I) table numbers by recommender (lower case).
PAPER_REC_TABLES = {"vbpr": (12, 13), "bm3": (14, 15), "freedom": (16, 17)}


def rec_table_number(model: str, task: str) -> str:
    """``"Table N: "`` for a recommender the paper has a table for (Tables 12-17), else ``""``."""
    numbers = PAPER_REC_TABLES.get(model.lower())
    return f"Table {numbers[0 if task == 'i2t' else 1]}: " if numbers else ""


def condition_label(condition: str, kind: str) -> str:
    """Display name of a RecBench condition."""
    if kind == "gt":
        return "Ground Truth"
    return f"{condition} (imputation)" if kind == "imputation" else condition


def _rec_mean(rec: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return rec.groupby(keys, sort=True)[list(REC_METRICS)].mean()


def _ordered_conditions(rec: pd.DataFrame) -> list[tuple[str, str]]:
    pairs = rec[["condition", "kind"]].drop_duplicates()
    rank = {"gt": 0, "completer": 1, "imputation": 2}
    return sorted(pairs.itertuples(index=False, name=None), key=lambda p: (rank[p[1]], p[0]))


def _rel_diff_row(block: pd.DataFrame, kinds: dict[str, str]) -> pd.Series | None:
    """(best completer - GT) / GT per metric, the paper's "Rel. Diff. (vs. GT)" row."""
    comps = [c for c in block.index if kinds.get(c) == "completer"]
    if GT not in block.index or not comps:
        return None
    best = block.loc[comps].max(axis=0)
    return pd.Series({m: relative_diff(best[m], block.loc[GT, m]) for m in REC_METRICS})


def rec_tables(inp: ReportInputs) -> list[Table]:
    """Per recommender and task: (category, condition) × R/N@K, mean over seeds (Tables 12-17)."""
    if inp.rec is None or inp.rec.empty:
        return []
    tables = []
    kinds = dict(inp.rec[["condition", "kind"]].drop_duplicates().itertuples(index=False))
    order = _ordered_conditions(inp.rec)
    for (model, task), sub in inp.rec.groupby(["model", "task"], sort=True):
        means = _rec_mean(sub, ["category", "condition"])
        rows, shown_rows, index = [], [], []
        for category in sorted(sub["category"].unique()):
            block = means.loc[category]
            for cond, kind in order:
                if cond in block.index:
                    rows.append(block.loc[cond])
                    shown_rows.append([fmt(v, 4) for v in block.loc[cond]])
                    index.append((category, condition_label(cond, kind)))
            rel = _rel_diff_row(block, kinds)
            if rel is not None:
                rows.append(rel)
                shown_rows.append([fmt_pct(v) for v in rel])
                index.append((category, REL_DIFF))
        idx = pd.MultiIndex.from_tuples(index, names=["Category", "Completion"])
        values = pd.DataFrame(rows, index=idx, columns=list(REC_METRICS))
        shown = pd.DataFrame(shown_rows, index=idx, columns=[REC_HEADERS[m] for m in REC_METRICS])
        n_seeds = sub["seed"].nunique()
        tables.append(
            Table(
                f"rec_{model}_{task}",
                inp.label(
                    f"{rec_table_number(model, task)}{model} on {TASK_LABELS[task]}: "
                    "Recall/NDCG@K by category"
                ),
                values,
                shown,
                f"mean over {n_seeds} seed(s); {REL_DIFF} = (best completer − GT) / GT",
            )
        )
    # The paper's order (VBPR, BM3, FREEDOM; I→T before T→I), other recommenders after.
    return sorted(tables, key=lambda t: (_paper_rank(t.key), t.key))


def _paper_rank(key: str) -> int:
    model, task = key.removeprefix("rec_").rsplit("_", 1)
    numbers = PAPER_REC_TABLES.get(model.lower())
    return numbers[0 if task == "i2t" else 1] if numbers else 99


def rec_overall_tables(inp: ReportInputs) -> list[Table]:
    """Per task: condition × R/N@K averaged over recommenders, categories and seeds (Table 6)."""
    if inp.rec is None or inp.rec.empty:
        return []
    kinds = dict(inp.rec[["condition", "kind"]].drop_duplicates().itertuples(index=False))
    tables = []
    for task, sub in inp.rec.groupby("task", sort=True):
        block = _rec_mean(sub, ["model", "category", "condition"]).groupby(level="condition").mean()
        order = [c for c, _ in _ordered_conditions(sub)]
        block = block.loc[order]
        values = block.copy()
        shown = block.map(lambda v: fmt(v, 4))
        shown.index = [condition_label(c, kinds[c]) for c in order]
        rel = _rel_diff_row(block, kinds)
        if rel is not None:
            values.loc[REL_DIFF] = rel
            shown.loc[REL_DIFF] = [fmt_pct(v) for v in rel]
        shown.columns = [REC_HEADERS[m] for m in REC_METRICS]
        shown.index.name = "Completion"
        tables.append(
            Table(
                f"rec_overall_{task}",
                inp.label(
                    f"Table 6: {TASK_LABELS[task]} RecBench overall (mean over recommenders, "
                    "categories, seeds)"
                ),
                values,
                shown,
                f"{REL_DIFF} = (best completer − GT) / GT; imputation baselines "
                "shown beside the completers",
            )
        )
    return tables


def bootstrap_frame(inp: ReportInputs) -> pd.DataFrame:
    """Every RecBench delta vs GT: paired bootstrap CI over users and the spread across seeds.

    For (model, task, category, condition, metric): per seed s the per-user differences
    ``d_s(u) = m_cond,s(u) - m_GT,s(u)`` (GT trained with the same seed); ``d(u) = mean_s d_s(u)``
    over the seeds both have; the CI is :func:`paired_bootstrap` of ``d``. ``seed_std`` is the std
    over seeds of ``mean_u d_s(u)``; ``rel_delta`` is ``delta / mean GT``.
    """
    cols = [
        "model",
        "task",
        "category",
        "condition",
        "kind",
        "metric",
        "delta",
        "ci_low",
        "ci_high",
        "rel_delta",
        "seed_std",
        "n_users",
        "n_seeds",
        "significant",
    ]
    if inp.rec_users is None or inp.rec_users.empty:
        return pd.DataFrame(columns=cols)
    users = inp.rec_users
    rows = []
    for (model, task, category), sub in users.groupby(["model", "task", "category"], sort=True):
        gt = sub[sub["condition"] == GT].set_index(["seed", "user_id"]).sort_index()
        if gt.empty:
            continue
        for (cond, kind), cs in sub[sub["condition"] != GT].groupby(["condition", "kind"]):
            cs = cs.set_index(["seed", "user_id"]).sort_index()
            common = cs.index.intersection(gt.index)
            for metric in REC_METRICS:
                diff = cs.loc[common, metric] - gt.loc[common, metric]
                per_user = diff.groupby(level="user_id").mean()
                per_seed = diff.groupby(level="seed").mean().to_numpy()
                ci = paired_bootstrap(
                    np.zeros(len(per_user)),
                    per_user.to_numpy(),
                    inp.bootstrap_samples,
                    seed=inp.seed,
                )
                gt_mean = float(gt.loc[common, metric].mean())
                rows.append(
                    [
                        model,
                        task,
                        category,
                        cond,
                        kind,
                        metric,
                        ci.delta,
                        ci.low,
                        ci.high,
                        relative_diff(gt_mean + ci.delta, gt_mean),
                        mean_std(per_seed, finite_only=True)[1],
                        ci.n,
                        len(per_seed),
                        ci.significant,
                    ]
                )
    return pd.DataFrame(rows, columns=cols)


def bootstrap_table(
    inp: ReportInputs, frame: pd.DataFrame, metrics: tuple[str, ...] = ("recall@20", "ndcg@20")
) -> Table | None:
    """The bootstrap frame restricted to ``metrics`` for display (all metrics go to CSV)."""
    if frame.empty:
        return None
    sub = frame[frame["metric"].isin(metrics)]
    shown = pd.DataFrame(
        {
            "Model": sub["model"],
            "Task": sub["task"].map(TASK_LABELS),
            "Category": sub["category"],
            "Completion": [
                condition_label(c, k) for c, k in zip(sub["condition"], sub["kind"], strict=True)
            ],
            "Metric": sub["metric"].map(REC_HEADERS),
            "Δ vs GT": [f"{d:+.4f}" for d in sub["delta"]],
            "95% CI": [
                f"[{lo:+.4f}, {hi:+.4f}]"
                for lo, hi in zip(sub["ci_low"], sub["ci_high"], strict=True)
            ],
            "Rel.": [fmt_pct(v) for v in sub["rel_delta"]],
            "Seed std": [fmt(v, 4) for v in sub["seed_std"]],
            "Users": sub["n_users"],
            "Seeds": sub["n_seeds"],
            "Real?": ["yes" if s else "no" for s in sub["significant"]],
        }
    ).reset_index(drop=True)
    return Table(
        "bootstrap",
        inp.label("RecBench deltas vs GT: paired bootstrap 95% CI over users"),
        frame,
        shown,
        "'Real?' = the CI excludes 0; every metric is in bootstrap.csv",
    )


def impact_frame(inp: ReportInputs, metric: str) -> pd.DataFrame:
    """Relative difference vs GT of ``metric`` per (task, condition, kind, category).

    ``(mean_cond - mean_GT) / mean_GT`` where both means run over recommenders and seeds.
    """
    if inp.rec is None or inp.rec.empty:
        return pd.DataFrame(columns=["task", "condition", "kind", "category", "impact"])
    means = inp.rec.groupby(["task", "category", "condition", "kind"])[metric].mean()
    rows = []
    for (task, category, cond, kind), value in means.items():
        if kind == "gt":
            continue
        gt = means.get((task, category, GT, "gt"), float("nan"))
        rows.append([task, cond, kind, category, relative_diff(value, gt)])
    return pd.DataFrame(rows, columns=["task", "condition", "kind", "category", "impact"])


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
            f"Fig. 4: {TASK_LABELS[task]} RecBench degradation vs ground truth "
            f"({REC_HEADERS[metric]})"
        )
        ax.set_title(title, fontsize=10)
        path = out / f"heatmap_{task}.png"
        save_png(fig, path)
        figs.append(Figure(f"heatmap_{task}", title, path, grid))
    return figs


def tables(inp: ReportInputs) -> list[Table]:
    """Every RecBench table, in reading order: overall (Table 6), per recommender (Tables 12-17),
    then the bootstrap CIs (every metric in ``values``, R/N@20 shown)."""
    found: list[Table | None] = [*rec_overall_tables(inp), *rec_tables(inp)]
    found.append(bootstrap_table(inp, bootstrap_frame(inp)))
    return [t for t in found if t is not None]


def figures(inp: ReportInputs, out: Path) -> list[Figure]:
    """Every RecBench figure, written under ``out``: the degradation heatmaps (Fig. 4)."""
    return heatmap_figures(inp, out)
