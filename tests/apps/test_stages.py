"""The stage runner: fingerprints, skipping, invalidation, item logs, and kill-and-restart."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mmpc.apps.bench.itemlog import ItemLog
from mmpc.apps.bench.manifest import config_hash, tree_hash
from mmpc.apps.bench.runner import StageRunner
from mmpc.apps.bench.stages import (
    MANIFEST,
    Stage,
    StageContext,
    StageUnavailableError,
    check_stage_name,
)


def _square_stage(calls: list[str]):
    def fn(ctx: StageContext) -> dict[str, int]:
        calls.append(ctx.name)
        n = 5
        (ctx.out / "squares.txt").write_text("\n".join(str(i * i) for i in range(n)))
        return {"items": n}

    return fn


def _sum_stage(calls: list[str]):
    def fn(ctx: StageContext) -> dict[str, int]:
        calls.append(ctx.name)
        values = (ctx.inputs["squares"] / "squares.txt").read_text().split()
        (ctx.out / "sum.txt").write_text(str(sum(int(v) for v in values)))
        return {"items": 1}

    return fn


def test_stage_runs_once_then_skips_and_reruns_when_config_changes(tmp_path: Path) -> None:
    calls: list[str] = []
    lines: list[str] = []
    runner = StageRunner(tmp_path, show_progress=False, log=lines.append)
    a = Stage("squares", _square_stage(calls), {"n": 5})
    b = Stage("sum", _sum_stage(calls), {}, inputs=("squares",))
    assert [r.status for r in runner.run_all([a, b])] == ["ran", "ran"]
    assert (tmp_path / "sum" / "sum.txt").read_text() == "30"
    man = json.loads((tmp_path / "squares" / MANIFEST).read_text())
    assert man["counts"] == {"items": 5}
    assert man["config_sha256"] == config_hash({"n": 5})
    assert man["outputs_sha256"] == tree_hash(tmp_path / "squares")
    assert "mmpc-apps" in man["versions"]
    assert not (tmp_path / "squares.partial").exists()
    assert any(line.startswith("[stage] squares: done in") for line in lines)

    assert [r.status for r in runner.run_all([a, b])] == ["skipped", "skipped"]
    assert calls == ["squares", "sum"]
    # A changed config upstream re-runs that stage and, through the fingerprint, its dependant.
    a2 = Stage("squares", _square_stage(calls), {"n": 6})
    assert [r.status for r in runner.run_all([a2, b])] == ["ran", "ran"]
    assert calls == ["squares", "sum", "squares", "sum"]


def test_changed_input_outputs_invalidate_dependant(tmp_path: Path) -> None:
    calls: list[str] = []
    runner = StageRunner(tmp_path, show_progress=False, log=lambda _: None)
    a = Stage("squares", _square_stage(calls))
    b = Stage("sum", _sum_stage(calls), inputs=("squares",))
    runner.run_all([a, b])
    fp = runner.fingerprint(b)
    man_path = tmp_path / "squares" / MANIFEST
    man = json.loads(man_path.read_text())
    man["outputs_sha256"] = "0" * 64
    man_path.write_text(json.dumps(man))
    assert runner.fingerprint(b) != fp
    assert runner.run(b).status == "ran"


def test_unavailable_stage_propagates_and_is_not_cached(tmp_path: Path) -> None:
    def missing(ctx: StageContext) -> None:
        raise StageUnavailableError("CLIP weights not configured")

    calls: list[str] = []
    runner = StageRunner(tmp_path, show_progress=False, log=lambda _: None)
    res = runner.run_all(
        [Stage("clip", missing), Stage("sum", _sum_stage(calls), inputs=("clip",))]
    )
    assert [r.status for r in res] == ["unavailable", "unavailable"]
    assert res[1].reason == "needs clip, which is unavailable"
    assert calls == []
    assert not (tmp_path / "clip" / MANIFEST).exists()


def test_failing_stage_is_reported_and_others_still_run(tmp_path: Path) -> None:
    def broken(ctx: StageContext) -> None:
        raise ZeroDivisionError("division by zero in stage")

    calls: list[str] = []
    runner = StageRunner(tmp_path, show_progress=False, log=lambda _: None)
    res = runner.run_all(
        [
            Stage("broken", broken),
            Stage("after", _sum_stage(calls), inputs=("broken",)),
            Stage("squares", _square_stage(calls)),
        ]
    )
    assert [r.status for r in res] == ["failed", "unavailable", "ran"]
    assert res[0].reason.startswith("failed: ZeroDivisionError: division by zero in stage")
    assert "Traceback" in (tmp_path / "broken.partial" / "error.txt").read_text()
    assert calls == ["squares"]


@pytest.mark.parametrize("name", ["", "../x", "a/../b", "a/.partial", "x.partial", "a b", "/abs"])
def test_bad_stage_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="stage name"):
        check_stage_name(name)


def test_item_log_drops_torn_line_and_finalizes_sorted(tmp_path: Path) -> None:
    log = ItemLog(tmp_path / "log.jsonl")
    for key in ["c", "a", "b"]:
        log.append({"item_id": key, "v": key.upper()})
    log.close()
    with (tmp_path / "log.jsonl").open("a") as fh:
        fh.write('{"item_id": "d", "v"')  # a record cut by a kill
    again = ItemLog(tmp_path / "log.jsonl")
    assert again.done() == {"a", "b", "c"}
    assert again.finalize(tmp_path / "out.jsonl") == 3
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["item_id"] for r in rows] == ["a", "b", "c"]
    assert not (tmp_path / "log.jsonl").exists()


_SCRIPT = textwrap.dedent("""
    import hashlib, sys, time
    from pathlib import Path
    from mmpc.apps.bench.itemlog import ItemLog
    from mmpc.apps.bench.runner import StageRunner
    from mmpc.apps.bench.stages import Stage

    DELAY = float(sys.argv[2])

    def digest(ctx):
        keys = [f"item{i:03d}" for i in range(40)]
        log = ItemLog(ctx.out / "log.jsonl")
        ctx.notes["resumed_from"] = len(log.done())
        bar = ctx.progress(total=len(keys), initial=len(log.done()))
        for key in keys:
            if key in log.done():
                continue
            time.sleep(DELAY)
            log.append({"item_id": key, "h": hashlib.sha256(key.encode()).hexdigest()[:12]})
            bar.update(1)
        bar.close()
        return {"items": log.finalize(ctx.out / "digests.jsonl")}

    def total(ctx):
        text = (ctx.inputs["digest"] / "digests.jsonl").read_text()
        (ctx.out / "total.txt").write_text(hashlib.sha256(text.encode()).hexdigest())
        return {"items": 1}

    runner = StageRunner(Path(sys.argv[1]), show_progress=False)
    runner.run_all([Stage("digest", digest, {"n": 40}),
                    Stage("total", total, inputs=("digest",))])
