"""What every executor is, and the names its stages' tasks and logs go by."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from mmpc.apps.bench.stages import Stage, StageResult

LOGS = "logs"


class Executor(Protocol):
    """Runs a stage graph (inputs listed before the stages that read them)."""

    log: Callable[[str], None]

    def run(self, stages: Sequence[Stage]) -> list[StageResult]: ...


def stage_kind(name: str) -> str:
    """A stage's kind: the first segment of its name (``recbench/VBPR/gt/seed0`` → recbench)."""
    return name.split("/", 1)[0]


def task_log(run_dir: Path, name: str, part: str | None = None) -> Path:
    """``<run>/logs/<stage with / as __>[__<part>].log``: where a task's output goes."""
    key = name.replace("/", "__") + (f"__{part}" if part else "")
    return run_dir / LOGS / f"{key}.log"
