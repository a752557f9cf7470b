"""The executors' building blocks that need no Ray: stage parts, completion shards through the
exactly-once writer, resources per stage kind, the progress lines, the network guard and the
dry-run's wall time. (Ray itself: tests/apps/test_ray_executor.py.)"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import mmpc.apps.bench.executors.ray as ray_driver
from mmpc.apps.bench.config import (
    BenchConfig,
    CatalogConfig,
    CompleterConfig,
    RayConfig,
    TaskResources,
    run_dir,
)
from mmpc.apps.bench.executors import netns
from mmpc.apps.bench.executors.base import stage_kind, task_log
from mmpc.apps.bench.executors.factory import make_executor
from mmpc.apps.bench.executors.local import LocalExecutor
from mmpc.apps.bench.executors.progress import KindProgress
from mmpc.apps.bench.executors.ray import (
    RayExecutor,
    expected_seconds,
    start_ray,
    task_resources,
    task_threads,
    warm_up_slots,
)
from mmpc.apps.bench.graph import build_stages
from mmpc.apps.bench.plan import make_plan, makespan, wall_hours
from mmpc.apps.bench.runner import StageRunner
from mmpc.apps.bench.stages import MANIFEST, Stage, StageContext
from mmpc.completion.data import CompletionDataModule
from mmpc.completion.writer import read_jsonl

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("n_items", "batch", "shards"), [(30, 4, 3), (7, 2, 4), (5, 8, 2)])
def test_shards_partition_the_selection_in_whole_batches(
    n_items: int, batch: int, shards: int
) -> None:
    ids = [f"i{k:03d}" for k in range(n_items)]
    done = {ids[1], ids[-1]}
    pending = []
    for shard in range(shards):
        dm = CompletionDataModule("unused", batch_size=batch, shard=shard, num_shards=shards)
        dm.sample_ids = ids
        dm.skip_items(done)
        pending.append(dm.pending_ids)
        batches = {ids.index(i) // batch for i in dm.pending_ids}
        assert all(b % shards == shard for b in batches)
    flat = [i for part in pending for i in part]
    assert sorted(flat) == sorted(set(ids) - done)  # every pending item once, none lost
    with pytest.raises(ValueError, match="shard 3"):
        CompletionDataModule("unused", shard=3, num_shards=3)


def _parts_stage(log: list[str]) -> Stage:
    """A stage with three parts, each writing its own file; the finishing run does the rest."""

    def fn(ctx: StageContext) -> dict[str, int]:
        todo = [ctx.part] if ctx.part else ["a", "b", "c"]
        for part in todo:
            path = ctx.out / f"{part}.txt"
            if not path.exists():
                log.append(part)
                path.write_text(part * 3)
        if ctx.part:
            return {}
        return {"parts": len(list(ctx.out.glob("*.txt")))}

    return Stage("work/x", fn, {"k": 1}, parts=lambda ctx, shards: ["a", "b", "c"])


def test_parts_then_finish_equal_one_run(tmp_path: Path) -> None:
    log: list[str] = []
    whole = StageRunner(tmp_path / "whole", show_progress=False, log=lambda line: None)
    assert whole.run(_parts_stage(log)).status == "ran"
    assert log == ["a", "b", "c"]

    log.clear()
    split = StageRunner(tmp_path / "split", show_progress=False, log=lambda line: None)
    stage = _parts_stage(log)
    ctx = split.prepare(stage)
    assert isinstance(ctx, StageContext) and ctx.out.name == "x.partial"
    assert stage.parts is not None and list(stage.parts(ctx, 2)) == ["a", "b", "c"]
    for part in ("c", "a"):
        split.run_part(stage, part)
    result = split.execute(stage)
    assert result.status == "ran" and result.counts == {"parts": 3}
    assert log == ["c", "a", "b"]  # the finishing run did only the part left undone
    man = {
        k: json.loads((tmp_path / k / "work" / "x" / MANIFEST).read_text())["outputs_sha256"]
        for k in ("whole", "split")
    }
    assert man["whole"] == man["split"]
    assert split.prepare(stage).status == "skipped"  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def tiny_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmpc.completion.catalog import synthesize

    root = tmp_path_factory.mktemp("catalog") / "catalogue"
    synthesize("tiny", 0, root)
    return root


def _completion_cfg(runs: Path, catalog: Path, name: str) -> BenchConfig:
    comp = CompleterConfig(
        "histogram",
        tasks=["i2t"],
        generator={
            "class_path": "mmpc.completion.backends.RetrievalTitleBaseline",
            "init_args": {"features": "color-histogram", "exclude": "sample"},
        },
        batch_size=4,
    )
    return BenchConfig(
        name=name, runs_dir=str(runs), catalog=CatalogConfig(path=str(catalog)), completers=[comp]
    )


def _complete(cfg: BenchConfig, shards: int, kill_part: int | None = None) -> list[dict]:
    """Run catalog + the completion stage, its shards in reverse order; ``kill_part``'s file is
    cut after one record plus half a line and that shard run again, as after a SIGKILL."""
    stages = {s.name: s for s in build_stages(cfg)}
    runner = StageRunner(run_dir(cfg), show_progress=False, log=lambda line: None)
    assert runner.run(stages["catalog"]).status == "ran"
    stage = stages["complete/histogram/i2t"]
    ctx = runner.prepare(stage)
    assert isinstance(ctx, StageContext)
    parts = list(stage.parts(ctx, shards)) if stage.parts else []
    assert len(parts) == (min(shards, 8) if shards > 1 else 0)  # 30 items in batches of 4
    for k, part in reversed(list(enumerate(parts))):
        runner.run_part(stage, part)
        if k == kill_part:
            path = ctx.out / "completion" / "histogram" / "i2t" / "parts" / f"{part}.jsonl"
            first = path.read_text().splitlines(keepends=True)[0]
            path.write_text(first + first[: len(first) // 2])
            runner.run_part(stage, part)
    assert runner.execute(stage).status == "ran"
    out = run_dir(cfg) / "complete" / "histogram" / "i2t" / "completion" / "histogram" / "i2t"
    assert not (out / "parts").exists()
    records, dropped = read_jsonl(out / "records.jsonl")
    assert dropped == 0
    return records


def test_sharded_completion_is_exactly_once_for_any_shard_count(
    tmp_path: Path, tiny_catalog: Path
) -> None:
    reference = _complete(_completion_cfg(tmp_path, tiny_catalog, "one"), shards=1)
    assert len(reference) == 30 and len({r["item_id"] for r in reference}) == 30

    def content(records: list[dict]) -> list[dict]:  # timings are the only field that varies
        return [{k: v for k, v in r.items() if k != "timings"} for r in records]

    for shards, kill in ((3, 1), (20, 0)):
        records = _complete(_completion_cfg(tmp_path, tiny_catalog, f"s{shards}"), shards, kill)
        assert content(records) == content(reference)


def test_resources_threads_and_logs_per_stage_kind(tmp_path: Path) -> None:
    cfg = BenchConfig(
        ray=RayConfig(resources={"recbench": TaskResources(num_cpus=2.5, num_gpus=0.25)})
    )
    assert stage_kind("recbench/VBPR/gt/seed0") == "recbench"
    assert task_resources(cfg, "recbench/VBPR/gt/seed0").num_gpus == 0.25
    assert task_threads(task_resources(cfg, "recbench/x")) == 2
    assert task_resources(cfg, "grpo/smol/fit") == TaskResources()  # a kind not configured
    assert task_threads(TaskResources(num_cpus=0.5)) == 1
    assert BenchConfig().ray.resources["grpo"] == TaskResources()
    log = task_log(tmp_path, "recbench/VBPR/gt/seed0", "Video_Games")
    assert log == tmp_path / "logs" / "recbench__VBPR__gt__seed0__Video_Games.log"
    assert isinstance(make_executor(BenchConfig(), tmp_path), LocalExecutor)
    assert isinstance(make_executor(BenchConfig(executor="ray"), tmp_path), RayExecutor)
    with pytest.raises(ValueError, match="executor 'dask'"):
        make_executor(replace(BenchConfig(), executor="dask"), tmp_path)  # type: ignore[arg-type]


def test_ray_environment_is_set_by_the_executor_not_by_an_import(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ray reads RAY_ENABLE_UV_RUN_RUNTIME_ENV when first imported (lightning may import it), so
    the Ray executor sets it when made, before any stage runs; a local run leaves it alone."""
    monkeypatch.delenv("RAY_ENABLE_UV_RUN_RUNTIME_ENV", raising=False)
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    make_executor(BenchConfig(), tmp_path)
    assert "RAY_ENABLE_UV_RUN_RUNTIME_ENV" not in os.environ
    make_executor(BenchConfig(executor="ray"), tmp_path)
    assert os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] == "0"
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"


