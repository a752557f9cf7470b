"""The report: statistics on constructed cases, tables, figures, HTML/Markdown, Chromium render."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy import stats as sps

from mmpc.apps.report import GalleryItem, ReportInputs, write_report
from mmpc.apps.report.cqbench import cq_tables
from mmpc.apps.report.quality_impact import spearman_table
from mmpc.apps.report.recbench import REL_DIFF, bootstrap_frame, rec_overall_tables, rec_tables
from mmpc.apps.report.stats import paired_bootstrap, radar_scores, spearman, two_level_summary
from mmpc.apps.schema import GT, REC_METRICS

COMPLETERS = ("alpha", "beta", "gamma")
CATEGORIES = ("Books", "Games", "Tools")


def _cq_frame(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for ci, comp in enumerate(COMPLETERS):
        for gi, cat in enumerate(CATEGORIES):
            for i in range(8):
                base = 0.2 + 0.1 * ci + 0.05 * gi
                rows.append(
                    {
                        "completer": comp,
                        "task": "i2t",
                        "category": cat,
                        "item_id": f"{cat}-{i}",
                        "cosine": base + rng.normal(0, 0.02),
                        "euclidean": 0.4 + base / 4,
                        "overlap": base * 0.9,
                        "bertscore": 0.8 + base / 10,
                    }
                )
                rows.append(
                    {
                        "completer": comp,
                        "task": "t2i",
                        "category": cat,
                        "item_id": f"{cat}-{i}",
                        "psnr": 8 + ci + rng.normal(0, 0.1),
                        "ssim": 0.3 + 0.02 * ci,
                        "mse": 0.2 - 0.01 * ci,
                        "lpips": 0.7 - 0.01 * ci,
                        "clip": float("nan"),
                    }
                )
    return pd.DataFrame(rows)


def _rec_frames(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-user vectors with known effects; ``rec`` is their mean per run."""
    effects = {
        GT: ("gt", 0.0),
        "alpha": ("completer", -0.02),
        "beta": ("completer", 0.0),
        "gamma": ("completer", 0.01),
        "zeros": ("imputation", -0.05),
    }
    n_users = 60
    users = []
    for model in ("VBPR", "FREEDOM"):
        for task in ("i2t", "t2i"):
            for cat in CATEGORIES:
                for seed in (0, 1):
                    base = rng.uniform(0.1, 0.3, size=n_users)
                    for cond, (kind, eff) in effects.items():
                        vals = {m: base + eff + rng.normal(0, 0.01, n_users) for m in REC_METRICS}
                        users.append(
                            pd.DataFrame(
                                {
                                    "model": model,
                                    "task": task,
                                    "condition": cond,
                                    "kind": kind,
                                    "seed": seed,
                                    "category": cat,
                                    "user_id": [f"u{u}" for u in range(n_users)],
                                    **vals,
                                }
                            )
                        )
    rec_users = pd.concat(users, ignore_index=True)
    keys = ["model", "task", "condition", "kind", "seed", "category"]
    rec = rec_users.groupby(keys, as_index=False)[list(REC_METRICS)].mean()
    return rec, rec_users


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> ReportInputs:
    rng = np.random.default_rng(0)
    rec, rec_users = _rec_frames(rng)
    img_dir = tmp_path_factory.mktemp("imgs")
    Image.new("RGB", (64, 64), (200, 30, 30)).save(img_dir / "orig.png")
    Image.new("RGB", (64, 64), (30, 30, 200)).save(img_dir / "gen.png")
    steps = np.arange(50)
    log = pd.DataFrame(
        {
            "step": steps,
            "train/reward": np.log1p(steps) / 4,
            "train/reward_format": np.ones(50),
            "train/loss": rng.normal(size=50),
        }
    )
    return ReportInputs(
        title="Test report",
        synthetic=True,
        cq=_cq_frame(rng),
        rec=rec,
        rec_users=rec_users,
        grpo_log=log,
        bootstrap_samples=300,
        gallery=[
            GalleryItem(
                "Books-0", "Books", "alpha", "i2t", "Red book", "A red book", img_dir / "orig.png"
            ),
            GalleryItem(
                "Books-1",
                "Books",
                "alpha",
                "t2i",
                "Blue box",
                "a blue box photo",
                img_dir / "orig.png",
                img_dir / "gen.png",
            ),
        ],
        counts=pd.DataFrame(
            {
                "completer": ["alpha"],
                "task": ["i2t"],
                "items": [24],
                "ok": [22],
                "parse_failures": [2],
                "skipped": [0],
            }
        ),
        unavailable={"metric clip": "no CLIP weights configured (offline)"},
    )


