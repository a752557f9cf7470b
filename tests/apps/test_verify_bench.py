"""`mmpc bench` on a damaged, shared or full run folder (tiny preset): damaged stages are redone
with their downstream and the report comes out as an undisturbed run's; ``--verify-only`` lists
exactly the damaged stages; a second bench on a locked folder is refused, a SIGKILLed holder's
lock taken over; a full disk ends the run in one line (exit 3) and the rerun resumes.

One finished tiny run folder is built per module and copied per test (``shutil.copytree`` keeps
the files' times, so the copy verifies by the cheap check)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from mmpc.apps import cli
from mmpc.apps.bench.graph import build_stages
from mmpc.apps.bench.lock import LOCK
from mmpc.apps.bench.stages import FINGERPRINT, MANIFEST, PARTIAL
from mmpc.apps.bench.verify import downstream_of
from mmpc.apps.cli import bench as bench_cli

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "apps" / "configs" / "bench" / "tiny.yaml"
NAME = "tiny"

pytestmark = pytest.mark.slow


def _args(runs: Path) -> list[str]:
    return ["--config", str(TINY), f"--runs_dir={runs}", "--quiet"]


def _tables(run: Path) -> dict[str, str]:
    """The report's CSV tables, the stage times left out (they are wall times)."""
    return {
        p.name: p.read_text()
        for p in sorted((run / "report").glob("*.csv"))
        if "time" not in p.name
    }


def _status(run: Path) -> dict[str, str]:
    return {k: v["status"] for k, v in json.loads((run / "status.json").read_text()).items()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("finished")
    assert cli.main(["bench", *_args(runs)]) == 0
    run = runs / NAME
    assert set(_status(run).values()) == {"ran"}
    assert not (run / LOCK).exists()
    return run


@pytest.fixture
def copy(finished: Path, tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    shutil.copytree(finished, runs / NAME, symlinks=True)
    return runs / NAME


def _below(names: set[str]) -> set[str]:
    """``names`` and every stage downstream of them in the tiny graph."""
    cfg, _, _ = bench_cli.parse_config(["--config", str(TINY)])
    readers = downstream_of(build_stages(cfg))
    out, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in out:
            out.add(name)
            todo.extend(readers.get(name, []))
    return out


def _records(run: Path, stage: str) -> Path:
    (path,) = (run / stage).rglob("records.jsonl")
    return path


def _drop_last_line(run: Path) -> None:
    path = _records(run, "complete/retrieval-histogram/i2t")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))


def _truncate(run: Path) -> None:
    path = _records(run, "complete/retrieval-histogram/i2t")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # the last record cut mid-line


def _flip_feature_byte(run: Path) -> None:
    path = max(
        (
            p
            for p in (run / "features/t2i/imp-mean").rglob("*")
            if p.is_file() and p.name != MANIFEST
        ),
        key=lambda p: p.stat().st_size,
    )
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _replace_render(run: Path) -> None:
    image = sorted((run / "complete/smollm2-retrieval/t2i").rglob("*.png"))[0]
    with Image.open(image) as old:
        size = old.size
    Image.new("RGB", size, (255, 0, 255)).save(image)  # no cover is plain magenta


def _delete_manifest(run: Path) -> None:
    (run / "cqbench/smollm2-retrieval+grpo/t2i" / MANIFEST).unlink()


def _remove_folder(run: Path) -> None:
    shutil.rmtree(run / "features/i2t/imp-knn")


def _foreign_partial(run: Path) -> None:
    partial = run / f"recbench/VBPR/gt/seed0{PARTIAL}"
    partial.mkdir()
    (partial / FINGERPRINT).write_text("f" * 64 + "\n")
    (partial / "half.json").write_text("{")


