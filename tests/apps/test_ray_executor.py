"""`mmpc bench --executor ray` against a local Ray of 2 CPUs, run in a private network
namespace (`unshare -n`, loopback only) that the test makes itself: Ray binds ports on every
interface and probes an outside address at start-up, so it never starts outside one here.

One subprocess (tests/apps/ray/ray_checks.py) does all the Ray work with one Ray session, so Ray
starts once: a bench run whose completion shard worker, RecBench training worker and driver are
SIGKILLed, its rerun, the local executor on the same config, and a run with a broken completer.
These tests check what it left behind."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mmpc.apps.bench.executors.netns import isolated_command
from mmpc.apps.bench.stages import MANIFEST

HERE = Path(__file__).resolve().parent / "ray"
NAME = "ray-tiny"
COMPLETION = "complete/slow-histogram/i2t"


def _can_isolate() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    probe = subprocess.run(isolated_command(["true"]), capture_output=True, timeout=30)
    return probe.returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not _can_isolate(),
        reason="needs root with `unshare` and `ip` to start Ray in a private network namespace",
    ),
]


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    runs = tmp_path_factory.mktemp("ray")
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    log = runs / "ray_checks.log"
    with log.open("w") as sink:
        proc = subprocess.run(
            isolated_command([sys.executable, str(HERE / "ray_checks.py"), str(runs)]),
            env={**os.environ, "PYTHONPATH": path},
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=3000,
        )
    assert proc.returncode == 0, log.read_text()[-3000:]
    return runs, json.loads((runs / "summary.json").read_text())


def _read(runs: Path, name: str) -> str:
    return (runs / name).read_text()


def test_ray_ran_behind_the_loopback_only(checks: tuple[Path, dict[str, Any]]) -> None:
    _, summary = checks
    assert summary["loopback_only"] is True


def test_killed_completion_shard_is_retried_and_every_item_written_once(
    checks: tuple[Path, dict[str, Any]],
) -> None:
    runs, summary = checks
    run = runs / "ray" / NAME
    kill = summary["kills"]["completion"]
    assert kill["part"] == "shard0-of-2" and kill["records_before"] >= 2
    log = run / "logs" / "complete__slow-histogram__i2t__shard0-of-2.log"
    pids = [int(p) for p in re.findall(r"pid (\d+)", log.read_text())]
    assert kill["pid"] in pids and pids[-1] != kill["pid"]  # Ray re-ran it in a new worker
    out = run / COMPLETION / "completion" / "slow-histogram" / "i2t"
    ids = [json.loads(line)["item_id"] for line in (out / "records.jsonl").read_text().splitlines()]
    sample = pd.read_parquet(run / "catalog" / "catalogue" / "samples.parquet")
    expected = sorted(sample.loc[sample["sample"] == "cqbench", "item_id"])
    assert sorted(ids) == expected  # every item once, none lost
    summary_json = json.loads((out / "summary.json").read_text())
    assert set(summary_json["merged_parts"]) == {"shard0-of-2", "shard1-of-2"}
    assert sum(summary_json["merged_parts"].values()) == len(expected)
    assert not (out / "parts").exists()


def test_killed_recbench_training_is_retried(checks: tuple[Path, dict[str, Any]]) -> None:
    runs, summary = checks
    run = runs / "ray" / NAME
    kill = summary["kills"]["recbench"]
    stage, group = kill["stage"], kill["part"]
    log = (run / "logs" / (stage.replace("/", "__") + f"__{group}.log")).read_text()
    pids = [int(p) for p in re.findall(r"pid (\d+)", log)]
    assert kill["pid"] in pids and pids[-1] != kill["pid"]
    assert (run / stage / MANIFEST).is_file()
    users = pd.read_csv(run / stage / "users.csv")
    assert group in set(users["category"]) and not users.duplicated("user_id").any()
    assert json.loads((run / stage / "results" / f"{group}.json").read_text())["epochs_run"] > 0


def test_killed_driver_resumes_from_the_manifests(checks: tuple[Path, dict[str, Any]]) -> None:
    runs, summary = checks
    assert summary["kills"]["driver"]["running"] >= 1
    assert summary["driver1_rc"] == -9
    assert summary["orphans"] == []  # the dead driver's workers went with it
    assert summary["driver2_rc"] == 0, _read(runs, "driver2.log")[-2000:]
    status = json.loads((runs / "ray" / NAME / "status.json").read_text())
    assert status["catalog"]["status"] == "skipped"
    assert status[COMPLETION]["status"] == "skipped"
    assert any(v["status"] == "ran" for k, v in status.items() if k.startswith("recbench/"))
    assert all(v["status"] in ("ran", "skipped") for v in status.values())


def test_warmed_up_workers_run_the_stages(checks: tuple[Path, dict[str, Any]]) -> None:
    """Each driver first warms one worker per CPU (``ray.warm_up``) and its stages then run on
    those workers: the first driver's catalogue stage and completion shards, and some of the
    rerun's RecBench tasks."""
    runs, _ = checks
    logs = runs / "ray" / NAME / "logs"
    warm = re.findall(
        r"\[ray\] warm-up: 2 task\(s\) on 2 worker\(s\) in [\d.]+ s, pids \[(\d+), (\d+)\]",
        (logs / "driver.log").read_text(),
    )
    assert len(warm) == 2, (logs / "driver.log").read_text()[-2000:]  # driver 1, its rerun
    first, rerun = ({int(p) for p in pair} for pair in warm)
    assert first.isdisjoint(rerun)  # a driver's workers are its own (another Ray job)
    pids = {
        log.name: [int(p) for p in re.findall(r"pid (\d+)", log.read_text())]
        for log in logs.glob("*.log")
        if log.name != "driver.log"
    }
    shards = [f"{COMPLETION.replace('/', '__')}__shard{k}-of-2.log" for k in (0, 1)]
    assert {pids["catalog.log"][0], *(pids[s][0] for s in shards)} <= first
    assert any(p in rerun for found in pids.values() for p in found)