""")


def _run_script(script: Path, run_dir: Path, delay: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), str(run_dir), str(delay)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_mid_stage_then_restart_matches_uninterrupted_run(tmp_path: Path) -> None:
    script = tmp_path / "bench_script.py"
    script.write_text(_SCRIPT)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    proc = _run_script(script, clean, 0.0)
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""

    proc = _run_script(script, killed, 0.05)
    log = killed / "digest.partial" / "log.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count("\n") >= 8:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    seen = log.read_text().count("\n")
    assert 8 <= seen < 40, "the kill must land mid-stage"
    assert not (killed / "digest" / MANIFEST).exists()

    proc = _run_script(script, killed, 0.0)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "[stage] digest: done" in out
    for stage in ("digest", "total"):
        assert tree_hash(killed / stage) == tree_hash(clean / stage)
    expected = "".join(
        json.dumps(
            {
                "h": hashlib.sha256(f"item{i:03d}".encode()).hexdigest()[:12],
                "item_id": f"item{i:03d}",
            },
            separators=(",", ":"),
        )
        + "\n"
        for i in range(40)
    )
    assert (killed / "digest" / "digests.jsonl").read_text() == expected
    assert not (killed / "digest.partial").exists()
    resumed = json.loads((killed / "digest" / MANIFEST).read_text())["notes"]["resumed_from"]
    assert resumed == seen  # the restart continued after the records that survived the kill