def test_two_level_summary_is_mean_and_std_of_group_means(inputs: ReportInputs) -> None:
    cq = inputs.cq[inputs.cq["task"] == "i2t"]
    summary = two_level_summary(cq, "completer", "category", ["cosine"])
    for comp in COMPLETERS:
        per_cat = [
            cq[(cq["completer"] == comp) & (cq["category"] == c)]["cosine"].mean()
            for c in CATEGORIES
        ]
        assert summary.loc[comp, ("cosine", "mean")] == pytest.approx(np.mean(per_cat))
        assert summary.loc[comp, ("cosine", "std")] == pytest.approx(np.std(per_cat))


def test_radar_normalises_orients_and_sums() -> None:
    means = pd.DataFrame(
        {
            "psnr": [8.0, 9.0, 10.0],
            "mse": [0.3, 0.1, 0.2],
            "ssim": [0.5, 0.5, 0.5],
            "clip": [np.nan] * 3,
        },
        index=["a", "b", "c"],
    )
    scores = radar_scores(means, {"psnr": True, "mse": False, "ssim": True})
    assert "clip" not in scores.columns
    torch.testing.assert_close(
        torch.tensor(scores["psnr"].to_numpy()), torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        torch.tensor(scores["mse"].to_numpy()), torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)
    )
    assert (scores["ssim"] == 1.0).all()
    torch.testing.assert_close(
        torch.tensor(scores["sum"].to_numpy()), torch.tensor([1.0, 2.5, 2.5], dtype=torch.float64)
    )
    assert scores["sum"].max() <= 3.0


def test_paired_bootstrap_contains_true_delta_and_is_exact_on_mean() -> None:
    rng = np.random.default_rng(1)
    gt = rng.uniform(0, 1, 400)
    cond = gt + 0.05 + rng.normal(0, 0.05, 400)
    ci = paired_bootstrap(gt, cond, n_boot=2000, seed=3)
    assert ci.delta == pytest.approx(float(np.mean(cond - gt)))
    assert ci.low < 0.05 < ci.high
    assert ci.significant
    # Coverage: over repeated constructed experiments the 90% CI holds the true delta ~90%.
    hits = 0
    for rep in range(150):
        r = np.random.default_rng(100 + rep)
        g = r.uniform(0, 1, 80)
        c = g - 0.01 + r.normal(0, 0.05, 80)
        res = paired_bootstrap(g, c, n_boot=400, level=0.9, seed=rep)
        hits += res.low <= -0.01 <= res.high
    assert 0.80 <= hits / 150 <= 0.97
    with pytest.raises(ValueError, match="do not pair"):
        paired_bootstrap(gt, cond[:-1])


def test_spearman_equals_scipy_and_rank_pearson() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=30)
    y = x + rng.normal(size=30)
    y[3] = y[4]  # a tie
    rho, p, n = spearman(x, y)
    ref = sps.spearmanr(x, y)
    assert n == 30
    assert rho == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    rx, ry = sps.rankdata(x), sps.rankdata(y)
    assert rho == pytest.approx(np.corrcoef(rx, ry)[0, 1])
    assert np.isnan(spearman([1.0, 2.0], [3.0, 4.0])[0])


