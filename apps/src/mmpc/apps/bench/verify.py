"""Is a finished stage's folder still what its manifest says? (``mmpc bench`` on start and
``mmpc bench --verify-only``.)

The check is cheap first: the size and modification time (ns) of every output file against the
manifest's ``files`` (:func:`~mmpc.apps.bench.manifest.file_stats`), which a folder rename or a
copy that keeps times (``cp -a``, ``shutil.copytree``) leaves alone and an edit, a truncation or a
replaced file changes. Only when they differ, when the manifest predates ``files``, or when the
caller asks for it (``full``), are the files hashed and compared with ``outputs_sha256``: the
hash decides, so a file merely touched is still trusted (its new times can then be recorded,
:func:`refresh_file_stats`). A byte changed in place with its size and time restored is only found
by the full hash (``mmpc bench --verify``, ``--verify-only``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmpc.apps.bench.manifest import file_stats, read_manifest, tree_hash
from mmpc.apps.bench.stages import MANIFEST, PARTIAL, Stage, check_stage_name
from mmpc.metrics.files import atomic_write_json


@dataclass(frozen=True)
class Check:
    """The outcome of checking one stage folder against its manifest.

    ``ok``: the files are those the manifest hashed. ``reason``: why not, one line. ``stale_stats``:
    they are, but their recorded sizes / times are not current (or not recorded).
    """

    ok: bool
    reason: str = ""
    stale_stats: bool = False


def _describe(recorded: Mapping[str, Any], actual: Mapping[str, list[int]]) -> str:
    """The first difference between recorded and actual file stats, in words."""
    missing = sorted(set(recorded) - set(actual))
    added = sorted(set(actual) - set(recorded))
    changed = sorted(r for r in set(recorded) & set(actual) if list(recorded[r]) != actual[r])

    def more(names: list[str]) -> str:
        return f" (+{len(names) - 1} more)" if len(names) > 1 else ""

    parts = []
    if missing:
        parts.append(f"{missing[0]} missing{more(missing)}")
    if changed:
        rel = changed[0]
        old, new = recorded[rel][0], actual[rel][0]
        parts.append(f"{rel} {f'size {old} -> {new}' if old != new else 'modified'}{more(changed)}")
    if added:
        parts.append(f"{added[0]} added{more(added)}")
    return ", ".join(parts)


def check_outputs(folder: Path, manifest: Mapping[str, Any], full: bool = False) -> Check:
    """Check the files of the finished stage folder ``folder`` against ``manifest``.

    Args:
        folder: the stage's folder.
        manifest: its manifest.
        full: hash the files even when their sizes and times match.

    Returns:
        A :class:`Check`; not ok only when the full hash disagrees with ``outputs_sha256``.
    """
    recorded = manifest.get("files")
    actual = file_stats(folder)
    same_stats = isinstance(recorded, dict) and {k: list(v) for k, v in recorded.items()} == actual
    if same_stats and not full:
        return Check(True)
    if tree_hash(folder) == manifest.get("outputs_sha256"):
        return Check(True, stale_stats=not same_stats)
    if isinstance(recorded, dict) and not same_stats:
        what = _describe(recorded, actual)
    else:
        what = "a file's contents changed"
    return Check(False, f"{what} (the files' hash differs from the manifest's)")


def refresh_file_stats(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Record the current sizes and times of ``folder``'s files (already checked by hash) in
    its manifest, so the next check is the cheap one again."""
    updated = dict(manifest)
    updated["files"] = file_stats(folder)
    atomic_write_json(folder / MANIFEST, updated, sort_keys=True, default=str)


def downstream_of(stages: Sequence[Stage]) -> dict[str, list[str]]:
    """``{stage: the stages that read it directly}`` for a stage graph."""
    out: dict[str, list[str]] = {s.name: [] for s in stages}
    for stage in stages:
        for dep in stage.inputs:
            out.setdefault(dep, []).append(stage.name)
    return out


def finished_reader(run_dir: Path, name: str, readers: Sequence[str]) -> str | None:
    """The first stage of ``readers`` whose finished manifest lists ``name`` as an input."""
    for reader in readers:
        man = read_manifest(run_dir / check_stage_name(reader))
        if man is not None and name in man.get("inputs", []):
            return reader
    return None


def damage(
    run_dir: Path, name: str, readers: Sequence[str], full: bool = False
) -> tuple[str, Check | None]:
    """Why the stage ``name`` of ``run_dir`` is damaged (``""`` when it is not), and the check
    of its files when it has a manifest.

    Damaged: a folder without its manifest, files that do not match it, or no folder at all while
    a finished stage of ``readers`` was computed from it. A stage never finished is not damaged.
    """
    folder = run_dir / check_stage_name(name)
    partial = folder.with_name(folder.name + PARTIAL)
    if not folder.is_dir():
        if (partial / MANIFEST).exists():  # finished, killed before the rename: moved next time
            return "", None
        reader = finished_reader(run_dir, name, readers)
        return (f"its folder is missing but {reader} was computed from it" if reader else ""), None
    man = read_manifest(folder)
    if man is None:
        return f"{MANIFEST} is missing", None
    check = check_outputs(folder, man, full)
    return ("" if check.ok else check.reason), check


def verify_run(run_dir: Path, stages: Sequence[Stage], full: bool = True) -> dict[str, str]:
    """``{stage: reason}`` for every damaged stage of ``run_dir`` (nothing is written).

    Only the stages of ``stages`` are looked at, in their order; unfinished ones are skipped.
    """
    readers = downstream_of(stages)
    found: dict[str, str] = {}
    for stage in stages:
        reason, _ = damage(run_dir, stage.name, readers.get(stage.name, []), full)
        if reason:
            found[stage.name] = reason
    return found