def test_warm_up_starts_as_many_workers_as_the_smallest_tasks_can_use() -> None:
    assert warm_up_slots(BenchConfig(), 2.0) == (2, 1.0)  # every kind 1 CPU
    quarter = RayConfig(
        resources={"recbench": TaskResources(num_cpus=0.25), "complete": TaskResources(4)}
    )
    assert warm_up_slots(BenchConfig(ray=quarter), 2.0) == (8, 0.25)
    big = RayConfig(resources={"complete": TaskResources(num_cpus=4)})
    assert warm_up_slots(BenchConfig(ray=big), 2.0) == (1, 4.0)  # at least one
    assert BenchConfig().ray.warm_up is True


def test_progress_keeps_one_line_per_kind(capsys: pytest.CaptureFixture[str]) -> None:
    names = ["catalog", "complete/a/i2t", "recbench/V/gt/seed0", "recbench/V/i2t/a/seed0"]
    progress = KindProgress(names, enabled=False)
    progress.set("catalog", "done")
    progress.set("recbench/V/gt/seed0", "running")
    progress.set("complete/a/i2t", "failed")
    assert progress.line("recbench") == "0 done, 1 running, 1 queued, 0 failed"
    progress.close()
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "[ray] catalog: 1 done, 0 running, 0 queued, 0 failed",
        "[ray] complete: 0 done, 0 running, 0 queued, 1 failed",
        "[ray] recbench: 0 done, 1 running, 1 queued, 0 failed",
    ]


