"""The report carries the paper's tables: Table 1 from the run's catalogue, Tables 10-11 from the
per-item scores, a paper number in every heading, and no spread or radar over a single model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmpc.apps.report import ReportInputs, write_report
from mmpc.apps.report.cqbench import completer_category_tables, cq_tables, notes
from mmpc.apps.report.data import GRPORun
from mmpc.apps.report.load import load_run
from mmpc.apps.schema import DEFAULT_METRICS, GT, MANIFEST, REC_METRICS
from mmpc.completion.catalog import synthesize

CATEGORIES = ("Books", "Games")
I2T = ("cosine", "euclidean", "overlap", "bertscore")
T2I = ("psnr", "ssim", "mse", "lpips", "clip")


def _cq(completers: dict[str, tuple[str, ...]], seed: int = 0) -> pd.DataFrame:
    """Per-item scores: ``completers`` maps a completer to the tasks it ran; 6 items a category."""
    rng = np.random.default_rng(seed)
    rows = []
    for comp, tasks in completers.items():
        for task in tasks:
            for cat in CATEGORIES:
                for i in range(6):
                    row = {"completer": comp, "task": task, "category": cat, "item_id": f"{cat}{i}"}
                    for key in I2T if task == "i2t" else T2I:
                        row[key] = float(rng.uniform(0.1, 0.9))
                    rows.append(row)
    return pd.DataFrame(rows)


def _rec() -> pd.DataFrame:
    rows = []
    for model in ("VBPR", "BM3", "FREEDOM"):
        for task in ("i2t", "t2i"):
            for cat in CATEGORIES:
                for cond, kind in ((GT, "gt"), ("alpha", "completer"), ("beta", "completer")):
                    rows.append(
                        {"model": model, "task": task, "condition": cond, "kind": kind}
                        | {"seed": 0, "category": cat}
                        | {m: 0.1 + 0.01 * len(cond) for m in REC_METRICS}
                    )
    return pd.DataFrame(rows)


def _log(n: int) -> pd.DataFrame:
    return pd.DataFrame({"step": np.arange(n), "train/reward": np.linspace(0.5, 1.0, n)})


def _catalog_frame() -> pd.DataFrame:
    frame = pd.DataFrame(
        {"users": [3, 4], "items": [10, 12], "interactions": [30, 40], "cqbench": [2, 3]}
        | {"grpo": [1, 1]},
        index=pd.Index(list(CATEGORIES), name="category"),
    )
    return frame


def test_table_1_counts_equal_the_catalogue(tmp_path: Path) -> None:
    run = tmp_path / "run"
    synthesize("tiny", 0, run / "catalog" / "catalogue")
    (run / "catalog" / MANIFEST).write_text(json.dumps({"notes": {"synthetic": True}}))
    inp = load_run(run)
    assert inp.catalog is not None
    root = run / "catalog" / "catalogue"
    items = pd.read_parquet(root / "items.parquet")
    inter = pd.read_parquet(root / "interactions.parquet").merge(
        items[["item_id", "category"]], on="item_id"
    )
    samples = pd.read_parquet(root / "samples.parquet").merge(
        items[["item_id", "category"]], on="item_id"
    )
    expected = pd.DataFrame(
        {
            "users": inter.groupby("category")["user_id"].nunique(),
            "items": items.groupby("category").size(),
            "interactions": inter.groupby("category").size(),
            "cqbench": samples[samples["sample"] == "cqbench"].groupby("category").size(),
            "grpo": samples[samples["sample"] == "grpo"].groupby("category").size(),
        }
    )
    assert inp.catalog.sort_index().astype(int).equals(expected.sort_index().astype(int))
    files = write_report(inp, tmp_path / "report")
    t1 = next(t for t in files.tables if t.key == "catalogue")
    assert t1.title.startswith("Table 1: ")
    assert t1.shown["Interactions"].str.replace(",", "").astype(int).sum() == len(inter)
    csv = pd.read_csv(tmp_path / "report" / "catalogue.csv", index_col=0)
    assert csv.loc[:, "users"].sum() == expected["users"].sum()
    assert "## Dataset" in files.markdown.read_text()


def test_tables_10_and_11_are_mean_and_std_over_the_items_of_each_cell() -> None:
    cq = _cq({"alpha": ("i2t", "t2i"), "beta": ("i2t", "t2i")})
    cq.loc[(cq["completer"] == "beta") & (cq["item_id"] == "Books0"), "psnr"] = np.nan
    inp = ReportInputs(cq=cq)
    tables = {t.key: t for t in completer_category_tables(inp)}
    assert set(tables) == {"cq_by_completer_category_i2t", "cq_by_completer_category_t2i"}
    assert tables["cq_by_completer_category_i2t"].title.startswith("Table 10: I→T")
    assert tables["cq_by_completer_category_t2i"].title.startswith("Table 11: T→I")
    for task, keys in (("i2t", I2T), ("t2i", T2I)):
        table = tables[f"cq_by_completer_category_{task}"]
        assert [h for h in table.shown.columns if h != "Items"] == [
            m.header for m in DEFAULT_METRICS if m.task == task
        ]
        for (comp, cat), group in cq[cq["task"] == task].groupby(["completer", "category"]):
            for key in keys:
                vals = group[key].dropna().to_numpy()
                mean, std = float(np.mean(vals)), float(np.std(vals))  # population std
                assert table.values.loc[(comp, cat), (key, "mean")] == pytest.approx(mean)
                assert table.values.loc[(comp, cat), (key, "std")] == pytest.approx(std)
                header = next(m.header for m in DEFAULT_METRICS if m.key == key)
                assert table.shown.loc[(comp, cat), header] == f"{mean:.3f} ± {std:.3f}"
            assert table.shown.loc[(comp, cat), "Items"] == len(group)


def test_every_heading_carries_the_papers_number(tmp_path: Path) -> None:
    cq = _cq({"alpha": ("i2t", "t2i"), "alpha+grpo": ("i2t", "t2i"), "beta": ("i2t", "t2i")})
    inp = ReportInputs(
        catalog=_catalog_frame(),
        cq=cq,
        rec=_rec(),
        grpo_runs=[GRPORun("alpha", "i2t", _log(20)), GRPORun("alpha", "t2i", _log(8))],
        bootstrap_samples=100,
    )
    files = write_report(inp, tmp_path)
    headings = re.findall(r"^### (.+)$", files.markdown.read_text(), flags=re.M)
    numbered = {m.group(0) for h in headings if (m := re.match(r"(Table \d+|Fig\. \d)", h))}
    assert numbered == {f"Table {n}" for n in range(1, 18)} | {"Fig. 3", "Fig. 4", "Fig. 5"}
    paper = {
        "catalogue": "Table 1",
        "cq_completer_i2t": "Table 2",
        "cq_completer_t2i": "Table 3",
        "cq_category_i2t": "Table 4",
        "cq_category_t2i": "Table 5",
        "rec_overall_i2t": "Table 6",
        "rec_overall_t2i": "Table 6",
        "grpo_i2t_alpha": "Table 7",
        "grpo_t2i_alpha": "Table 8",
        "grpo_category_i2t_alpha": "Table 9",
        "cq_by_completer_category_i2t": "Table 10",
        "cq_by_completer_category_t2i": "Table 11",
        "rec_VBPR_i2t": "Table 12",
        "rec_VBPR_t2i": "Table 13",
        "rec_BM3_i2t": "Table 14",
        "rec_BM3_t2i": "Table 15",
        "rec_FREEDOM_i2t": "Table 16",
        "rec_FREEDOM_t2i": "Table 17",
        "radar_i2t": "Fig. 3",
        "radar_t2i": "Fig. 3",
        "heatmap_i2t": "Fig. 4",
        "heatmap_t2i": "Fig. 4",
        "grpo_rewards_by_task": "Fig. 5",
    }
    titles = {x.key: x.title for x in [*files.tables, *files.figures]}
    for key, number in paper.items():
        assert titles[key].startswith(f"{number}: "), (key, titles[key])


def test_one_model_gets_no_spread_column_and_no_radar(tmp_path: Path) -> None:
    # I→T has two completers (spread and radar mean something); T→I has one.
    inp = ReportInputs(cq=_cq({"alpha": ("i2t", "t2i"), "beta": ("i2t",)}))
    by_key = {t.key: t for t in cq_tables(inp, "completer") + cq_tables(inp, "category")}
    t5 = by_key["cq_category_t2i"]
    assert not t5.shown.map(lambda c: "±" in c).any().any()
    assert "one completer only" in t5.note and "mean over one completer" in t5.title
    t4 = by_key["cq_category_i2t"]
    assert t4.shown.map(lambda c: "±" in c).all().all()
    assert "across models" in t4.title and not t4.note
    assert notes(inp) == [
        "Fig. 3 (T→I radar): left out, one completer only: normalised across completers it "
        "would score 1 on every axis."
    ]
    files = write_report(inp, tmp_path)
    figs = {f.key for f in files.figures}
    assert "radar_i2t" in figs and "radar_t2i" not in figs
    assert notes(inp)[0] in files.markdown.read_text()
    # one category: Tables 2-3 show the mean alone, whatever the number of completers
    one_cat = ReportInputs(cq=inp.cq[inp.cq["category"] == "Books"])
    t2 = {t.key: t for t in cq_tables(one_cat, "completer")}["cq_completer_i2t"]
    assert not t2.shown.map(lambda c: "±" in c).any().any()
    assert "one category only" in t2.note
