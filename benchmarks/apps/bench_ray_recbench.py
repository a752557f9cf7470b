"""The demo bench's RecBench stages: the Ray executor against the local one, side by side.

Usage (as root; the script moves itself into a private network namespace before Ray starts)::

    uv run python benchmarks/apps/bench_ray_recbench.py [--runs-dir /tmp/mmpc-bench-ray]
        [--config apps/configs/bench/demo.yaml] [--cpus 2]

Every stage before RecBench (catalogue, completion, CQBench, features) runs once with the local
executor (kept in ``--runs-dir``, so a second call reuses it). Then two copies of that run folder
without RecBench are finished: one by the local executor with ``--cpus`` torch threads (one
training at a time, today's behaviour) and one by ``--executor ray`` with a local Ray of
``--cpus`` CPUs and one single-thread training per CPU. The RecBench time of each and the Ray
start-up time (printed apart, not in the Ray figure: ``ray.init`` plus the worker warm-up, in
which each worker imports torch, Lightning and the stage graph once, ``ray.warm_up``) come from
this one run; the report stage is left out of all. A third copy is finished by Ray without the
warm-up (each worker pays its imports inside its first training), printed for comparison.
Target on the 2-core development machine: Ray ≥ 1.4× faster.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from mmpc.apps.bench.config import BenchConfig, TaskResources, run_dir
from mmpc.apps.bench.executors.local import LocalExecutor
from mmpc.apps.bench.executors.netns import isolated_command, loopback_only
from mmpc.apps.bench.executors.ray import RayExecutor, ray_environment
from mmpc.apps.bench.graph import build_stages
from mmpc.apps.cli.bench import parse_config


def _time_recbench(
    cfg: BenchConfig, base: Path, executor: str, cpus: int, warm_up: bool = True
) -> tuple[float, float, float]:
    """Copy ``base`` without RecBench, finish it with ``executor``; (seconds, Ray start-up,
    worker warm-up), the last two not in the first."""
    tag = executor if executor == "local" or warm_up else f"{executor}-cold"
    cfg = replace(cfg, name=f"{cfg.name}-{tag}")
    rdir = run_dir(cfg)
    if rdir.exists():
        shutil.rmtree(rdir)
    shutil.copytree(base, rdir, ignore=shutil.ignore_patterns("recbench", "report", "logs"))
    stages = build_stages(cfg)
    start = time.perf_counter()
    if executor == "local":
        import torch

        torch.set_num_threads(cpus)
        results = LocalExecutor(rdir, show_progress=False).run(stages)
        startup = warm = 0.0
    else:
        resources = {**cfg.ray.resources, "recbench": TaskResources(num_cpus=1)}
        rcfg = replace(cfg.ray, num_cpus=cpus, resources=resources, warm_up=warm_up)
        cfg = replace(cfg, executor="ray", ray=rcfg)
        ray_exec = RayExecutor(cfg, rdir, show_progress=False)
        results = ray_exec.run(stages)
        startup, warm = ray_exec.startup_s, ray_exec.warm_up_s
    wall = time.perf_counter() - start - startup - warm
    bad = [r.name for r in results if r.status not in ("ran", "skipped")]
    ran = [r for r in results if r.status == "ran"]
    if bad or not all(r.name.startswith("recbench/") for r in ran):
        raise SystemExit(f"{executor}: unexpected stage results {bad or [r.name for r in ran]}")
    return wall, startup, warm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="apps/configs/bench/demo.yaml")
    parser.add_argument("--runs-dir", default="/tmp/mmpc-bench-ray")
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    ray_environment()  # before the local run below, whose lightning may import Ray first
    if not loopback_only():
        if os.geteuid() != 0 or not shutil.which("unshare"):
            raise SystemExit("run as root (the benchmark starts Ray in `unshare -n`)")
        sys.stdout.flush()
        os.execvp("unshare", isolated_command([sys.executable, *sys.orig_argv[1:]]))
    cfg, _, _ = parse_config(["--config", args.config, f"--runs_dir={args.runs_dir}"])
    base = run_dir(cfg)
    upstream = [s for s in build_stages(cfg) if not s.name.startswith("recbench/")]
    start = time.perf_counter()
    LocalExecutor(base, show_progress=False).run(upstream)
    print(f"stages before RecBench (run or reused): {time.perf_counter() - start:.1f} s")
    trainings = sum(s.name.startswith("recbench/") for s in build_stages(cfg))
    local, _, _ = _time_recbench(cfg, base, "local", args.cpus)
    ray_s, startup, warm = _time_recbench(cfg, base, "ray", args.cpus)
    cold_s, cold_startup, _ = _time_recbench(cfg, base, "ray", args.cpus, warm_up=False)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, load average "
        f"{os.getloadavg()[0]:.1f} (shared with other jobs unless idle)"
    )
    rows = [
        (f"local executor, one {args.cpus}-thread training at a time", local),
        (f"Ray executor, {args.cpus} single-thread trainings at a time", ray_s),
        ("Ray start-up, not in the figure above", startup + warm),
        (f"  ray.init (a local Ray of {args.cpus} CPUs)", startup),
        ("  worker warm-up (torch, Lightning, stage graph imported)", warm),
        ("Ray without warm-up (workers import in their first task)", cold_s),
    ]
    print(f"RecBench, {trainings} trainings:")
    for label, seconds in rows:
        print(f"  {label:<60} {seconds:7.1f} s")
    with_startup = local / (ray_s + startup + warm)
    print(f"  speed-up: {local / ray_s:.2f}x ({with_startup:.2f}x with start-up)")
    print(
        f"  speed-up without warm-up: {local / cold_s:.2f}x "
        f"({local / (cold_s + cold_startup):.2f}x with its ray.init, {cold_startup:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
