"""`mmpc bench` end to end on the tiny preset: killed mid-stage, restarted, every table and figure
present with numbers (the GRPO section and the `+grpo` completer included); a finished stage re-run
from scratch gives the same results; the GRPO stage stopped mid-training resumes from its
checkpoint; dry-run plans; `mmpc report RUN`."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pandas as pd
import pytest

from mmpc.apps import cli
from mmpc.apps.bench.kinds.grpo import CHECKPOINTS, LAST, grpo_stage
from mmpc.apps.bench.runner import StageRunner
from mmpc.apps.bench.stages import MANIFEST, Stage
from mmpc.apps.cli import bench as bench_cli
from mmpc.apps.cli import report as report_cli
from mmpc.grpo.resume import checkpoint_step

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
        "grpo_t2i_smollm2-retrieval",
    ]
    for key in tables:
        assert _finite_numbers(report / f"{key}.csv") > 0, key
    figures = [
        "radar_t2i",
        "heatmap_i2t",
        "heatmap_t2i",
        "quality_vs_impact_i2t",
        "quality_vs_impact_t2i",
        "grpo_rewards_by_task",
    ]
    for key in figures:
        assert (report / f"{key}.png").stat().st_size > 5000, key
        assert _finite_numbers(report / f"{key}.csv") > 0, key
    overall = pd.read_csv(report / "rec_overall_i2t.csv", index_col=0)
    assert {"ground_truth", "retrieval-histogram", "mean", "knn"} <= set(overall.index)
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= len(figures)
    assert "(synthetic)" in html and "CLIP similarity unavailable offline" in html
    # one I→T completer: no radar (it would be a perfect square), a note saying why
    assert not (report / "radar_i2t.png").exists() and "Fig. 3 (I→T radar): left out" in html
    assert "BERTScore (MiniLM)" in html and "ST-LPIPS" in html
    cq = pd.read_csv(run / "cqbench" / "retrieval-histogram" / "i2t" / "metrics.csv")
    assert len(cq) == 30 and cq["cosine"].between(0, 1).all()
    # the GRPO-tuned writer is a completer like the others: CQBench and RecBench rows
    t2i = pd.read_csv(report / "rec_overall_t2i.csv", index_col=0)
    assert {"smollm2-retrieval", "smollm2-retrieval+grpo", "title-retrieval"} <= set(t2i.index)
    cq_t2i = pd.read_csv(report / "cq_completer_t2i.csv", index_col=0, header=[0, 1])
    assert "smollm2-retrieval+grpo" in cq_t2i.index
    counts = pd.read_csv(report / "counts.csv", index_col=0)
    assert {"smollm2-retrieval", "smollm2-retrieval+grpo"} <= set(counts["completer"])
    assert "parse_failures" in counts
    md = (report / "report.md").read_text()
    assert "Table 8: T→I before vs after GRPO, smollm2-retrieval" in md
    assert "Tables 7 and 9 (I→T): no GRPO stage ran for I→T in this run." in md
    log = pd.read_csv(run / "grpo" / "smollm2-retrieval" / "t2i" / "metrics.csv")
    assert log["step"].tolist() == [0, 1]
    adapter = run / "grpo" / "smollm2-retrieval" / "t2i" / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file()
    assert not (run / "grpo" / "smollm2-retrieval" / "t2i" / CHECKPOINTS).exists()


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
        # + GRPO of Qwen2.5-VL-7B on both tasks: 2 × 9,000 re-completions (+ 9,000 renders),
        # 3 models × (1 + 10 + 10) × 9 categories trainings, 2 × 2,000 GRPO steps.
        assert (
            "126000 generations, 63000 renders, 567 recommender trainings, 4000 GRPO steps" in out
        )
        assert "grpo qwen2.5-vl-7b/i2t: 2000 steps (group size 16)" in out


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
    from mmpc.apps.bench.graph import build_stages

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
    # VBPR × 1 seed × (GT + I→T: 1 completer + 2 imputations + T→I: 3 completers (one of
    # them "+grpo", one the LLM-free title-retrieval) + 2 imputations) = 9 runs.
    assert len(rec) == 9 and "recbench/VBPR/gt/seed0" in rec
    assert "recbench/VBPR/t2i/title-retrieval/seed0" in rec
    assert stages["recbench/VBPR/t2i/imp-mean/seed0"].inputs[-1] == "features/t2i/imp-mean"
    seen: set[str] = set()
    for stage in stages.values():  # every input is built before the stage that reads it
        assert set(stage.inputs) <= seen, stage.name
        seen.add(stage.name)


def test_feature_image_size_reaches_the_stage_fingerprint() -> None:
    """A different encoder input size must re-encode the features, not reuse the old ones."""
    from mmpc.apps.bench.graph import build_stages

    configs = {}
    for size in (224, 128):
        cfg, _, _ = bench_cli.parse_config(
            ["--config", str(TINY), "--quiet", f"--features.image_size={size}"]
        )
        assert cfg.features.image_size == size
        stages = {s.name: s for s in build_stages(cfg)}
        configs[size] = (stages["features/gt"].config, stages["features/i2t/imp-knn"].config)
    assert configs[224][0]["image_size"] == 224 and configs[128][0]["image_size"] == 128
    assert configs[224][1] != configs[128][1]


class _StopBeforeStep(L.Callback):
    """Raises before step ``step``, i.e. after step ``step - 1``'s checkpoint was written."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError(f"stopped before step {self.step}")