def test_cq_tables_show_mean_pm_std(inputs: ReportInputs) -> None:
    tables = {t.key: t for t in cq_tables(inputs, "completer") + cq_tables(inputs, "category")}
    assert set(tables) == {
        "cq_completer_i2t",
        "cq_completer_t2i",
        "cq_category_i2t",
        "cq_category_t2i",
    }
    t = tables["cq_completer_t2i"]
    assert "CLIP ↑" not in t.shown.columns  # all-NaN metric is left out, not shown as a number
    assert "MSE ↓" in t.shown.columns
    cell = t.shown.loc["gamma", "PSNR ↑"]
    mean = t.values.loc["gamma", ("psnr", "mean")]
    assert re.fullmatch(r"\d+\.\d{3} ± \d+\.\d{3}", cell) and cell.startswith(f"{mean:.3f}")
    assert all(tab.title.endswith("(synthetic)") for tab in tables.values())


def test_rec_tables_rel_diff_is_best_completer_vs_gt(inputs: ReportInputs) -> None:
    tables = {t.key: t for t in rec_tables(inputs)}
    assert set(tables) == {f"rec_{m}_{t}" for m in ("VBPR", "FREEDOM") for t in ("i2t", "t2i")}
    t = tables["rec_VBPR_i2t"]
    rec = inputs.rec
    sub = rec[(rec["model"] == "VBPR") & (rec["task"] == "i2t") & (rec["category"] == "Games")]
    means = sub.groupby("condition")["recall@20"].mean()
    best = means[["alpha", "beta", "gamma"]].max()
    expected = (best - means[GT]) / means[GT]
    assert t.values.loc[("Games", REL_DIFF), "recall@20"] == pytest.approx(expected)
    assert ("Games", "zeros (imputation)") in t.values.index
    overall = {x.key: x for x in rec_overall_tables(inputs)}["rec_overall_t2i"]
    assert list(overall.shown.index)[:1] == ["Ground Truth"]
    assert "zeros (imputation)" in overall.shown.index


def test_bootstrap_frame_recovers_constructed_effects(inputs: ReportInputs) -> None:
    frame = bootstrap_frame(inputs)
    n_groups = 2 * 2 * 3 * 4  # models × tasks × categories × non-GT conditions
    assert len(frame) == n_groups * len(REC_METRICS)
    effects = {"alpha": -0.02, "beta": 0.0, "gamma": 0.01, "zeros": -0.05}
    for cond, eff in effects.items():
        sub = frame[frame["condition"] == cond]
        covered = ((sub["ci_low"] <= eff) & (eff <= sub["ci_high"])).mean()
        assert covered >= 0.85, cond
        if eff != 0:
            assert sub["significant"].all(), cond
    users = inputs.rec_users
    row = frame[
        (frame["model"] == "VBPR")
        & (frame["task"] == "i2t")
        & (frame["category"] == "Books")
        & (frame["condition"] == "alpha")
        & (frame["metric"] == "ndcg@10")
    ]
    sel = users[
        (users["model"] == "VBPR") & (users["task"] == "i2t") & (users["category"] == "Books")
    ]
    per_seed = [
        sel[(sel["condition"] == "alpha") & (sel["seed"] == s)]["ndcg@10"].to_numpy()
        - sel[(sel["condition"] == GT) & (sel["seed"] == s)]["ndcg@10"].to_numpy()
        for s in (0, 1)
    ]
    assert row["delta"].item() == pytest.approx(np.mean(per_seed))
    assert row["seed_std"].item() == pytest.approx(np.std([d.mean() for d in per_seed]))


def test_spearman_table_matches_scipy_on_joined_pairs(inputs: ReportInputs) -> None:
    table = spearman_table(inputs)
    assert table is not None
    row = table.values[
        (table.values["Task"] == "I→T")
        & (table.values["Content metric"] == "Cosine")
        & (table.values["Impact"] == "R@20")
    ]
    cq = inputs.cq[inputs.cq["task"] == "i2t"].groupby(["completer", "category"])["cosine"].mean()
    rec = inputs.rec[inputs.rec["task"] == "i2t"]
    m = rec.groupby(["category", "condition"])["recall@20"].mean()
    x, y = [], []
    for (comp, cat), q in cq.items():
        x.append(q)
        y.append((m[(cat, comp)] - m[(cat, GT)]) / m[(cat, GT)])
    ref = sps.spearmanr(x, y)
    assert row["rho"].item() == pytest.approx(ref.statistic)
    assert row["p"].item() == pytest.approx(ref.pvalue)
    assert row["n"].item() == 9


