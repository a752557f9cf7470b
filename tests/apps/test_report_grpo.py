"""The report's GRPO section on constructed before/after scores: Tables 7-9 recover the built-in
deltas with paired bootstrap CIs and say plainly where GRPO did not help; Fig. 5 is drawn from
the run's log; sections without a GRPO stage say so in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmpc.apps.report import ReportInputs, write_report
from mmpc.apps.report.data import GRPORun
from mmpc.apps.report.grpo import (
    grpo_before_after_tables,
    grpo_category_tables,
    grpo_delta,
    grpo_notes,
)
from mmpc.apps.schema import DEFAULT_METRICS

CATEGORIES = ("Books", "Games", "Tools")
# Per metric: the change GRPO makes to every item (plus noise). Cosine and PSNR improve,
# Overlap gets worse, MSE improves (lower is better), the others do not move.
EFFECTS = {"cosine": 0.10, "overlap": -0.10, "psnr": 1.0, "mse": -0.05}


def _cq(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for cat in CATEGORIES:
        for i in range(40):
            item = f"{cat}-{i}"
            base = {
                "i2t": {"cosine": 0.3, "euclidean": 0.5, "overlap": 0.4, "bertscore": 0.8},
                "t2i": {"psnr": 9.0, "ssim": 0.3, "mse": 0.2, "lpips": 0.7},
            }
            for task, metrics in base.items():
                noise = {k: rng.normal(0, 0.02) for k in metrics}
                for who, tuned in (("w", False), ("w+grpo", True)):
                    row = {"completer": who, "task": task, "category": cat, "item_id": item}
                    for k, v in metrics.items():
                        jitter = rng.normal(0, 0.02) if tuned and k in EFFECTS else 0.0
                        row[k] = v + noise[k] + jitter + (EFFECTS.get(k, 0.0) if tuned else 0.0)
                    rows.append(row)
    return pd.DataFrame(rows)


def _log(n: int = 30) -> pd.DataFrame:
    steps = np.arange(n)
    return pd.DataFrame(
        {
            "step": steps,
            "train/reward": 1 + steps / n,
            "train/rewards/json_format/mean": np.full(n, 1.0),
            "train/rewards/title_similarity/mean": steps / n,
        }
    )


def _with_held_out(log: pd.DataFrame) -> pd.DataFrame:
    """The merged stage log of a run that validated before training and every 10 steps."""
    held = pd.DataFrame({"step": [0, 10, 20, 30], "val/reward": [1.0, 1.2, 1.3, 1.5]})
    return log.merge(held, on="step", how="outer")


@pytest.fixture(scope="module")
def inputs() -> ReportInputs:
    return ReportInputs(
        title="GRPO test",
        synthetic=True,
        cq=_cq(np.random.default_rng(0)),
        grpo_runs=[GRPORun("w", "i2t", _with_held_out(_log())), GRPORun("w", "t2i", _log(12))],
        counts=pd.DataFrame(
            {
                "completer": ["w", "w+grpo"],
                "task": ["i2t", "i2t"],
                "items": [120, 120],
                "parse_failures": [7, 2],
            }
        ),
        bootstrap_samples=500,
    )


def _metric(key: str):
    return next(m for m in DEFAULT_METRICS if m.key == key)


def test_before_after_deltas_are_paired_over_items_with_cis_holding_the_effect(
    inputs: ReportInputs,
) -> None:
    run = inputs.grpo_runs[0]
    for key in ("cosine", "overlap", "euclidean"):
        ci = grpo_delta(inputs, run, _metric(key))
        cq = inputs.cq[inputs.cq["task"] == "i2t"].pivot(
            index="item_id", columns="completer", values=key
        )
        assert ci.n == 120
        assert ci.delta == pytest.approx(float((cq["w+grpo"] - cq["w"]).mean()))
        assert ci.low <= EFFECTS.get(key, 0.0) <= ci.high
    one = grpo_delta(inputs, run, _metric("cosine"), "Games")
    assert one.n == 40


def test_tables_7_and_8_give_verdicts_and_say_where_grpo_did_not_help(
    inputs: ReportInputs,
) -> None:
    tables = {t.key: t for t in grpo_before_after_tables(inputs)}
    assert set(tables) == {"grpo_i2t_w", "grpo_t2i_w"}
    t7 = tables["grpo_i2t_w"]
    assert t7.title.startswith("Table 7: I→T before vs after GRPO, w") and "(synthetic)" in t7.title
    verdicts = t7.shown.loc["GRPO"]
    assert verdicts["Cosine ↑"] == "helped"
    assert verdicts["Overlap ↑"] == "hurt"
    assert verdicts["Euclidean ↑"] == "no clear change"
    assert "GRPO helped on Cosine; GRPO did not help on Euclidean, Overlap" in t7.note
    assert "parse failures before 7/120, after 2/120" in t7.note
    assert t7.values.loc["Δ after − before", "cosine"] == pytest.approx(0.10, abs=0.01)
    assert t7.shown.loc["w (before)", "Cosine ↑"].count("±") == 1
    t8 = tables["grpo_t2i_w"].shown.loc["GRPO"]
    assert t8["PSNR ↑"] == "helped" and t8["MSE ↓"] == "helped"  # lower MSE is better
    assert t8["SSIM ↑"] == "no clear change"


def test_table_9_is_by_category(inputs: ReportInputs) -> None:
    (t9,) = grpo_category_tables(inputs)
    assert t9.key == "grpo_category_i2t_w" and list(t9.shown.index) == list(CATEGORIES)
    for cat in CATEGORIES:
        assert t9.values.loc[cat, "cosine_ci_low"] <= 0.10 <= t9.values.loc[cat, "cosine_ci_high"]
        assert "→" in t9.shown.loc[cat, "Cosine ↑"] and "helped" in t9.shown.loc[cat, "Cosine ↑"]


def test_report_has_the_grpo_section_and_fig5(inputs: ReportInputs, tmp_path: Path) -> None:
    files = write_report(inputs, tmp_path)
    md = files.markdown.read_text()
    for text in ("## GRPO alignment", "Table 7: I→T", "Table 8: T→I", "Table 9: I→T", "Fig. 5"):
        assert text in md, text
    assert "### Fig. 5: GRPO reward curves per task (raw and smoothed)" in md
    png = tmp_path / "grpo_rewards_by_task.png"
    with Image.open(png) as img:  # one panel per task, side by side
        assert img.size[0] > 2 * img.size[1]
    curves = pd.read_csv(tmp_path / "grpo_rewards_by_task.csv", index_col=0)
    assert curves.groupby("task").size().to_dict() == {"i2t": 31, "t2i": 12}
    i2t = curves[curves["task"] == "i2t"].set_index("step")
    assert set(i2t["completer"]) == {"w"}
    assert i2t["train/reward"].dropna().iloc[-1] == pytest.approx(1 + 29 / 30)
    assert i2t["train/rewards/title_similarity/mean"].iloc[10] == pytest.approx(10 / 30)
    # the held-out greedy reward after 0, 10, 20, 30 updates (step 30: validation only)
    held = i2t["val/reward"].dropna()
    assert held.index.tolist() == [0, 10, 20, 30] and held.tolist() == [1.0, 1.2, 1.3, 1.5]
    assert "val/reward" not in curves[curves["task"] == "t2i"].dropna(axis=1, how="all")
    assert "no GRPO stage ran" not in md
    assert grpo_notes(inputs) == []


def test_sections_without_a_grpo_stage_say_so_in_one_line(tmp_path: Path) -> None:
    inp = ReportInputs(
        cq=_cq(np.random.default_rng(1)),
        grpo_runs=[GRPORun("w", "t2i", None, "failed", "failed: boom")],
    )
    notes = grpo_notes(inp)
    assert notes == [
        "Tables 7 and 9 (I→T): no GRPO stage ran for I→T in this run.",
        "Table 8 (T→I): no before/after in this run: grpo/w/t2i failed (failed: boom).",
        "Fig. 5 (reward curves): no GRPO stage ran in this run.",
    ]
    md = write_report(inp, tmp_path).markdown.read_text()
    assert "## GRPO alignment" in md and all(n in md for n in notes)
    assert grpo_before_after_tables(inp) == []
