"""One bench run: the catalogue's stage graph, handed to the configured executor, then the report.

``run_bench`` is the whole of ``mmpc bench`` once the configuration is read: it records the
configuration in the run folder, builds the stage graph (:mod:`mmpc.apps.bench.graph`), lets the
executor (:mod:`mmpc.apps.bench.executors`) run or skip every stage, records every stage's status
and writes the report from the run folder. It holds the run folder's lock
(:mod:`mmpc.apps.bench.lock`) from start to end, and a full disk anywhere ends it with
:class:`~mmpc.apps.bench.disk.DiskFullError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from mmpc.apps.bench.config import BenchConfig, run_dir
from mmpc.apps.bench.disk import DiskFullError, disk_full_guard
from mmpc.apps.bench.executors.factory import make_executor
from mmpc.apps.bench.graph import build_stages
from mmpc.apps.bench.lock import RunLock
from mmpc.apps.bench.runner import StageRunner
from mmpc.apps.bench.stages import StageResult
from mmpc.apps.report.html import write_report
from mmpc.apps.report.load import load_run
from mmpc.metrics.files import atomic_write_json

STATUS = "status.json"
CONFIG = "bench_config.json"


def write_status(rdir: Path, results: list[StageResult]) -> None:
    """``status.json``: every stage's status, reason, duration and counts, by name."""
    atomic_write_json(
        rdir / STATUS,
        {
            r.name: {
                "status": r.status,
                "reason": r.reason,
                "duration_s": round(r.duration_s, 3),
                "counts": r.counts,
            }
            for r in results
        },
        sort_keys=True,
        default=str,
    )


_DISK_FULL = "no space left on device"


def _verify_lines_to(
    shown: Callable[[str], None], other: Callable[[str], None]
) -> Callable[[str], None]:
    """A log that shows ``[verify]`` lines to the user and sends the rest to ``other``."""

    def log(line: str) -> None:
        (shown if line.startswith("[verify]") else other)(line)

    return log


def run_bench(
    cfg: BenchConfig, show_progress: bool = True, full_verify: bool = False
) -> tuple[Path, list[StageResult]]:
    """Run every stage (skipping finished ones whose files still match their manifests; with
    ``full_verify`` every finished stage's files are hashed) with the configured executor and
    write the report; returns (report, results).

    Raises:
        RunLockedError: another live process holds the run folder.
        DiskFullError: the run folder's filesystem filled up.
    """
    rdir = run_dir(cfg)
    with disk_full_guard(rdir):
        rdir.mkdir(parents=True, exist_ok=True)
        with RunLock(rdir, log=lambda line: print(line, flush=True)):
            return _run_locked(cfg, rdir, show_progress, full_verify)


def _run_locked(
    cfg: BenchConfig, rdir: Path, show_progress: bool, full_verify: bool
) -> tuple[Path, list[StageResult]]:
    atomic_write_json(rdir / CONFIG, asdict(cfg), sort_keys=True, default=str)
    executor = make_executor(cfg, rdir, show_progress)
    start = time.perf_counter()
    stages = build_stages(cfg)
    runner = getattr(executor, "runner", None)  # the driver's runner decides what is trusted
    if isinstance(runner, StageRunner):
        runner.full_verify = full_verify
        runner.set_graph(stages)
        if runner.log is not executor.log:  # Ray's runner logs to a file: show [verify] lines
            runner.log = _verify_lines_to(executor.log, runner.log)
    results = executor.run(stages)
    full = [r for r in results if r.status == "failed" and _DISK_FULL in r.reason.lower()]
    if full:  # a Ray task's full disk comes back as a failed stage: the run ends all the same
        raise DiskFullError(rdir, full[0].name)
    write_status(rdir, results)
    t0 = time.perf_counter()
    inputs = load_run(rdir, results, cfg.report)
    files = write_report(inputs, rdir / "report")
    executor.log(
        f"[stage] report: done in {time.perf_counter() - t0:.1f} s "
        f"(tables={len(files.tables)}, figures={len(files.figures)})"
    )
    executor.log(f"[bench] finished in {time.perf_counter() - start:.1f} s; report: {files.html}")
    return files.html, results
