"""One bench run: the catalogue's stage graph, handed to the configured executor, then the report.

``run_bench`` is the whole of ``mmpc bench`` once the configuration is read: it records the
configuration in the run folder, builds the stage graph (:mod:`mmpc.apps.bench.graph`), lets the
executor (:mod:`mmpc.apps.bench.executors`) run or skip every stage, records every stage's status
and writes the report from the run folder.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from mmpc.apps.bench.config import BenchConfig, run_dir
from mmpc.apps.bench.executors.factory import make_executor
from mmpc.apps.bench.graph import build_stages
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


def run_bench(cfg: BenchConfig, show_progress: bool = True) -> tuple[Path, list[StageResult]]:
    """Run every stage (skipping finished ones) with the configured executor and write the
    report; returns (report, results)."""
    rdir = run_dir(cfg)
    rdir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(rdir / CONFIG, asdict(cfg), sort_keys=True, default=str)
    executor = make_executor(cfg, rdir, show_progress)
    start = time.perf_counter()
    results = executor.run(build_stages(cfg))
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
