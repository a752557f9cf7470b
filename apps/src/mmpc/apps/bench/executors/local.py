"""The ``local`` executor: every stage in order, in this process."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mmpc.apps.bench.runner import StageRunner
from mmpc.apps.bench.stages import Stage, StageResult


class LocalExecutor:
    """Every stage in order, in this process (the stage runner's own loop)."""

    def __init__(self, run_dir: Path, show_progress: bool = True) -> None:
        self.runner = StageRunner(run_dir, show_progress=show_progress)
        self.log = self.runner.log

    def run(self, stages: Sequence[Stage]) -> list[StageResult]:
        return self.runner.run_all(stages)
