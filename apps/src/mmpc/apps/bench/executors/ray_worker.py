"""What runs inside a Ray worker: the warm-up task and the stage tasks.

A worker builds the stage graph of the configuration itself (once per process and config, the
stage functions being closures that do not travel), runs one part of a stage or its finishing
run through its own :class:`~mmpc.apps.bench.runner.StageRunner`, and writes its output to
``<run>/logs/<stage>.log``, never to the driver's terminal.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from mmpc.apps.bench.config import BenchConfig
from mmpc.apps.bench.executors.base import task_log
from mmpc.apps.bench.graph import build_stages
from mmpc.apps.bench.manifest import config_hash
from mmpc.apps.bench.runner import StageRunner
from mmpc.apps.bench.stages import Stage, StageResult, StageUnavailableError
from mmpc.metrics.files import atomic_write_text

_STAGES: dict[str, dict[str, Stage]] = {}


def _stages_of(cfg: BenchConfig) -> dict[str, Stage]:
    """The stage graph of ``cfg`` by name, built once per worker process and config."""
    key = config_hash(asdict(cfg))
    if key not in _STAGES:
        _STAGES.clear()
        _STAGES[key] = {s.name: s for s in build_stages(cfg)}
    return _STAGES[key]


def warm_worker(cfg: BenchConfig) -> int:
    """The body of a warm-up task: import what a stage task imports (torch, Lightning, the
    stage graph of ``cfg``) so this worker's first stage does not pay it; returns its pid."""
    import lightning  # noqa: F401  (the import is the point)
    import torch  # noqa: F401

    _stages_of(cfg)
    return os.getpid()


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[TextIO]:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with path.open("a", encoding="utf-8") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield fh
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def run_stage_task(
    cfg: BenchConfig, run_dir: Path, name: str, part: str | None, threads: int
) -> StageResult | None:
    """The body of one Ray task: a part of a prepared stage, or the stage's finishing run.

    Returns the stage's result (finishing run) or, for a part, None when it succeeded and a
    ``failed`` / ``unavailable`` result when it did not (the traceback in
    ``<partial>/error.<part>.txt``).
    """
    import torch

    torch.set_num_threads(threads)
    with _output_to(task_log(run_dir, name, part)):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"[task] {name}{f' part {part}' if part else ''}: pid {os.getpid()} on "
            f"{socket.gethostname()} at {stamp}, {threads} torch thread(s)",
            flush=True,
        )
        stage = _stages_of(cfg)[name]
        runner = StageRunner(run_dir, show_progress=False, log=lambda line: print(line, flush=True))
        if part is None:
            return runner.execute(stage)
        try:
            runner.run_part(stage, part)
        except StageUnavailableError as err:
            return StageResult(name, "unavailable", 0.0, reason=str(err))
        except Exception as err:  # reported by the driver; the other parts still run
            text = traceback.format_exc()
            print(text, flush=True)
            where = runner.partial(name) / f"error.{part}.txt"
            atomic_write_text(where, text)
            first = (str(err).splitlines() or [""])[0]
            return StageResult(
                name,
                "failed",
                0.0,
                reason=f"failed: part {part}: {type(err).__name__}: {first} (see {where})",
            )
        print(f"[task] {name} part {part}: done", flush=True)
        return None
