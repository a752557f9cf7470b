"""A finished stage's manifest and the hashes behind it: what makes a stage *up to date*.

* The *inputs fingerprint* of a stage is ``sha256(name, config hash, [(dep, dep fingerprint, dep
  outputs hash) for dep in inputs])`` (:func:`inputs_fingerprint`).
* The *outputs hash* of a finished stage is the sha256 over every file of its folder (relative
  path and content), the manifest and the fingerprint marker excluded (:func:`tree_hash`).
* The manifest (:func:`write_manifest`) records both, with the config hash, the package versions,
  the counts, the duration, the stage's notes and ``files``: each output file's size and
  modification time in ns (:func:`file_stats`), the cheap first check of
  :mod:`mmpc.apps.bench.verify`. Manifests written before ``files`` existed are still read; they
  are checked by their ``outputs_sha256`` alone.

These formats are those of every run folder made so far: changing a byte here makes every old
run recompute.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from mmpc.apps.bench.stages import FINGERPRINT, MANIFEST
from mmpc.metrics.files import atomic_write_json, file_sha256

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


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace variance; non-JSON values are written with str()."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: Any) -> str:
    """sha256 hex digest of :func:`canonical_json` of ``config``."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


OUTPUT_EXCLUDE = (MANIFEST, FINGERPRINT)


def output_files(folder: Path, exclude: Iterable[str] = OUTPUT_EXCLUDE) -> list[tuple[str, Path]]:
    """``(relative path, path)`` of every output file under ``folder``, sorted by path."""
    skip = set(exclude)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    found = ((p.relative_to(folder).as_posix(), p) for p in files)
    return [(rel, path) for rel, path in found if rel not in skip]


def tree_hash(folder: Path, exclude: Iterable[str] = OUTPUT_EXCLUDE) -> str:
    """sha256 over ``(relative path, file sha256)`` of every file under ``folder``, sorted."""
    digest = hashlib.sha256()
    for rel, path in output_files(folder, exclude):
        digest.update(f"{rel}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def file_stats(folder: Path, exclude: Iterable[str] = OUTPUT_EXCLUDE) -> dict[str, list[int]]:
    """``{relative path: [size, mtime_ns]}`` of every output file: what a rename keeps and an
    edit, a truncation or a replacement changes (the manifest's ``files``). One ``stat`` per
    file (``os.scandir``), the check that runs before every skipped stage."""
    skip = set(exclude)
    out: dict[str, list[int]] = {}
    todo = [(folder, "")]
    while todo:
        path, prefix = todo.pop()
        with os.scandir(path) as entries:
            for entry in entries:
                rel = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):  # as rglob: links to folders not followed
                    todo.append((Path(entry.path), rel + "/"))
                elif entry.is_file(follow_symlinks=True) and rel not in skip:
                    st = entry.stat(follow_symlinks=True)
                    out[rel] = [st.st_size, st.st_mtime_ns]
    return dict(sorted(out.items()))


def package_versions(names: Sequence[str] = _VERSIONED) -> dict[str, str]:
    """Installed versions of the packages a stage's results depend on (absent ones omitted)."""
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def inputs_fingerprint(
    name: str, config: Mapping[str, Any], inputs: Sequence[tuple[str, Mapping[str, Any]]]
) -> str:
    """The inputs fingerprint of stage ``name`` from its config and its inputs' manifests
    (``(input name, its manifest)`` in the stage's order)."""
    deps = [[dep, man["fingerprint"], man["outputs_sha256"]] for dep, man in inputs]
    return config_hash({"stage": name, "config": config_hash(config), "inputs": deps})


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of the stage folder ``folder``, or None when it has none."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def write_manifest(
    folder: Path,
    *,
    name: str,
    fingerprint: str,
    config: Mapping[str, Any],
    inputs: Sequence[str],
    counts: Mapping[str, int],
    duration_s: float,
    notes: Mapping[str, Any],
) -> None:
    """Write the manifest of the finished stage folder ``folder`` (hashing its files)."""
    atomic_write_json(
        folder / MANIFEST,
        {
            "stage": name,
            "fingerprint": fingerprint,
            "config_sha256": config_hash(config),
            "inputs": list(inputs),
            "counts": dict(counts),
            "duration_s": round(duration_s, 3),
            "versions": package_versions(),
            "outputs_sha256": tree_hash(folder),
            "files": file_stats(folder),
            "notes": notes,
        },
        sort_keys=True,
        default=str,
    )