def test_write_report_writes_every_table_figure_and_self_contained_html(
    inputs: ReportInputs, tmp_path: Path
) -> None:
    files = write_report(inputs, tmp_path)
    keys = {t.key for t in files.tables}
    assert {
        "cq_completer_i2t",
        "cq_category_t2i",
        "rec_overall_i2t",
        "rec_FREEDOM_t2i",
        "bootstrap",
        "spearman",
        "counts",
        "unavailable",
    } <= keys
    figs = {f.key for f in files.figures}
    assert figs == {
        "radar_i2t",
        "radar_t2i",
        "heatmap_i2t",
        "heatmap_t2i",
        "grpo_rewards",
        "quality_vs_impact_i2t",
        "quality_vs_impact_t2i",
    }
    for key in figs:
        with Image.open(tmp_path / f"{key}.png") as img:
            assert img.size[0] > 200 and img.size[1] > 200
    for key in keys:
        assert (tmp_path / f"{key}.csv").stat().st_size > 0
    page = files.html.read_text()
    assert page.count("data:image/png;base64,") == len(figs) + 3  # + gallery thumbnails
    assert "http://" not in page and "https://" not in page and "<script" not in page
    titles = re.findall(r"<h3 id='[^']+'>([^<]+)</h3>", page)
    titles += re.findall(r"<figcaption><b>([^<]+)</b>", page)
    assert len(titles) == len(keys) + len(figs) + 1
    assert all(t.endswith("(synthetic)") for t in titles)
    md = files.markdown.read_text()
    assert "Rel. Diff. (vs. GT)" in md and "no CLIP weights configured" in md
    assert md.count("![") == len(figs)
    heat = pd.read_csv(tmp_path / "heatmap_i2t.csv", index_col=0)
    assert heat.loc["zeros (imputation)"].lt(0).all()  # constructed degradation shows as < 0


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _screenshot(browser: str, page: Path, png: Path) -> str:
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={png}",
            "--window-size=1200,6000",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert png.exists(), proc.stderr[-2000:]
    return proc.stderr


def _coloured_fraction(png: Path) -> float:
    arr = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    sat = arr.max(axis=2) - arr.min(axis=2)
    return float((sat > 60).mean())


@pytest.mark.skipif(
    _chromium() is None, reason="chromium is not installed (apt-get install -y chromium)"
)
def test_html_renders_images_in_headless_chromium(inputs: ReportInputs, tmp_path: Path) -> None:
    browser = _chromium()
    assert browser is not None
    files = write_report(inputs, tmp_path / "report")
    log = _screenshot(browser, files.html, tmp_path / "shot.png")
    assert ":CONSOLE" not in log, [line for line in log.splitlines() if ":CONSOLE" in line]
    with_images = _coloured_fraction(tmp_path / "shot.png")
    # Control: the same page with every image removed renders (almost) no colour; the
    # console detector sees a console message on a page that makes one.
    bare = re.sub(r"src='data:image/png;base64,[^']+'", "src=''", files.html.read_text())
    bare = bare.replace("</body>", "<script>console.error('probe')</script></body>")
    (tmp_path / "bare.html").write_text(bare)
    log_bare = _screenshot(browser, tmp_path / "bare.html", tmp_path / "bare.png")
    assert "probe" in log_bare
    assert with_images > 0.01
    assert _coloured_fraction(tmp_path / "bare.png") < with_images / 10


def test_report_reads_a_run_without_importing_the_bench() -> None:
    # The report shares only mmpc.apps.schema with the bench: no import circle between the two.
    code = (
        "import sys, mmpc.apps.report, mmpc.apps.report.load, mmpc.apps.report.contents; "
        "print(sorted(m for m in sys.modules if m.startswith('mmpc.apps.bench')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