def test_a_local_ray_only_starts_behind_the_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_driver, "loopback_only", lambda: False)
    with pytest.raises(RuntimeError, match="private network namespace"):
        start_ray(RayConfig())  # refuses before any Ray process starts

    execs: list[list[str]] = []

    def fake_exec(file: str, args: list[str]) -> None:
        execs.append(args)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execvp", fake_exec)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.delenv("MMPC_PRIVATE_NETNS", raising=False)
    monkeypatch.setattr(sys, "orig_argv", ["python", "mmpc", "bench", "--executor", "ray"])
    netns.reexec_isolated_if_needed(BenchConfig(executor="local"))
    netns.reexec_isolated_if_needed(BenchConfig(executor="ray", ray=RayConfig(address="auto")))
    assert execs == []
    with pytest.raises(SystemExit):
        netns.reexec_isolated_if_needed(BenchConfig(executor="ray"))
    assert execs == [
        [
            "unshare",
            "-n",
            "sh",
            "-c",
            'ip link set lo up && exec "$@"',
            "sh",
            sys.executable,
            "mmpc",
            "bench",
            "--executor",
            "ray",
        ]
    ]
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "pytest"])
    netns.reexec_isolated_if_needed(BenchConfig(executor="ray"))  # not `mmpc bench`: no re-exec
    assert len(execs) == 1


def test_makespan_and_wall_time_for_n_gpus() -> None:
    assert makespan([4, 3, 3, 2], 2) == 6  # longest first: 4+2 | 3+3
    assert makespan([5, 1], 4) == 5
    assert makespan([], 3) == 0
    from mmpc.apps.bench.plan import _list_schedule

    # the longest (1-GPU) job goes first; then the two half-GPU jobs share the GPU
    assert _list_schedule([(2, 0.5), (2, 0.5), (3, 1.0)], 1.0) == 5
    assert _list_schedule([(2, 4.0)], 1.0) == 2  # asks for more than there is: gets it all
    # job 1 waits for job 2 although a GPU is free: 3 + 2, beside the 4 of job 0
    assert _list_schedule([(4, 1.0), (2, 1.0), (3, 1.0)], 2.0, [None, 2, None]) == 5
    from mmpc.apps.cli.bench import parse_config

    cfg, _, _ = parse_config(["--config", str(ROOT / "apps/configs/bench/paper.yaml")])
    plan = make_plan(cfg)
    walls = [sum(wall_hours(cfg, plan, g)) for g in (1, 2, 4, 8)]
    assert walls == sorted(walls, reverse=True) and walls[-1] < walls[0] / 3
    comp1, rec1 = wall_hours(cfg, plan, 1)
    # one GPU: completion, GRPO runs and re-completion are sequential
    assert plan.grpo_hours > 0
    assert comp1 == pytest.approx(plan.completion_hours + plan.grpo_hours)
    assert rec1 == pytest.approx(plan.recbench_hours / 4, rel=0.01)  # four trainings per GPU


def test_dry_run_prints_the_wall_time_for_gpus(capsys: pytest.CaptureFixture[str]) -> None:
    from mmpc.apps.cli import bench as bench_cli

    paper = str(ROOT / "apps/configs/bench/paper.yaml")
    assert bench_cli.main(["--config", paper, "--dry-run", "--gpus", "4"]) == 0
    out = capsys.readouterr().out
    assert "accelerator-hours" in out
    assert "wall time on 4 GPU(s) with --executor ray" in out


def test_ready_completions_go_longest_first_and_live_bars_draw(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fn(ctx: StageContext) -> None:
        return None

    def complete(name: str, secs: float) -> Stage:
        spec = {"name": name, "seconds_per_item": {"i2t": secs}}
        return Stage(f"complete/{name}/i2t", fn, {"completer": spec, "task": "i2t"})

    stages = [
        complete("small", 0.8),
        complete("huge", 7.0),
        Stage("features/gt", fn),
        complete("mid", 3.0),
        Stage("grpo/small/i2t", fn, {"grpo": {"max_steps": 2}}),
    ]
    order = sorted(stages, key=expected_seconds, reverse=True)
    assert [s.name for s in order] == [
        "grpo/small/i2t",  # heads the longest chain: GRPO, then the re-completion
        "complete/huge/i2t",
        "complete/mid/i2t",
        "complete/small/i2t",
        "features/gt",
    ]
    progress = KindProgress([s.name for s in stages], enabled=True)
    progress.set("complete/huge/i2t", "running")
    progress.write("[stage] x: failed")
    progress.close()
    err = capsys.readouterr().err
    assert "1 running, 2 queued" in err and "[stage] x: failed" in err
