"""Start an OpenAI-compatible server for the duration of a run, and stop it (``launch:``).

The command runs in its own session (so its own process group: a server's workers go with it),
its output goes to a log file, and the endpoint's ``GET <base_url>/models`` is polled until it
answers 200. At the end the group gets SIGTERM and, ``stop_timeout_s`` later, SIGKILL. A weak
finaliser stops it too if the process exits without calling :meth:`ServerProcess.stop`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from mmpc.completion.backends.served_client import EndpointError

__all__ = ["Launch", "ServerProcess"]


@dataclass
class Launch:
    """How to start the endpoint's server.

    Attributes:
        command: the argv, e.g. ``["vllm", "serve", "Qwen/Qwen2.5-VL-7B-Instruct", "--port",
            "8000"]``; it must serve the backend's ``base_url``.
        health_url: polled until it answers 200 (default ``<base_url>/models``).
        startup_timeout_s: how long to wait for it (weights load first).
        stop_timeout_s: how long SIGTERM gets before SIGKILL.
        env: extra environment variables for the command (values are kept in the run's config:
            never put a key here, the server inherits this process's environment).
        log: where the server's output goes (default: a temporary file, named in errors).
    """

    command: list[str]
    health_url: str | None = None
    startup_timeout_s: float = 600.0
    stop_timeout_s: float = 10.0
    env: dict[str, str] = field(default_factory=dict)
    log: str | None = None


def _stop_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 30.0)):
        try:
            os.killpg(proc.pid, sig)  # the group's id is the leader's pid (start_new_session)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class ServerProcess:
    """A started server; :meth:`stop` ends it (idempotent)."""

    def __init__(self, launch: Launch, base_url: str) -> None:
        self.launch = launch
        self.health_url = launch.health_url or base_url.rstrip("/") + "/models"
        if launch.log:
            self.log_path = Path(launch.log).expanduser()
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        else:
            fd, name = tempfile.mkstemp(prefix="mmpc-served-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        with self.log_path.open("ab") as sink:
            try:
                self.proc = subprocess.Popen(
                    launch.command,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, **launch.env},
                    start_new_session=True,
                )
            except OSError as err:
                raise EndpointError(
                    f"cannot start the server {launch.command[0]!r} ({err.strerror})"
                ) from None
        self._finalizer = weakref.finalize(self, _stop_group, self.proc, launch.stop_timeout_s)

    @property
    def pid(self) -> int:
        """The server's process id (also its process group's id)."""
        return self.proc.pid

    def wait_ready(self) -> float:
        """Poll the health URL until it answers 200; returns the seconds it took.

        Raises:
            EndpointError: the server exited, or did not answer within ``startup_timeout_s``.
        """
        start = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise EndpointError(
                    f"the launched server exited with code {self.proc.returncode} before "
                    f"{self.health_url} answered (its output: {self.log_path})"
                )
            try:
                with urllib.request.urlopen(self.health_url, timeout=5) as reply:
                    if reply.status == 200:
                        return time.monotonic() - start
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() - start > self.launch.startup_timeout_s:
                self.stop()
                raise EndpointError(
                    f"the launched server did not answer {self.health_url} within "
                    f"{self.launch.startup_timeout_s:g} s (its output: {self.log_path})"
                )
            time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM the server's process group, then SIGKILL if it is still there."""
        self._finalizer()
