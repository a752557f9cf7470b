"""A local Ray in a private network namespace, whose only interface is the loopback.

Ray binds some ports on every interface and probes an outside address at start-up, so with
``ray.isolate_network`` (the default) a local Ray only starts where the loopback is the only
network interface: ``mmpc bench`` re-runs itself in a new network namespace when it can.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Sequence

from mmpc.apps.bench.config import BenchConfig

_NETNS_ENV = "MMPC_PRIVATE_NETNS"


def loopback_only() -> bool:
    """True when this process's network namespace has no interface but the loopback."""
    return all(name == "lo" for _, name in socket.if_nameindex())


def isolated_command(argv: Sequence[str]) -> list[str]:
    """``argv`` run in a new network namespace whose only interface, the loopback, is up."""
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def reexec_isolated_if_needed(cfg: BenchConfig) -> None:
    """Re-run this command in a private network namespace before a local Ray would start.

    Does nothing unless ``executor: ray`` starts a local Ray with ``isolate_network`` and other
    interfaces exist; needs root and ``unshare``/``ip`` (else :func:`start_ray` refuses with one
    line). Only when this process was started as ``mmpc bench`` (``bench`` is one of its
    arguments), since it replaces the process.
    """
    rcfg = cfg.ray
    if cfg.executor != "ray" or rcfg.address is not None or not rcfg.isolate_network:
        return
    if "bench" not in sys.orig_argv[1:]:
        return
    if loopback_only() or os.environ.get(_NETNS_ENV) or os.geteuid() != 0:
        return
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ[_NETNS_ENV] = "1"
    os.execvp("unshare", isolated_command([sys.executable, *sys.orig_argv[1:]]))
