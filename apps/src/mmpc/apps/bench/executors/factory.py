"""The executor a configuration names (``executor: local`` or ``executor: ray``)."""

from __future__ import annotations

from pathlib import Path

from mmpc.apps.bench.config import BenchConfig
from mmpc.apps.bench.executors.base import Executor
from mmpc.apps.bench.executors.local import LocalExecutor
from mmpc.apps.bench.executors.ray import RayExecutor


def make_executor(cfg: BenchConfig, run_dir: Path, show_progress: bool = True) -> Executor:
    """The executor ``cfg.executor`` names."""
    if cfg.executor == "local":
        return LocalExecutor(run_dir, show_progress)
    if cfg.executor == "ray":
        return RayExecutor(cfg, run_dir, show_progress)
    raise ValueError(f"executor {cfg.executor!r}: expected 'local' or 'ray'")