@pytest.mark.slow
def test_grpo_stage_stopped_mid_training_resumes_from_its_checkpoint(
    killed_and_resumed: tuple[Path, str, list[str]], tmp_path: Path
) -> None:
    """The tiny bench's GRPO run, stopped in-process before its step 1 and run again: the second
    attempt starts from ``checkpoints/last.ckpt`` (step 1), no step runs twice, the log is
    continuous and ends at max_steps, and every logged value equals the uninterrupted run's (the
    bench's own, in the fixture), so the data order, the RNG and the optimiser resumed exactly."""
    run, _, args = killed_and_resumed
    cfg, _, _ = bench_cli.parse_config(args)
    spec = cfg.grpo[0]
    assert spec.max_steps == 2
    catalog = run / "catalog" / "catalogue"
    runner = StageRunner(tmp_path, show_progress=False, log=lambda line: None)

    def stage(*callbacks: object) -> Stage:
        return Stage(spec.stage_name, grpo_stage(spec, "cpu", lambda ctx: catalog, callbacks))

    first = runner.run(stage(_StopBeforeStep(1)))
    assert first.status == "failed" and "stopped before step 1" in first.reason
    partial = tmp_path / f"{spec.stage_name}.partial"
    assert checkpoint_step(partial / CHECKPOINTS / LAST) == 1
    second = runner.run(stage())
    assert second.status == "ran", second.reason
    assert second.counts == {"steps": 2, "logged_steps": 2, "attempts": 2}
    out = tmp_path / spec.stage_name
    assert runner.manifest(spec.stage_name)["notes"]["resumed_from_step"] == 1
    attempts = [pd.read_csv(out / "logs" / f"version_{k}" / "metrics.csv") for k in (0, 1)]
    assert attempts[0]["step"].tolist() == [0]
    assert attempts[1]["step"].tolist() == [1]  # resumed at step 1: step 0 not re-run
    merged = pd.read_csv(out / "metrics.csv")
    assert merged["step"].tolist() == [0, 1]
    reference = pd.read_csv(run / spec.stage_name / "metrics.csv")
    cols = [c for c in reference if c.startswith("train/")]
    assert "train/reward" in cols and "train/loss" in cols
    pd.testing.assert_frame_equal(merged[cols], reference[cols], rtol=1e-4, atol=1e-6)
    assert not (out / "error.txt").exists() and not (out / CHECKPOINTS).exists()
