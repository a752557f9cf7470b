"""The served-backend checks, run once per session inside a private network namespace.

``transformers serve`` and the fault proxy bind 127.0.0.1 only, and the driver
(``served_checks.py``), which starts the servers, runs the in-process backends and the
``mmpc complete predict`` runs, runs with them in a new network namespace whose only interface is
the loopback (``unshare -n`` then ``ip link set lo up``), so nothing can leave the machine. Its
whole console output goes to a log that the tests search for the API key.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


def isolated(argv: list[str]) -> list[str]:
    """``argv`` in a new network namespace whose only interface, the loopback, is up."""
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def can_isolate() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    return subprocess.run(isolated(["true"]), capture_output=True, timeout=30).returncode == 0


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the driver measured: ``summary`` (its summary.json), ``out``, ``log``, ``key``."""
    if not can_isolate():
        pytest.fail("needs root with `unshare` and `ip` to run servers in a private namespace")
    out = tmp_path_factory.mktemp("served")
    key = "sk-mmpc-" + secrets.token_hex(12)
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    log = out.parent / f"{out.name}.log"  # outside the searched folder, searched apart
    with log.open("w") as sink:
        proc = subprocess.run(
            isolated([sys.executable, str(HERE / "served_checks.py"), str(out)]),
            env={**os.environ, "PYTHONPATH": path, "MMPC_SERVED_KEY": key},
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=1200,
        )
    assert proc.returncode == 0, log.read_text()[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    return {"summary": summary, "out": out, "log": log, "key": key}
