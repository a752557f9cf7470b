"""A small, resumable stage runner: each stage writes one folder of the run and a manifest.

Contract of a stage ``S`` of run folder ``R``:

* ``S.name`` is a relative path of safe segments (``complete/knn/i2t``); its output folder is
  ``R/S.name``.
* Its *inputs fingerprint* is ``sha256(name, config hash, [(dep, dep fingerprint, dep outputs
  hash) for dep in inputs])``; the outputs hash of a finished stage is the sha256 over every file of
  its folder (relative path and content), the manifest excluded.
* A stage runs in ``R/S.name.partial/``. The runner writes ``.fingerprint`` there first, so a run
  killed half way finds its partial folder again and the stage resumes in it (stages are
  internally resumable through item-keyed append files, see :class:`ItemLog`, or cheap to redo).
  A partial folder with another fingerprint is stale and is removed.
* It finishes by writing ``manifest.json`` atomically (config hash, inputs fingerprint, package
  versions, counts, duration, outputs hash) and renaming the partial folder into place. A stage
  whose manifest carries the current inputs fingerprint is skipped.
* A stage that cannot run here raises :class:`StageUnavailableError` with a one-line reason; it
  is not cached (tried again next time) and every stage that needs it becomes unavailable too.
  A stage that raises anything else is ``failed``: its traceback goes to ``error.txt`` in its
  partial folder, the stages that need it are unavailable, the others still run.
* A stage may declare *parts* (``Stage.parts(ctx, shards)``: completion shards, one RecBench
  training per category). An executor may then call ``fn`` with ``ctx.part`` set, once per part,
  in any order or at the same time, in the stage's partial folder; each part writes only its own
  resumable files. ``fn`` with ``ctx.part`` None always finishes the stage: it does whatever
  parts are still missing and assembles the outputs, so running the parts first changes nothing
  but the speed (:class:`StageRunner` ``prepare`` / ``run_part`` / ``execute``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from tqdm.auto import tqdm

MANIFEST = "manifest.json"
FINGERPRINT = ".fingerprint"
PARTIAL = ".partial"
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]*$")
_VERSIONED = (
    "mmpc-apps",
    "mmpc-completion",
    "mmpc-metrics",
    "mmpc-recsys",
    "mmpc-grpo",
    "torch",
    "lightning",
    "transformers",
    "torchmetrics",
    "numpy",
    "pandas",
)


class StageUnavailableError(RuntimeError):
    """A stage cannot run on this machine; the message is the one-line reason for the report."""


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace variance; non-JSON values are written with str()."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: Any) -> str:
    """sha256 hex digest of :func:`canonical_json` of ``config``."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of one file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def tree_hash(folder: Path, exclude: Iterable[str] = (MANIFEST, FINGERPRINT)) -> str:
    """sha256 over ``(relative path, file sha256)`` of every file under ``folder``, sorted."""
    skip = set(exclude)
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        rel = path.relative_to(folder).as_posix()
        if rel in skip:
            continue
        digest.update(f"{rel}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, value: Any) -> None:
    """:func:`atomic_write_text` of ``value`` as indented JSON."""
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def package_versions(names: Sequence[str] = _VERSIONED) -> dict[str, str]:
    """Installed versions of the packages a stage's results depend on (absent ones omitted)."""
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def check_stage_name(name: str) -> str:
    """Return ``name`` if every ``/``-separated segment is safe, else raise ValueError."""
    parts = name.split("/")
    bad = [p for p in parts if not _SEGMENT.match(p) or p.endswith(PARTIAL) or p in {".", ".."}]
    if not name or bad:
        raise ValueError(f"stage name {name!r}: bad segment(s) {bad}; use [A-Za-z0-9_.+=-]")
    return name


class ItemLog:
    """An append-only JSONL file of item-keyed records, the unit of resumption inside a stage.

    Each record is one line, flushed and fsynced, with key ``key_field``. A line cut by a kill
    (no trailing newline or bad JSON) is dropped on open, so :meth:`done` lists exactly the items
    whose records are complete. :meth:`finalize` writes the records sorted by key to ``dest``
    atomically, so the result never depends on the order or the number of interruptions.
    """

    def __init__(self, path: Path, key_field: str = "item_id") -> None:
        self.path = path
        self.key_field = key_field
        self._records: dict[str, dict[str, Any]] = {}
        self._fh: TextIO | None = None
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        good: list[str] = []
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break
                self._records[str(record[self.key_field])] = record
                good.append(line)
        atomic_write_text(self.path, "".join(good))

    def done(self) -> set[str]:
        """Keys whose record is complete."""
        return set(self._records)

    def records(self) -> list[dict[str, Any]]:
        """Complete records sorted by key."""
        return [self._records[k] for k in sorted(self._records)]

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one record durably (flush + fsync)."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write(canonical_json(dict(record)) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._records[str(record[self.key_field])] = dict(record)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def finalize(self, dest: Path, remove_log: bool = True) -> int:
        """Write the sorted records to ``dest`` (JSONL, atomic); returns their number.

        The append log is removed afterwards (unless ``remove_log`` is False), so a finished
        stage's folder is the same whether or not it was interrupted.
        """
        self.close()
        atomic_write_text(dest, "".join(canonical_json(r) + "\n" for r in self.records()))
        if remove_log and dest.resolve() != self.path.resolve():
            self.path.unlink(missing_ok=True)
        return len(self._records)


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


class StageRunner:
    """Runs stages into ``run_dir``; finished stages with an unchanged fingerprint are skipped."""

    def __init__(
        self,
        run_dir: Path | str,
        show_progress: bool = True,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.show_progress = show_progress
        self.log = log or (lambda line: print(line, flush=True))
        self.results: dict[str, StageResult] = {}

    def path(self, name: str) -> Path:
        """Final output folder of stage ``name`` (checked to stay inside the run folder)."""
        path = (self.run_dir / check_stage_name(name)).resolve()
        root = self.run_dir.resolve()
        if root not in path.parents:
            raise ValueError(f"stage name {name!r} leaves the run folder {root}")
        return path

    def manifest(self, name: str) -> dict[str, Any] | None:
        """The finished manifest of stage ``name``, or None."""
        path = self.path(name) / MANIFEST
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def fingerprint(self, stage: Stage) -> str:
        """Inputs fingerprint of ``stage``; every input must have a finished manifest."""
        deps = []
        for dep in stage.inputs:
            man = self.manifest(dep)
            if man is None:
                raise RuntimeError(f"stage {stage.name!r}: input stage {dep!r} has not finished")
            deps.append([dep, man["fingerprint"], man["outputs_sha256"]])
        return config_hash(
            {"stage": stage.name, "config": config_hash(stage.config), "inputs": deps}
        )

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
        man = self.manifest(stage.name)
        if man is not None and man.get("fingerprint") == fingerprint:
            return self.record(
                StageResult(
                    stage.name,
                    "skipped",
                    time.perf_counter() - start,
                    dict(man.get("counts", {})),
                    fingerprint=fingerprint,
                )
            )
        partial = self.partial(stage.name)
        marker = partial / FINGERPRINT
        if partial.exists() and (not marker.exists() or marker.read_text().strip() != fingerprint):
            shutil.rmtree(partial)
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
                atomic_write_text(partial / "error.txt", traceback.format_exc())
                first = (str(err).splitlines() or [""])[0]
                reason = f"failed: {type(err).__name__}: {first} (see {partial / 'error.txt'})"
                return self.record(
                    StageResult(stage.name, "failed", time.perf_counter() - start, reason=reason)
                )
            duration = time.perf_counter() - start
            atomic_write_json(
                partial / MANIFEST,
                {
                    "stage": stage.name,
                    "fingerprint": fingerprint,
                    "config_sha256": config_hash(stage.config),
                    "inputs": list(stage.inputs),
                    "counts": counts,
                    "duration_s": round(duration, 3),
                    "versions": package_versions(),
                    "outputs_sha256": tree_hash(partial),
                    "notes": ctx.notes,
                },
            )
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
        (final / FINGERPRINT).unlink(missing_ok=True)
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

    def run(self, stage: Stage) -> StageResult:
        """Run one stage unless its manifest is current (:meth:`prepare` + :meth:`execute`)."""
        start = time.perf_counter()
        ready = self.prepare(stage)
        return ready if isinstance(ready, StageResult) else self.execute(stage, start)

    def run_all(self, stages: Sequence[Stage]) -> list[StageResult]:
        """Run ``stages`` in order (inputs first) and return their results."""
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


def iter_todo(keys: Iterable[str], done: set[str]) -> Iterator[str]:
    """The keys not yet in ``done``, in their given order."""
    return (k for k in keys if k not in done)