Damage = Callable[[Path], None]
CASES: dict[str, tuple[list[Damage], set[str]]] = {
    "contents": (
        [_drop_last_line, _flip_feature_byte, _replace_render],
        {
            "complete/retrieval-histogram/i2t",
            "features/t2i/imp-mean",
            "complete/smollm2-retrieval/t2i",
        },
    ),
    "structure": (
        [_truncate, _delete_manifest, _remove_folder, _foreign_partial],
        {
            "complete/retrieval-histogram/i2t",
            "cqbench/smollm2-retrieval+grpo/t2i",
            "features/i2t/imp-knn",
        },
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damage_is_listed_then_redone_with_its_downstream(
    case: str, finished: Path, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damages, damaged = CASES[case]
    for damage in damages:
        damage(copy)
    args = _args(copy.parent)
    capsys.readouterr()
    assert cli.main(["bench", "--verify-only", *args]) == 2
    out, err = capsys.readouterr()
    listed = {line.split(":")[0].removeprefix("[verify] ") for line in out.splitlines()}
    assert listed == damaged, out
    assert len(err.strip().splitlines()) == 1 and str(copy) in err
    assert not (copy / LOCK).exists()

    assert cli.main(["bench", *args]) == 0
    out = capsys.readouterr().out
    status = _status(copy)
    redone = {name for name, s in status.items() if s == "ran"}
    assert redone == _below(damaged), sorted(redone ^ _below(damaged))
    assert set(status.values()) == {"ran", "skipped"}
    verify_lines = [line for line in out.splitlines() if line.startswith("[verify]")]
    assert len(verify_lines) == len(damaged)
    assert not list(copy.rglob(f"*{PARTIAL}"))
    assert _tables(copy) == _tables(finished)
    assert cli.main(["bench", "--verify-only", *args]) == 0


def _start(runs: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "mmpc.apps.cli", "bench", *_args(runs)],
            stdout=sink,
            stderr=subprocess.PIPE,
        )


def _wait_for_lock(run: Path, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return json.loads((run / LOCK).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            time.sleep(0.02)
    raise AssertionError("the first bench never took the lock")


def test_two_benches_on_one_folder_one_is_refused_in_one_line(copy: Path, tmp_path: Path) -> None:
    shutil.rmtree(copy / "features/t2i/imp-knn")  # some work, so the winner holds the lock a while
    shutil.rmtree(copy / "recbench/VBPR/t2i/imp-knn")
    procs = [_start(copy.parent, tmp_path / f"bench{k}.log") for k in range(2)]  # together
    errs = [proc.communicate(timeout=1200)[1].decode() for proc in procs]
    codes = sorted(proc.returncode for proc in procs)
    assert codes == [0, 2], errs
    loser = next(k for k, proc in enumerate(procs) if proc.returncode == 2)
    winner = procs[1 - loser]
    lines = errs[loser].strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"mmpc bench: run folder is in use by pid {winner.pid} on host")
    assert lines[0].endswith(f"({copy / LOCK})")
    assert "report:" in (tmp_path / f"bench{1 - loser}.log").read_text()
    assert not (copy / LOCK).exists()
    assert set(_status(copy).values()) == {"ran", "skipped"}


def test_sigkilled_holder_is_taken_over(
    finished: Path, copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(copy / "recbench/VBPR/i2t/imp-mean")
    first = _start(copy.parent, tmp_path / "first.log")
    holder = _wait_for_lock(copy, first)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert (copy / LOCK).exists()
    capsys.readouterr()
    assert cli.main(["bench", *_args(copy.parent)]) == 0
    out = capsys.readouterr().out
    assert f"[lock] took over the lock of pid {holder['pid']}" in out
    assert _tables(copy) == _tables(finished)
    assert not (copy / LOCK).exists()


FULL_DISK = r"""
set -u
mount -t tmpfs -o size="$SIZE" tmpfs "$MNT"
cp -a "$SRC" "$MNT/tiny"
"$PY" -m mmpc.apps.cli bench --config "$TINY" --runs_dir="$MNT" --quiet \
    >"$OUT/first.out" 2>"$OUT/first.err" &
pid=$!
while [ ! -d "$MNT/tiny/cqbench/retrieval-histogram/i2t.partial" ] && kill -0 "$pid" 2>/dev/null
do sleep 0.02; done
dd if=/dev/zero of="$MNT/filler" bs=64k 2>/dev/null  # every free byte, until ENOSPC
wait "$pid"; echo $? >"$OUT/first.rc"
rm "$MNT/filler"  # space freed
"$PY" -m mmpc.apps.cli bench --config "$TINY" --runs_dir="$MNT" --quiet \
    >"$OUT/second.out" 2>"$OUT/second.err"
echo $? >"$OUT/second.rc"
cp -a "$MNT/tiny" "$OUT/tiny"
"""


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0, reason="needs root")
def test_full_disk_ends_in_one_line_and_the_rerun_resumes(
    finished: Path, copy: Path, tmp_path: Path
) -> None:
    for stage in (
        "complete/retrieval-histogram/i2t",
        "cqbench/retrieval-histogram/i2t",
        "features/i2t/retrieval-histogram",
        "recbench/VBPR/i2t/retrieval-histogram",
    ):
        shutil.rmtree(copy / stage)
    used = sum(p.stat().st_size for p in copy.rglob("*") if p.is_file())
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    env = dict(
        os.environ,
        SIZE=str(used * 2 + (64 << 20)),
        MNT=str(mnt),
        SRC=str(copy),
        OUT=str(out),
        PY=sys.executable,
        TINY=str(TINY),
    )
    subprocess.run(
        ["unshare", "-m", "--propagation", "private", "bash", "-c", FULL_DISK],
        env=env,
        check=True,
        timeout=2400,
    )
    assert (out / "first.rc").read_text().strip() == "3", (out / "first.err").read_text()
    err = [line for line in (out / "first.err").read_text().splitlines() if line.strip()]
    ours = [line for line in err if line.startswith("mmpc bench:")]
    assert len(ours) == 1 and "no space left on device" in ours[0], err
    assert ours[0].endswith(f"({mnt / NAME})")
    assert not any("Traceback" in line for line in err)
    assert (out / "second.rc").read_text().strip() == "0", (out / "second.err").read_text()
    run = out / NAME
    records = _records(run, "complete/retrieval-histogram/i2t").read_text().splitlines()
    ids = [json.loads(line)["item_id"] for line in records]
    assert len(ids) == len(set(ids)) == 30
    scored = pd.read_csv(run / "cqbench/retrieval-histogram/i2t/metrics.csv")
    assert len(scored) == scored["item_id"].nunique() == 30
    assert set(_status(run).values()) <= {"ran", "skipped"}
    assert _tables(run) == _tables(finished)
