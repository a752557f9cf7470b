"""The run folder's lock: one writer, a refusal naming the holder, a dead holder taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmpc.apps import cli
from mmpc.apps.bench.lock import LOCK, RunLock, RunLockedError, process_start

HOLD = """
import sys, time
from mmpc.apps.bench.lock import RunLock
with RunLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def _holder(run: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_lock_file_names_its_holder_and_is_released(tmp_path: Path) -> None:
    with RunLock(tmp_path) as lock:
        holder = json.loads((tmp_path / LOCK).read_text())
        assert holder["pid"] == os.getpid()
        assert holder["host"] == socket.gethostname()
        assert holder["proc_start"] == process_start(os.getpid())
        assert holder["started"]
        assert lock.held == holder
    assert not (tmp_path / LOCK).exists()


def test_lock_is_released_on_an_error(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), RunLock(tmp_path):
        raise KeyboardInterrupt
    assert not (tmp_path / LOCK).exists()


def test_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    try:
        with pytest.raises(RunLockedError, match=rf"in use by pid {proc.pid} on host"):
            RunLock(tmp_path).acquire()
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == proc.pid  # untouched
    finally:
        proc.terminate()
        proc.wait()


def test_killed_holder_is_taken_over_with_a_line(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lines: list[str] = []
    with RunLock(tmp_path, log=lines.append):
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    assert lines == [
        f"[lock] took over the lock of pid {proc.pid} on host "
        f"{socket.gethostname()} since {lines[0].split(' since ')[1]}"
    ]
    assert "which has ended" in lines[0]


def test_reused_pid_is_not_taken_for_the_holder(tmp_path: Path) -> None:
    parent = os.getppid()  # alive, but not the process that wrote the lock
    stale = {"pid": parent, "host": socket.gethostname(), "started": "then", "proc_start": 1}
    assert process_start(parent) != 1
    (tmp_path / LOCK).write_text(json.dumps(stale))
    lines: list[str] = []
    with RunLock(tmp_path, log=lines.append):
        pass
    assert len(lines) == 1 and f"pid {parent}" in lines[0]


def test_holder_on_another_host_is_never_taken_over(tmp_path: Path) -> None:
    other = {"pid": 1, "host": "elsewhere", "started": "then", "proc_start": 5}
    (tmp_path / LOCK).write_text(json.dumps(other))
    with pytest.raises(RunLockedError, match="pid 1 on host elsewhere"):
        RunLock(tmp_path).acquire()


def test_own_lock_from_before_an_exec_is_accepted(tmp_path: Path) -> None:
    first = RunLock(tmp_path)
    first.acquire()  # as the process did before re-running itself in a network namespace
    again = RunLock(tmp_path)
    again.acquire()
    again.release()
    assert not (tmp_path / LOCK).exists()


def test_report_on_a_locked_run_folder_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "status.json").write_text("{}")
    proc = _holder(tmp_path)
    try:
        start = time.monotonic()
        assert cli.main(["report", str(tmp_path)]) == 2
        assert time.monotonic() - start < 30
    finally:
        proc.terminate()
        proc.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"mmpc report: run folder is in use by pid {proc.pid} on host")
    assert err[0].endswith(f"({tmp_path / LOCK})")
