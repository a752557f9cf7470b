"""`mmpc bench` end to end on the tiny preset: killed mid-stage, restarted, every table and figure
present with numbers; a finished stage re-run from scratch gives the same results; dry-run plans;
`mmpc report RUN`."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mmpc.apps import bench_cli, cli, report_cli
from mmpc.apps.bench.stages import MANIFEST

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "apps" / "configs" / "bench"
TINY = CONFIGS / "tiny.yaml"


def _partials(run: Path) -> list[Path]:
    return sorted(run.rglob("*.partial"))


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[str]]:
    """Run the tiny bench in a subprocess, SIGKILL it while a RecBench stage is half done, then
    finish it in-process through the CLI entry point. Returns (run, killed stage, args)."""
    runs = tmp_path_factory.mktemp("runs")
    args = ["--config", str(TINY), f"--runs_dir={runs}", "--quiet"]
    run = runs / "tiny"
    log = runs / "killed_run.log"
    with log.open("w") as sink:  # a file, not a pipe: a full pipe would stall the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "mmpc.apps.cli", "bench", *args], stdout=sink, stderr=sink
        )
        killed = None
        deadline = time.monotonic() + 1200
        while time.monotonic() < deadline and proc.poll() is None:
            partial = _partials(run / "recbench") if (run / "recbench").is_dir() else []
            if partial:
                killed = partial[0].relative_to(run).as_posix().removesuffix(".partial")
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        if killed is None and proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert killed is not None, f"no RecBench stage was seen running: {log.read_text()[-2000:]}"
    assert proc.returncode == -signal.SIGKILL
    assert not (run / killed / MANIFEST).exists()
    assert cli.main(["bench", *args]) == 0
    return run, killed, args


@pytest.mark.slow
def test_resumed_run_finishes_every_stage(killed_and_resumed: tuple[Path, str, list[str]]) -> None:
    run, killed, _ = killed_and_resumed
    assert (run / killed / MANIFEST).is_file()
    assert _partials(run) == []
    status = pd.read_json(run / "status.json").T
    assert set(status["status"]) <= {"ran", "skipped"}, status[status["status"] != "ran"]


def _finite_numbers(path: Path) -> int:
    frame = pd.read_csv(path)  # multi-level headers arrive as string rows: coerce every cell
    values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float).ravel()
    return sum(1 for v in values if math.isfinite(v))


@pytest.mark.slow
def test_every_table_and_figure_exists_and_holds_numbers(
    killed_and_resumed: tuple[Path, str, list[str]],
) -> None:
    run, _, _ = killed_and_resumed
    report = run / "report"
    tables = [
        "cq_completer_i2t",
        "cq_completer_t2i",
        "cq_category_i2t",
        "cq_category_t2i",
        "rec_overall_i2t",
        "rec_overall_t2i",
        "rec_VBPR_i2t",
        "rec_VBPR_t2i",
        "bootstrap",
        "spearman",
        "counts",
        "stage_times",
    ]
    for key in tables:
        assert _finite_numbers(report / f"{key}.csv") > 0, key
    figures = [
        "radar_i2t",
        "radar_t2i",
        "heatmap_i2t",
        "heatmap_t2i",
        "quality_vs_impact_i2t",
        "quality_vs_impact_t2i",
    ]
    for key in figures:
        assert (report / f"{key}.png").stat().st_size > 5000, key
        assert _finite_numbers(report / f"{key}.csv") > 0, key
    overall = pd.read_csv(report / "rec_overall_i2t.csv", index_col=0)
    assert {"ground_truth", "retrieval-histogram", "mean", "knn"} <= set(overall.index)
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= len(figures)
    assert "(synthetic)" in html and "CLIP similarity unavailable offline" in html
    assert "BERTScore (MiniLM)" in html and "ST-LPIPS" in html
    cq = pd.read_csv(run / "cqbench" / "retrieval-histogram" / "i2t" / "metrics.csv")
    assert len(cq) == 30 and cq["cosine"].between(0, 1).all()


@pytest.mark.slow
def test_rerunning_a_stage_from_scratch_gives_identical_results(
    killed_and_resumed: tuple[Path, str, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    run, killed, args = killed_and_resumed
    before = (run / killed / "users.csv").read_text()
    for path in sorted((run / killed).rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (run / killed).rmdir()
    capsys.readouterr()
    assert bench_cli.main(args) == 0
    out = capsys.readouterr().out
    assert f"[stage] {killed}: done in" in out
    assert "[stage] catalog: skipped (up to date)" in out
    assert (run / killed / "users.csv").read_text() == before


@pytest.mark.parametrize("name", ["tiny", "demo", "paper"])
def test_every_bench_config_plans_through_the_cli(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["bench", "--config", str(CONFIGS / f"{name}.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "totals:" in out and "accelerator-hours" in out
    if name == "paper":
        # 6 MLLMs × 2 tasks × 9 categories × 1,000 items; 3 models × (1 + 9 + 9) × 9 categories.
        assert "108000 generations, 54000 renders, 513 recommender trainings" in out


@pytest.mark.slow
def test_report_cli_adds_grpo_reward_curves(
    killed_and_resumed: tuple[Path, str, list[str]], tmp_path: Path
) -> None:
    run, _, _ = killed_and_resumed
    log = tmp_path / "metrics.csv"
    pd.DataFrame(
        {
            "step": range(20),
            "train/reward": [i / 20 for i in range(20)],
            "train/reward_json": [1.0] * 20,
        }
    ).to_csv(log, index=False)
    out = tmp_path / "report"
    assert report_cli.main([str(run), "--grpo-log", str(log), "--out", str(out)]) == 0
    assert (out / "grpo_rewards.png").stat().st_size > 5000
    assert "GRPO reward curves (synthetic)" in (out / "report.html").read_text()
    assert report_cli.main([str(tmp_path / "nope")]) == 2


def test_stage_graph_of_tiny_config() -> None:
    from mmpc.apps.bench.pipeline import build_stages

    cfg, dry_run, quiet = bench_cli.parse_config(["--config", str(TINY), "--quiet"])
    assert quiet and not dry_run
    stages = {s.name: s for s in build_stages(cfg)}
    assert next(iter(stages)) == "catalog"
    assert stages["cqbench/smollm2-retrieval/t2i"].inputs == (
        "catalog",
        "complete/smollm2-retrieval/t2i",
    )
    assert stages["features/i2t/imp-knn"].inputs == ("catalog", "features/gt")
    rec = [n for n in stages if n.startswith("recbench/")]
    # VBPR × 1 seed × (GT + I→T: 1 completer + 2 imputations + T→I: the same) = 7 runs.
    assert len(rec) == 7 and "recbench/VBPR/gt/seed0" in rec
    assert stages["recbench/VBPR/t2i/imp-mean/seed0"].inputs[-1] == "features/t2i/imp-mean"
    seen: set[str] = set()
    for stage in stages.values():  # every input is built before the stage that reads it
        assert set(stage.inputs) <= seen, stage.name
        seen.add(stage.name)
