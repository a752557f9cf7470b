"""What a stage is: its name, function, config and inputs; what it sees; how it ended.

A stage ``S`` of run folder ``R`` writes the folder ``R/S.name`` (a relative path of safe
segments, e.g. ``complete/knn/i2t``). It runs in ``R/S.name.partial/`` (:data:`PARTIAL`), which
holds its inputs fingerprint in :data:`FINGERPRINT` while it runs, and it ends with
:data:`MANIFEST` in its folder. How a stage is run, skipped or resumed is
:mod:`mmpc.apps.bench.runner`'s business; what the manifest holds is
:mod:`mmpc.apps.bench.manifest`'s.

A stage that cannot run here raises :class:`StageUnavailableError` with a one-line reason. A stage
may declare *parts* (``Stage.parts(ctx, shards)``: completion shards, one RecBench training per
category): an executor may then call ``fn`` with ``ctx.part`` set, once per part, in any order or
at the same time, in the stage's partial folder; each part writes only its own resumable files.
``fn`` with ``ctx.part`` None always finishes the stage: it does whatever parts are still missing
and assembles the outputs, so running the parts first changes nothing but the speed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mmpc.apps.schema import MANIFEST as MANIFEST  # one name, defined in the shared schema

FINGERPRINT = ".fingerprint"
PARTIAL = ".partial"
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]*$")


class StageUnavailableError(RuntimeError):
    """A stage cannot run on this machine; the message is the one-line reason for the report."""


def check_stage_name(name: str) -> str:
    """Return ``name`` if every ``/``-separated segment is safe, else raise ValueError."""
    parts = name.split("/")
    bad = [p for p in parts if not _SEGMENT.match(p) or p.endswith(PARTIAL) or p in {".", ".."}]
    if not name or bad:
        raise ValueError(f"stage name {name!r}: bad segment(s) {bad}; use [A-Za-z0-9_.+=-]")
    return name


@dataclass
class StageContext:
    """What a stage function sees: its partial output folder and its inputs' final folders."""

    name: str
    out: Path
    run_dir: Path
    inputs: dict[str, Path]
    show_progress: bool = True
    notes: dict[str, Any] = field(default_factory=dict)
    part: str | None = None

    def progress(
        self,
        iterable: Iterable[Any] | None = None,
        total: int | None = None,
        desc: str | None = None,
        initial: int = 0,
        unit: str = "item",
    ) -> tqdm:
        """A tqdm bar (count, rate and ETA) labelled with the stage name."""
        return tqdm(
            iterable,
            total=total,
            desc=desc or self.name,
            initial=initial,
            unit=unit,
            disable=not self.show_progress,
            dynamic_ncols=True,
            leave=False,
            file=sys.stderr,
        )


StageFn = Callable[[StageContext], Mapping[str, int] | None]
PartsFn = Callable[[StageContext, int], Sequence[str]]


@dataclass(frozen=True)
class Stage:
    """One unit of work: ``fn(ctx)`` fills ``ctx.out`` and returns counts for the manifest.

    ``parts``, when given, names the independent pieces an executor may run apart (see the
    module docstring); its int argument is the number of shards the executor asks for.
    """

    name: str
    fn: StageFn
    config: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    parts: PartsFn | None = None

    def __post_init__(self) -> None:
        check_stage_name(self.name)
        for dep in self.inputs:
            check_stage_name(dep)


@dataclass
class StageResult:
    """How one stage ended: ``ran``, ``skipped``, ``unavailable`` or ``failed`` (an error)."""

    name: str
    status: str
    duration_s: float
    counts: dict[str, int] = field(default_factory=dict)
    reason: str = ""
    fingerprint: str = ""
