"""Run the demo bench end to end in a fresh run folder and print the per-stage time split.

Usage::

    uv run python benchmarks/apps/bench_demo.py [--config apps/configs/bench/demo.yaml]
        [--runs-dir /tmp/mmpc-bench-demo] [--keep]

Everything is measured in this one run: the wall time of the whole ``mmpc bench`` command and
each stage's duration from its manifest, summed per stage kind (catalog, complete, grpo, cqbench,
features, recbench, report), and each GRPO stage's seconds per step (its duration, model loading
and the reward set-up included, over its steps). The target is the whole demo within 10 minutes
on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from collections import defaultdict
from pathlib import Path

from mmpc.apps.cli import bench as bench_cli


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="apps/configs/bench/demo.yaml")
    parser.add_argument("--runs-dir", default="/tmp/mmpc-bench-demo")
    parser.add_argument("--keep", action="store_true", help="reuse an existing run folder")
    args = parser.parse_args()
    runs = Path(args.runs_dir)
    if runs.exists() and not args.keep:
        shutil.rmtree(runs)
    start = time.perf_counter()
    code = bench_cli.main(["--config", args.config, f"--runs_dir={runs}", "--quiet"])
    wall = time.perf_counter() - start
    cfg = json.loads(next(runs.glob("*/bench_config.json")).read_text())
    run = runs / cfg["name"]
    status = json.loads((run / "status.json").read_text())
    kinds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for name, info in status.items():
        kind = name.split("/")[0]
        kinds[kind] += float(info["duration_s"])
        counts[kind] += 1
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"load average at the end {os.getloadavg()[0]:.1f}"
    )
    print(f"{'stage kind':<12}{'stages':>8}{'seconds':>10}")
    for kind, secs in kinds.items():
        print(f"{kind:<12}{counts[kind]:>8}{secs:>10.1f}")
    for name, info in status.items():
        steps = int(info.get("counts", {}).get("steps", 0))
        if name.startswith("grpo/") and info["status"] == "ran" and steps:
            secs = float(info["duration_s"])
            print(f"{name}: {steps} steps in {secs:.1f} s = {secs / steps:.1f} s/step")
    not_ran = {k: v["status"] for k, v in status.items() if v["status"] not in ("ran", "skipped")}
    print(
        f"whole bench (incl. report): {wall:.1f} s, exit code {code}; "
        f"stages not run: {not_ran or 'none'}"
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
