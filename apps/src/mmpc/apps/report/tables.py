"""The report's tables: each is a numeric frame plus a formatted frame of strings.

Paper tables reproduced: completer × metric mean ± std per task (Tables 2, 3), category × metric
(Tables 4, 5), per recommender completer × category Recall/NDCG@{5,10,20,50} (Tables 12-17) and the
overall comparison with "Rel. Diff. (vs. GT)" (Table 6). Beyond the paper: paired bootstrap CIs
of every RecBench delta vs GT with the spread across seeds, Spearman correlation between content
quality and recommendation impact, parse-failure / skip counts, unavailable components.
GRPO (Tables 7-9): each tuned completer ``<c>+grpo`` against its base ``<c>``, with a paired
bootstrap CI over items for every delta and a plain verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmpc.apps.report.data import (
    GT,
    KS,
    REC_METRICS,
    TASK_LABELS,
    GRPORun,
    MetricInfo,
    ReportInputs,
)
from mmpc.apps.report.stats import (
    BootstrapCI,
    mean_std,
    paired_bootstrap,
    relative_diff,
    spearman,
    two_level_summary,
)

REC_HEADERS = {f"{m}@{k}": f"{m[0].upper()}@{k}" for k in KS for m in ("recall", "ndcg")}
REL_DIFF = "Rel. Diff. (vs. GT)"


@dataclass
class Table:
    """A report table: ``key`` names its CSV, ``values`` holds numbers, ``shown`` the strings."""

    key: str
    title: str
    values: pd.DataFrame
    shown: pd.DataFrame
    note: str = ""


def fmt(x: float, digits: int = 3) -> str:
    """A float with ``digits`` decimals, ``–`` for NaN."""
    return "–" if not np.isfinite(x) else f"{x:.{digits}f}"


def fmt_pct(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{x * 100:+.2f}%"


def condition_label(condition: str, kind: str) -> str:
    """Display name of a RecBench condition."""
    if kind == "gt":
        return "Ground Truth"
    return f"{condition} (imputation)" if kind == "imputation" else condition


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
                inp.label(f"{model} on {TASK_LABELS[task]}: Recall/NDCG@K by category"),
                values,
                shown,
                f"mean over {n_seeds} seed(s); {REL_DIFF} = (best completer − GT) / GT",
            )
        )
    return tables


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
                    f"{TASK_LABELS[task]} RecBench overall (mean over recommenders, "
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
                        mean_std(per_seed)[1],
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


def simple_table(
    inp: ReportInputs, key: str, title: str, frame: pd.DataFrame | None, note: str = ""
) -> Table | None:
    """A table shown as it is (counts, unavailable components, stage times)."""
    if frame is None or frame.empty:
        return None
    shown = frame.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = [fmt(v, 1) for v in shown[col]]
    return Table(key, inp.label(title), frame, shown.reset_index(drop=True), note)


GRPO_TABLES = {"i2t": "Table 7", "t2i": "Table 8"}


def grpo_pairs(inp: ReportInputs) -> list[GRPORun]:
    """Finished GRPO runs whose base and tuned completer both have CQBench rows for the task."""
    if inp.cq is None or inp.cq.empty:
        return []
    have = set(zip(inp.cq["completer"], inp.cq["task"], strict=True))
    return [
        r
        for r in inp.grpo_runs
        if r.status in ("ran", "skipped")
        and (r.completer, r.task) in have
        and (r.tuned, r.task) in have
    ]


def grpo_delta(
    inp: ReportInputs, run: GRPORun, metric: MetricInfo, category: str | None = None
) -> BootstrapCI:
    """Paired bootstrap CI over items of ``mean(after − before)`` for one metric (and category).

    Items are paired by ``item_id`` (both completers completed the same CQBench sample); items
    where either side has no value are left out.
    """
    assert inp.cq is not None
    sub = inp.cq[inp.cq["task"] == run.task]
    if category is not None:
        sub = sub[sub["category"] == category]
    before = sub[sub["completer"] == run.completer].set_index("item_id")[metric.key]
    after = sub[sub["completer"] == run.tuned].set_index("item_id")[metric.key]
    both = pd.concat([before.rename("b"), after.rename("a")], axis=1, join="inner").dropna()
    return paired_bootstrap(
        both["b"].to_numpy(), both["a"].to_numpy(), inp.bootstrap_samples, seed=inp.seed
    )


def verdict(ci: BootstrapCI, higher_is_better: bool) -> str:
    """``helped`` when the CI excludes 0 on the better side, ``hurt`` on the worse side, else
    ``no clear change``."""
    if not ci.significant:
        return "no clear change"
    better = ci.delta > 0 if higher_is_better else ci.delta < 0
    return "helped" if better else "hurt"


def _ci_text(ci: BootstrapCI) -> str:
    return f"{ci.delta:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]" if ci.n else "–"


def _parse_failures(inp: ReportInputs, completer: str, task: str) -> str:
    if inp.counts is None or inp.counts.empty:
        return "?"
    row = inp.counts[(inp.counts["completer"] == completer) & (inp.counts["task"] == task)]
    if row.empty:
        return "?"
    return f"{int(row['parse_failures'].iloc[0])}/{int(row['items'].iloc[0])}"


def grpo_before_after_tables(inp: ReportInputs) -> list[Table]:
    """Paper Tables 7 (I→T) and 8 (T→I): base vs ``+grpo`` per metric, mean ± std over
    categories, then the paired delta over items with its bootstrap 95% CI and a verdict."""
    tables = []
    for run in grpo_pairs(inp):
        metrics = inp.task_metrics(run.task)
        if not metrics:
            continue
        sub = inp.cq[(inp.cq["task"] == run.task)]
        sub = sub[sub["completer"].isin([run.completer, run.tuned])]
        summary = two_level_summary(sub, "completer", "category", [m.key for m in metrics])
        rows, shown = {}, {}
        for who, label in ((run.completer, "before"), (run.tuned, "after GRPO")):
            name = f"{who} ({label})"
            rows[name] = {m.key: summary.loc[who, (m.key, "mean")] for m in metrics}
            shown[name] = {
                m.header: f"{fmt(summary.loc[who, (m.key, 'mean')])} ± "
                f"{fmt(summary.loc[who, (m.key, 'std')])}"
                for m in metrics
            }
        cis = {m.key: grpo_delta(inp, run, m) for m in metrics}
        rows["Δ after − before"] = {k: ci.delta for k, ci in cis.items()}
        rows["CI low"] = {k: ci.low for k, ci in cis.items()}
        rows["CI high"] = {k: ci.high for k, ci in cis.items()}
        shown["Δ after − before [95% CI]"] = {m.header: _ci_text(cis[m.key]) for m in metrics}
        verdicts = {m.label: verdict(cis[m.key], m.higher_is_better) for m in metrics}
        shown["GRPO"] = {m.header: verdicts[m.label] for m in metrics}
        values = pd.DataFrame(rows).T
        table = pd.DataFrame(shown).T
        table.index.name = "Completer"
        helped = [k for k, v in verdicts.items() if v == "helped"]
        not_helped = [k for k, v in verdicts.items() if v != "helped"]
        summary_line = (
            f"GRPO did not help on {', '.join(not_helped)} (the 95% CI includes 0 or is on the "
            "worse side)"
            if not_helped
            else "GRPO helped on every metric"
        )
        if helped and not_helped:
            summary_line = f"GRPO helped on {', '.join(helped)}; " + summary_line
        n = max(ci.n for ci in cis.values())
        tables.append(
            Table(
                f"grpo_{run.task}_{run.completer}",
                inp.label(
                    f"{GRPO_TABLES[run.task]}: {TASK_LABELS[run.task]} before vs after GRPO, "
                    f"{run.completer}"
                ),
                values,
                table,
                f"{summary_line}. Mean ± std across categories; Δ = mean over {n} paired "
                "CQBench items of after − before, paired bootstrap 95% CI over items; parse "
                f"failures before {_parse_failures(inp, run.completer, run.task)}, after "
                f"{_parse_failures(inp, run.tuned, run.task)}",
            )
        )
    return tables


def grpo_category_tables(inp: ReportInputs) -> list[Table]:
    """Paper Table 9: I→T before → after by category, with the per-category paired delta CI."""
    tables = []
    for run in grpo_pairs(inp):
        if run.task != "i2t":
            continue
        metrics = inp.task_metrics("i2t")
        sub = inp.cq[(inp.cq["task"] == "i2t")]
        means = sub.groupby(["completer", "category"])[[m.key for m in metrics]].mean()
        rows, shown = {}, {}
        for category in sorted(sub["category"].unique()):
            for m in metrics:
                ci = grpo_delta(inp, run, m, category)
                b = means.loc[(run.completer, category), m.key]
                a = means.loc[(run.tuned, category), m.key]
                rows.setdefault(category, {}).update(
                    {
                        f"{m.key}_before": b,
                        f"{m.key}_after": a,
                        f"{m.key}_delta": ci.delta,
                        f"{m.key}_ci_low": ci.low,
                        f"{m.key}_ci_high": ci.high,
                    }
                )
                shown.setdefault(category, {})[m.header] = (
                    f"{fmt(b)} → {fmt(a)} ({_ci_text(ci)}, {verdict(ci, m.higher_is_better)})"
                )
        table = pd.DataFrame(shown).T
        table.index.name = "Category"
        tables.append(
            Table(
                f"grpo_category_i2t_{run.completer}",
                inp.label(f"Table 9: I→T before → after GRPO by category, {run.completer}"),
                pd.DataFrame(rows).T,
                table,
                "cells: mean before → mean after (Δ [paired bootstrap 95% CI over the "
                "category's items], verdict)",
            )
        )
    return tables


def grpo_notes(inp: ReportInputs) -> list[str]:
    """One line per paper GRPO table / figure that this run cannot show, saying why."""
    pairs = grpo_pairs(inp)
    notes = []
    what = {"i2t": "Tables 7 and 9 (I→T)", "t2i": "Table 8 (T→I)"}
    for task in ("i2t", "t2i"):
        if any(r.task == task for r in pairs):
            continue
        planned = [r for r in inp.grpo_runs if r.task == task]
        if planned:
            why = "; ".join(
                f"grpo/{r.completer}/{task} {r.status}" + (f" ({r.reason})" if r.reason else "")
                for r in planned
            )
            notes.append(f"{what[task]}: no before/after in this run: {why}.")
        else:
            notes.append(f"{what[task]}: no GRPO stage ran for {TASK_LABELS[task]} in this run.")
    if not any(r.log is not None and not r.log.empty for r in inp.grpo_runs):
        notes.append("Fig. 5 (reward curves): no GRPO stage ran in this run.")
    return notes
