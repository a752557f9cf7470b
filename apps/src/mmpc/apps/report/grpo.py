"""GRPO in the report: each tuned completer ``<c>+grpo`` against its base ``<c>``.

Paper tables and figures reproduced: before vs after per metric (Tables 7 for I→T, 8 for T→I),
I→T before → after by category (Table 9), with a paired bootstrap CI over items for every delta
and a plain verdict; the reward curves (Fig. 5), from the run's GRPO stages or a CSV log given
to ``mmpc report --grpo-log``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmpc.apps.report.data import GRPORun, ReportInputs
from mmpc.apps.report.plot import Figure, plt, save_png
from mmpc.apps.report.stats import BootstrapCI, paired_bootstrap, two_level_summary
from mmpc.apps.report.table import Table, fmt
from mmpc.apps.schema import TASK_LABELS, MetricInfo
from mmpc.grpo.plotting import held_out_rewards, rewards_by_step

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
        spread = sub["category"].nunique() >= 2  # a std over one category is no spread
        rows, shown = {}, {}
        for who, label in ((run.completer, "before"), (run.tuned, "after GRPO")):
            name = f"{who} ({label})"
            rows[name] = {m.key: summary.loc[who, (m.key, "mean")] for m in metrics}
            shown[name] = {
                m.header: f"{fmt(summary.loc[who, (m.key, 'mean')])} ± "
                f"{fmt(summary.loc[who, (m.key, 'std')])}"
                if spread
                else fmt(summary.loc[who, (m.key, "mean")])
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
                f"{summary_line}. "
                + ("Mean ± std across categories" if spread else "Mean over one category")
                + f"; Δ = mean over {n} paired "
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
    title = inp.label("Fig. 5: GRPO reward curves")
    ax.set_title(title, fontsize=10)
    path = out / "grpo_rewards.png"
    save_png(fig, path)
    return [Figure("grpo_rewards", title, path, log[[*([step] if step else []), *cols]])]


def _reward_table(log: pd.DataFrame) -> pd.DataFrame | None:
    """Mean total and per-component reward per step of a GRPO stage's log (None without one)."""
    if log is None or log.empty or "train/reward" not in log or "step" not in log:
        return None
    return rewards_by_step(log)


def grpo_run_figures(inp: ReportInputs, out: Path) -> list[Figure]:
    """Fig. 5 for this run: one panel per task; per GRPO stage of the task its total and
    per-component mean reward per step, raw (thin) and as a rolling mean (thick, window ≈ a tenth
    of the steps), and, where the stage validated, the total reward of the held-out items'
    greedy answers (dashed, with markers). The figure's CSV holds every curve, long:
    ``task, completer, step, rewards``."""
    curves: dict[str, list[tuple[GRPORun, pd.DataFrame]]] = {}
    for run in inp.grpo_runs:
        table = _reward_table(run.log)
        if table is not None:
            curves.setdefault(run.task, []).append((run, table))
    if not curves:
        return []
    tasks = [t for t in ("i2t", "t2i") if t in curves]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4), squeeze=False)
    frames = []
    for ax, task in zip(axes[0], tasks, strict=True):
        many = len(curves[task]) > 1
        for run, table in curves[task]:
            window = max(1, int(np.ceil(len(table) / 10)))
            for col in table:
                label = "total" if col == "train/reward" else col.split("/")[2]
                label = f"{run.completer}: {label}" if many else label
                (line,) = ax.plot(table.index, table[col], alpha=0.35, linewidth=1)
                smooth = table[col].rolling(window, min_periods=1).mean()
                ax.plot(
                    table.index,
                    smooth,
                    color=line.get_color(),
                    linewidth=2,
                    label=f"{label} (rolling {window})",
                )
            frame = table.reset_index()
            held = held_out_rewards(run.log)
            if held is not None:
                label = "total, held-out items answered greedily"
                ax.plot(
                    held.index,
                    held,
                    color="black",
                    marker="o",
                    linestyle="--",
                    linewidth=1.5,
                    label=f"{run.completer}: {label}" if many else label,
                )
                frame = frame.merge(held.reset_index(), on="step", how="outer")
            frames.append(frame.assign(task=task, completer=run.completer))
        steps = max(len(t) for _, t in curves[task])
        who = ", ".join(r.completer for r, _ in curves[task])
        ax.set_title(f"{TASK_LABELS[task]}: {who} ({steps} steps)", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("mean reward")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    title = inp.label("Fig. 5: GRPO reward curves per task (raw and smoothed)")
    fig.suptitle(title, fontsize=10)
    key = "grpo_rewards_by_task"
    path = out / f"{key}.png"
    save_png(fig, path)
    data = pd.concat(frames, ignore_index=True)
    data = data[["task", "completer", *[c for c in data if c not in ("task", "completer")]]]
    return [Figure(key, title, path, data)]


def tables(inp: ReportInputs) -> list[Table]:
    """Every GRPO table, in reading order: Tables 7 and 8 (before vs after), then Table 9."""
    return grpo_before_after_tables(inp) + grpo_category_tables(inp)


def figures(inp: ReportInputs, out: Path) -> list[Figure]:
    """Every GRPO figure, written under ``out``: the ``--grpo-log`` curves, then Fig. 5."""
    return reward_figure(inp, out) + grpo_run_figures(inp, out)
