"""The stage runner: runs one stage into its run folder, or skips it when it is up to date.

For a stage ``S`` of run folder ``R`` (see :mod:`mmpc.apps.bench.stages`):

* ``S`` is *up to date* when ``R/S.name/manifest.json`` carries its current inputs fingerprint
  (:mod:`mmpc.apps.bench.manifest`); it is then skipped.
* Otherwise it runs in ``R/S.name.partial/``. The runner writes ``.fingerprint`` there first, so a
  run killed half way finds its partial folder again and the stage resumes in it (stages are
  internally resumable through item-keyed append files, see
  :class:`~mmpc.apps.bench.itemlog.ItemLog`, or cheap to redo). A partial folder with another
  fingerprint is stale and is removed.
* It finishes by writing the manifest atomically and renaming the partial folder into place.
* A stage that raises :class:`~mmpc.apps.bench.stages.StageUnavailableError` is ``unavailable``:
  not cached (tried again next time), and every stage that needs it becomes unavailable too. A
  stage that raises anything else is ``failed``: its traceback goes to ``error.txt`` in its
  partial folder, the stages that need it are unavailable, the others still run.
* A stage with parts may be run part by part (:meth:`StageRunner.prepare`, then
  :meth:`StageRunner.run_part` per part, in any process, then :meth:`StageRunner.execute`).

The runner is where a run folder is trusted: each decision to skip, resume or redo a stage is
taken in :meth:`StageRunner.prepare`, and :meth:`StageRunner.current_manifest` trusts a finished
stage only when its files still match its manifest (:mod:`mmpc.apps.bench.verify`: sizes and
times first, the hash when they differ or with ``full_verify``). A *damaged* stage (files that do
not match, a folder without its manifest, or a missing folder that a finished stage was computed
from) is redone with every stage downstream of it, whatever its new outputs hash: their manifests
(and its own) are removed at once, so a run killed before they are redone redoes them too. One
``[verify]`` line says which and why. The graph comes from :meth:`StageRunner.set_graph`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mmpc.apps.bench.disk import DiskFullError, is_disk_full
from mmpc.apps.bench.manifest import inputs_fingerprint, read_manifest, write_manifest
from mmpc.apps.bench.stages import (
    FINGERPRINT,
    MANIFEST,
    PARTIAL,
    Stage,
    StageContext,
    StageResult,
    StageUnavailableError,
    check_stage_name,
)
from mmpc.apps.bench.verify import (
    check_outputs,
    downstream_of,
    finished_reader,
    refresh_file_stats,
)
from mmpc.metrics.files import atomic_write_text


class StageRunner:
    """Runs stages into ``run_dir``; finished stages with an unchanged fingerprint are skipped."""

    def __init__(
        self,
        run_dir: Path | str,
        show_progress: bool = True,
        log: Callable[[str], None] | None = None,
        full_verify: bool = False,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.show_progress = show_progress
        self.log = log or (lambda line: print(line, flush=True))
        self.results: dict[str, StageResult] = {}
        self.full_verify = full_verify
        self.readers: dict[str, list[str]] = {}
        self.invalidated: set[str] = set()

    def set_graph(self, stages: Sequence[Stage]) -> None:
        """Tell the runner the whole stage graph, so a damaged stage's downstream is known."""
        self.readers = downstream_of(stages)

    def path(self, name: str) -> Path:
        """Final output folder of stage ``name`` (checked to stay inside the run folder)."""
        path = (self.run_dir / check_stage_name(name)).resolve()
        root = self.run_dir.resolve()
        if root not in path.parents:
            raise ValueError(f"stage name {name!r} leaves the run folder {root}")
        return path

    def manifest(self, name: str) -> dict[str, Any] | None:
        """The finished manifest of stage ``name``, or None."""
        return read_manifest(self.path(name))

    def fingerprint(self, stage: Stage) -> str:
        """Inputs fingerprint of ``stage``; every input must have a finished manifest."""
        deps = []
        for dep in stage.inputs:
            man = self.manifest(dep)
            if man is None:
                raise RuntimeError(f"stage {stage.name!r}: input stage {dep!r} has not finished")
            deps.append((dep, man))
        return inputs_fingerprint(stage.name, stage.config, deps)

    def current_manifest(self, name: str, fingerprint: str) -> dict[str, Any] | None:
        """The manifest of stage ``name`` when it carries ``fingerprint``, else None: the one
        place that decides whether a finished stage is trusted and skipped."""
        man = self.manifest(name)
        if man is None or man.get("fingerprint") != fingerprint:
            return None
        folder = self.path(name)
        check = check_outputs(folder, man, full=self.full_verify)
        if not check.ok:
            self.damaged(name, check.reason)
            return None
        if check.stale_stats:  # same contents, new times (a copy, a touch): record them
            with contextlib.suppress(OSError):  # only makes the next check cheaper
                refresh_file_stats(folder, man)
        return man

    def damaged(self, name: str, reason: str) -> None:
        """Distrust stage ``name`` and every finished stage downstream of it (their manifests
        are removed, so they are redone even if ``name`` comes out the same), in one line."""
        below: list[str] = []
        todo = list(self.readers.get(name, []))
        while todo:
            reader = todo.pop(0)
            if reader in below:
                continue
            below.append(reader)
            todo.extend(self.readers.get(reader, []))
        for stage in [name, *below]:
            (self.path(stage) / MANIFEST).unlink(missing_ok=True)
        self.invalidated.update([name, *below])
        shown = ", ".join(below[:4]) + (f" and {len(below) - 4} more" if len(below) > 4 else "")
        tail = f" and the {len(below)} stage(s) downstream ({shown})" if below else ""
        self.log(f"[verify] {name}: damaged: {reason}; redoing it{tail}")

    def _check_unfinished(self, name: str) -> None:
        """A stage without a current manifest: damaged when its folder lost its manifest, or
        when its folder is gone though a finished stage was computed from it."""
        if name in self.invalidated:
            return
        final = self.path(name)
        if final.is_dir():
            if not (final / MANIFEST).exists():
                self.damaged(name, f"{MANIFEST} is missing")
            return
        if (self.partial(name) / MANIFEST).exists():
            return  # finished, stopped before the rename: moved into place on execute
        reader = finished_reader(self.run_dir, name, self.readers.get(name, []))
        if reader is not None:
            self.damaged(name, f"its folder is missing but {reader} was computed from it")

    def _drop_partial(self, name: str, why: str) -> None:
        partial = self.partial(name)
        shutil.rmtree(partial)
        self.log(f"[stage] {name}: removed {partial.name} ({why})")

    def partial(self, name: str) -> Path:
        """The folder stage ``name`` runs in."""
        final = self.path(name)
        return final.with_name(final.name + PARTIAL)

    def context(self, stage: Stage, part: str | None = None) -> StageContext:
        """The context ``stage.fn`` sees (its partial folder must have been prepared)."""
        return StageContext(
            stage.name,
            self.partial(stage.name),
            self.run_dir,
            {d: self.path(d) for d in stage.inputs},
            self.show_progress,
            part=part,
        )

    def prepare(self, stage: Stage) -> StageResult | StageContext:
        """The result of a stage that need not run (needs a missing input, or is up to date;
        recorded), else its context with the partial folder ready (a stale one removed)."""
        start = time.perf_counter()
        missing = [
            d
            for d in stage.inputs
            if d in self.results and self.results[d].status in ("unavailable", "failed")
        ]
        if missing:
            reason = f"needs {missing[0]}, which is {self.results[missing[0]].status}"
            return self.record(StageResult(stage.name, "unavailable", 0.0, reason=reason))
        fingerprint = self.fingerprint(stage)
        man = self.current_manifest(stage.name, fingerprint)
        partial = self.partial(stage.name)
        marker = partial / FINGERPRINT
        if man is not None:
            if partial.exists():  # left by a run of other settings, or by a redo
                self._drop_partial(stage.name, "the stage is finished")
            return self.record(
                StageResult(
                    stage.name,
                    "skipped",
                    time.perf_counter() - start,
                    dict(man.get("counts", {})),
                    fingerprint=fingerprint,
                )
            )
        self._check_unfinished(stage.name)
        if partial.exists() and (not marker.exists() or marker.read_text().strip() != fingerprint):
            self._drop_partial(stage.name, "left by other settings")
        partial.mkdir(parents=True, exist_ok=True)
        if not marker.exists():
            atomic_write_text(marker, fingerprint + "\n")
        return self.context(stage)

    def run_part(self, stage: Stage, part: str) -> None:
        """Run one part of a prepared stage (its errors are raised)."""
        stage.fn(self.context(stage, part))

    def execute(self, stage: Stage, start: float | None = None) -> StageResult:
        """Finish a prepared stage: run ``fn``, write the manifest, move the folder into place.

        A stage's own errors come back as ``failed`` results, never raised (KeyboardInterrupt and
        SystemExit pass through). The result is recorded.
        """
        start = time.perf_counter() if start is None else start
        fingerprint = self.fingerprint(stage)
        final, partial = self.path(stage.name), self.partial(stage.name)
        pman = read_manifest(partial)
        if pman is not None and (
            pman.get("fingerprint") != fingerprint or not check_outputs(partial, pman).ok
        ):  # finished but not trusted: done again from an empty partial folder
            self._drop_partial(stage.name, "its files do not match its manifest")
            partial.mkdir(parents=True)
            atomic_write_text(partial / FINGERPRINT, fingerprint + "\n")
        if not (partial / MANIFEST).exists():
            (partial / "error.txt").unlink(missing_ok=True)  # from an attempt that failed
            ctx = self.context(stage)
            try:
                counts = dict(stage.fn(ctx) or {})
            except StageUnavailableError as err:
                return self.record(
                    StageResult(
                        stage.name, "unavailable", time.perf_counter() - start, reason=str(err)
                    )
                )
            except Exception as err:  # a broken stage must not hide the others' results
                if is_disk_full(err):  # the whole run stops: nothing else can be written
                    raise DiskFullError(self.run_dir, stage.name) from err
                atomic_write_text(partial / "error.txt", traceback.format_exc())
                first = (str(err).splitlines() or [""])[0]
                reason = f"failed: {type(err).__name__}: {first} (see {partial / 'error.txt'})"
                return self.record(
                    StageResult(stage.name, "failed", time.perf_counter() - start, reason=reason)
                )
            duration = time.perf_counter() - start
            write_manifest(
                partial,
                name=stage.name,
                fingerprint=fingerprint,
                config=stage.config,
                inputs=stage.inputs,
                counts=counts,
                duration_s=duration,
                notes=ctx.notes,
            )
        self._move_into_place(partial, final)
        man = self.manifest(stage.name) or {}
        return self.record(
            StageResult(
                stage.name,
                "ran",
                time.perf_counter() - start,
                dict(man.get("counts", {})),
                fingerprint=fingerprint,
            )
        )

    @staticmethod
    def _move_into_place(partial: Path, final: Path) -> None:
        """Rename a partial folder whose manifest is written to the stage's folder (a folder
        rename, atomic on one filesystem; an older finished folder is removed first)."""
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
        (final / FINGERPRINT).unlink(missing_ok=True)

    def run(self, stage: Stage) -> StageResult:
        """Run one stage unless its manifest is current (:meth:`prepare` + :meth:`execute`)."""
        start = time.perf_counter()
        ready = self.prepare(stage)
        return ready if isinstance(ready, StageResult) else self.execute(stage, start)

    def run_all(self, stages: Sequence[Stage]) -> list[StageResult]:
        """Run ``stages`` in order (inputs first) and return their results."""
        if not self.readers:
            self.set_graph(stages)
        return [self.run(stage) for stage in stages]

    def record(self, result: StageResult) -> StageResult:
        """Keep ``result`` (stages that need a failed one become unavailable) and log it."""
        self.results[result.name] = result
        counts = ", ".join(f"{k}={v}" for k, v in sorted(result.counts.items()))
        detail = {
            "ran": f"done in {result.duration_s:.1f} s",
            "skipped": "skipped (up to date)",
            "unavailable": f"unavailable: {result.reason}",
            "failed": result.reason,
        }[result.status]
        self.log(f"[stage] {result.name}: {detail}" + (f" ({counts})" if counts else ""))
        return result
