"""The Ray side of tests/apps/test_ray_executor.py, run in a private network namespace.

``python ray_checks.py RUNS`` starts one local Ray of 2 CPUs and, against it:

1. runs ``mmpc bench --executor ray`` on ``ray_tiny.yaml`` in a driver process while a watcher
   SIGKILLs the worker of a completion shard once it has written a batch, then the worker of a
   RecBench training once it is training, then the driver itself while RecBench runs;
2. runs the same command again (it must resume from the manifests and finish);
3. runs the local executor on the same config (one torch thread, as each Ray task);
4. adds a completer whose setup raises to a copy of the finished run and runs it, so its
   stage fails in a worker.

Everything observed goes to ``RUNS/summary.json``; the test module asserts on it and on the run
folders. Nothing here asserts, so one broken step still leaves the others' evidence.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "ray_tiny.yaml"
NAME = "ray-tiny"
COMPLETION = "complete/slow-histogram/i2t"
_PID = re.compile(r"pid (\d+)")


def log_pids(log: Path) -> list[int]:
    """Worker pids a task log names, in order (one per attempt)."""
    return [int(m) for m in _PID.findall(log.read_text())] if log.is_file() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Watcher(threading.Thread):
    """Kills a completion shard's worker, a RecBench training's worker, then the driver."""

    def __init__(self, run: Path, driver: subprocess.Popen[bytes]) -> None:
        super().__init__(daemon=True)
        from mmpc.apps.bench.executors.base import task_log

        self.run_dir, self.driver, self.task_log = run, driver, task_log
        self.kills: dict[str, Any] = {}
        self.stop = threading.Event()

    def _kill_task(self, what: str, stage: str, part: str, extra: dict[str, Any]) -> bool:
        pids = log_pids(self.task_log(self.run_dir, stage, part))
        if not pids or not alive(pids[-1]):
            return False
        os.kill(pids[-1], signal.SIGKILL)
        self.kills[what] = {"stage": stage, "part": part, "pid": pids[-1], **extra}
        return True

    def _completion_shard(self) -> bool:
        parts = self.run_dir / f"{COMPLETION}.partial" / "completion" / "slow-histogram" / "i2t"
        shard = parts / "parts" / "shard0-of-2.jsonl"
        lines = shard.read_text().count("\n") if shard.is_file() else 0
        return lines >= 2 and self._kill_task(
            "completion", COMPLETION, "shard0-of-2", {"records_before": lines}
        )

    def _recbench_training(self) -> bool:
        for train in sorted((self.run_dir / "recbench").glob("**/*.partial/work/*/train")):
            partial = train.parents[2]
            stage = partial.relative_to(self.run_dir).as_posix().removesuffix(".partial")
            if self._kill_task("recbench", stage, train.parent.name, {}):
                return True
        return False

    def _driver(self) -> bool:
        rec = self.run_dir / "recbench"
        finished = list(rec.glob("**/manifest.json"))
        running = [p for p in rec.glob("**/*.partial") if not (p / "manifest.json").exists()]
        if finished and running and self.driver.poll() is None:
            self.driver.send_signal(signal.SIGKILL)
            self.kills["driver"] = {"pid": self.driver.pid, "running": len(running)}
            return True
        return False

    def run(self) -> None:
        steps = [self._completion_shard, self._recbench_training, self._driver]
        while steps and not self.stop.is_set() and self.driver.poll() is None:
            try:
                if steps[0]():
                    steps.pop(0)
            except OSError:  # a folder renamed under us: look again
                pass
            time.sleep(0.05)


def bench(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with log.open("w") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "mmpc.apps.cli", "bench", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )


def main(runs: Path) -> None:
    from mmpc.apps.bench.config import RayConfig
    from mmpc.apps.bench.executors.netns import loopback_only
    from mmpc.apps.bench.executors.ray import start_ray

    summary: dict[str, Any] = {"loopback_only": loopback_only()}
    t0 = time.perf_counter()
    start_ray(RayConfig(num_cpus=2, object_store_memory=100_000_000))
    import ray

    summary["ray_start_s"] = round(time.perf_counter() - t0, 1)
    address = ray.get_runtime_context().gcs_address
    ray_args = ["--config", str(CONFIG), f"--runs_dir={runs / 'ray'}", f"--ray.address={address}"]
    run = runs / "ray" / NAME

    driver = bench([*ray_args, "--quiet"], runs / "driver1.log")
    watcher = Watcher(run, driver)
    watcher.start()
    try:
        summary["driver1_rc"] = driver.wait(timeout=1800)
    finally:
        watcher.stop.set()
        watcher.join()
    summary["kills"] = watcher.kills
    pids = {p for log in (run / "logs").glob("*.log") for p in log_pids(log)}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.5)
    summary["orphans"] = sorted(p for p in pids if alive(p))

    t0 = time.perf_counter()
    summary["driver2_rc"] = bench([*ray_args, "--quiet"], runs / "driver2.log").wait(timeout=1800)
    summary["driver2_s"] = round(time.perf_counter() - t0, 1)

    local_env = {**os.environ, "OMP_NUM_THREADS": "1"}
    local_args = ["--config", str(CONFIG), "--executor=local", f"--runs_dir={runs / 'local'}"]
    summary["local_rc"] = bench([*local_args, "--quiet"], runs / "local.log", local_env).wait(
        timeout=900
    )

    spec = yaml.safe_load(CONFIG.read_text())
    bogus = {**spec["completers"][0], "name": "bogus"}
    bogus["generator"] = {
        "class_path": "slow_backend.BrokenRetrieval",
        "init_args": {"features": "color-histogram"},
    }
    spec["completers"].append(bogus)
    (runs / "bogus.yaml").write_text(yaml.safe_dump(spec))
    shutil.copytree(run, runs / "bogus" / NAME, ignore=shutil.ignore_patterns("report"))
    fail_args = ["--config", str(runs / "bogus.yaml"), f"--runs_dir={runs / 'bogus'}"]
    summary["bogus_rc"] = bench(
        [*fail_args, f"--ray.address={address}", "--quiet"], runs / "bogus.log"
    ).wait(timeout=900)
    ray.shutdown()
    (runs / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