def test_report_tables_from_ray_equal_the_local_executor(
    checks: tuple[Path, dict[str, Any]],
) -> None:
    runs, summary = checks
    assert summary["local_rc"] == 0, _read(runs, "local.log")[-2000:]
    ray_report, local_report = runs / "ray" / NAME / "report", runs / "local" / NAME / "report"
    tables = sorted(p.name for p in local_report.glob("*.csv") if p.name != "stage_times.csv")
    assert len(tables) >= 10
    assert tables == sorted(p.name for p in ray_report.glob("*.csv") if p.name != "stage_times.csv")
    exact = 0
    for name in tables:
        ray_rows, local_rows = _cells(ray_report / name), _cells(local_report / name)
        assert len(ray_rows) == len(local_rows) and len(ray_rows) > 1, name
        for ray_row, local_row in zip(ray_rows, local_rows, strict=True):
            assert len(ray_row) == len(local_row), name
            for a, b in zip(ray_row, local_row, strict=True):
                if a == b:
                    exact += 1
                    continue
                # numpy's SIMD sums may differ in the last bit between two processes
                assert math.isclose(float(a), float(b), rel_tol=1e-12), (name, a, b)
    assert exact > 0


def _cells(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


def test_driver_shows_one_line_per_kind_and_no_worker_output(
    checks: tuple[Path, dict[str, Any]],
) -> None:
    runs, _ = checks
    out = _read(runs, "driver2.log")
    for kind, n in (("catalog", 1), ("complete", 1), ("features", 4), ("recbench", 4)):
        assert f"[ray] {kind}: {n} done, 0 running, 0 queued, 0 failed" in out
    assert "index reference covers" not in out and "[task]" not in out  # worker output: files
    assert "[task] features/gt: pid" in _read(runs, f"ray/{NAME}/logs/features__gt.log")


def test_a_failed_task_reaches_the_user_in_one_line_with_its_log(
    checks: tuple[Path, dict[str, Any]],
) -> None:
    runs, summary = checks
    assert summary["bogus_rc"] == 0
    out = _read(runs, "bogus.log")
    lines = [line for line in out.splitlines() if "complete/bogus/i2t" in line]
    failed = [line for line in lines if line.startswith("[stage] complete/bogus/i2t: failed:")]
    assert len(failed) == 1, out[-2000:]
    assert "RuntimeError: BrokenRetrieval: broken on purpose" in failed[0]
    error, log = re.search(r"\(see (\S+)\)[^;]*; log (\S+)$", failed[0]).groups()  # type: ignore[union-attr]
    assert "Traceback" in Path(error).read_text()
    assert re.search(r"\[task\] complete/bogus/i2t( part \S+)?: pid", Path(log).read_text())
    assert "[stage] features/i2t/bogus: unavailable: needs complete/bogus/i2t" in out
    assert "[ray] complete: 1 done, 0 running, 0 queued, 1 failed" in out
    assert "Traceback" not in out
