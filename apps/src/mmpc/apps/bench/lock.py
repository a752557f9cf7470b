"""One writer per run folder: ``<run>/.lock``, created atomically, naming its holder.

The lock file is created with ``O_CREAT | O_EXCL`` (atomic on a local filesystem and on NFS v3+),
and holds the holder's PID, host, start time and, on Linux, its process start time in clock
ticks (``/proc/<pid>/stat``), which tells a live holder from a new process that got the same PID.
A second writer ends at once (:class:`RunLockedError`, one line naming the holder). A lock whose
holder is gone (same host, PID not running or running another process) is taken over, with a
line saying so; a holder on another host cannot be checked from here and is never taken over.

The lock is taken by the process that runs the stages: ``mmpc bench`` takes it in
:func:`~mmpc.apps.bench.run.run_bench`, after its re-run inside a private network namespace
(:mod:`mmpc.apps.bench.executors.netns`, an ``exec`` that keeps the PID), and the Ray driver
holds it for its workers. A lock naming this very process (same PID and start time) is its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmpc.metrics.errors import InputError

LOCK = ".lock"


class RunLockedError(InputError):
    """Another live process holds the run folder's lock (exit 2, one line)."""


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot, None when unknown/gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the command name may hold spaces
    try:
        return int(fields[19])  # field 22 of stat; the first two are cut above
    except (IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _me() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "proc_start": process_start(os.getpid()),
    }


def describe(holder: dict[str, Any]) -> str:
    """``pid 12 on host h since 2026-...``: a lock's holder in words."""
    return f"pid {holder.get('pid')} on host {holder.get('host')} since {holder.get('started')}"


def holder_gone(holder: dict[str, Any]) -> bool:
    """True when the lock's holder is known to have ended (only checkable on this host)."""
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return True
    recorded, now = holder.get("proc_start"), process_start(pid)
    return recorded is not None and now is not None and recorded != now  # PID reused


def _is_me(holder: dict[str, Any]) -> bool:
    me = _me()
    return all(holder.get(k) == me[k] for k in ("pid", "host", "proc_start"))


class RunLock:
    """The lock of one run folder; a context manager (released on exit, errors included).

    Args:
        run_dir: the run folder (created if missing).
        log: where the take-over line goes.
    """

    def __init__(self, run_dir: Path | str, log: Callable[[str], None] = print) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self.log = log
        self.held: dict[str, Any] | None = None

    def read(self) -> dict[str, Any] | None:
        """The holder recorded in the lock file, ``{}`` when unreadable, None when unlocked."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return {}  # being written this instant, or torn: treated as held
        return value if isinstance(value, dict) else {}

    def _create(self, me: dict[str, Any]) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(me, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RunLockedError` naming its live holder."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        me = _me()
        for _ in range(3):
            if self._create(me):
                self.held = me
                return
            holder = self.read()
            if holder is None:
                continue  # released meanwhile
            if holder and _is_me(holder):
                self.held = holder  # this process took it before an exec
                return
            if not holder or not holder_gone(holder):
                who = describe(holder) if holder else "another process (lock being written)"
                raise RunLockedError(
                    f"run folder is in use by {who}; wait for it to end, or remove the lock "
                    "file if that process is gone",
                    self.path,
                )
            if self._take_over(holder):
                self.log(f"[lock] took over the lock of {describe(holder)}, which has ended")
                self.held = self.read()
                return
        raise RunLockedError("run folder lock is changing hands; try again", self.path)

    def _take_over(self, stale: dict[str, Any]) -> bool:
        """Move the stale lock aside and take it; False when another process was faster."""
        aside = self.path.with_name(f"{LOCK}.stale.{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return False
        try:
            moved = json.loads(aside.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            moved = {}
        if moved != stale:  # a live lock taken meanwhile by a faster process: put it back
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
            aside.unlink(missing_ok=True)
            return False
        aside.unlink(missing_ok=True)
        return self._create(_me())

    def release(self) -> None:
        """Remove the lock file if it is still this process's."""
        if self.held is not None and self.read() == self.held:
            self.path.unlink(missing_ok=True)
        self.held = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
