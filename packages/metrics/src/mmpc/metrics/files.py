"""Crash-safe file writing shared by every MMPCBench package (one helper for the job).

A reader of a run folder must never see half a file: every writer goes through a temporary file in
the destination's own folder (same filesystem, so the final ``os.replace`` is atomic) and the
temporary file is removed when the write fails, so a rerun never trusts a partial output.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "file_sha256",
]


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it replaces ``path`` atomically.

    The caller writes the temporary file with any library (``numpy.save``, ``PIL.Image.save``,
    ``torch.save``, ``DataFrame.to_parquet``...). On an exception the temporary file is removed and
    ``path`` is left as it was. With ``fsync`` the data reaches the disk before the rename, so a
    power cut cannot leave a renamed but empty file.

    Example:
        >>> import numpy as np
        >>> with atomic_path(folder / "x.npy") as tmp:  # doctest: +SKIP
        ...     np.save(tmp, np.zeros(3))
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | os.PathLike[str], *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on a clean exit it becomes ``path``.

    Args:
        path: the folder to write (e.g. a ``save_pretrained`` output).
        replace: an existing ``path`` is renamed to ``<path>.old``, the new folder renamed in and
            the old one removed, so a reader finds the old or the new folder, never a mix. With
            ``replace=False`` an existing ``path`` wins (a cache that another process filled
            first) and the temporary folder is discarded.

    On an exception the temporary folder is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if replace and target.exists():
            old = target.with_name(target.name + ".old")
            shutil.rmtree(old, ignore_errors=True)  # left by a run killed between the renames
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        elif not target.exists():
            try:
                os.replace(tmp, target)
            except OSError:
                if not target.exists():  # not another writer winning the race: a real error
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, fsync: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_write_json(path: str | os.PathLike[str], payload: Any, **dumps_kwargs: Any) -> None:
    """Write ``json.dumps(payload, **dumps_kwargs)`` plus a newline to ``path`` atomically.

    ``dumps_kwargs`` default to ``indent=2``; pass the caller's own settings (``sort_keys``,
    ``default=str``...) so that files keep their exact bytes.
    """
    dumps_kwargs.setdefault("indent", 2)
    atomic_write_text(path, json.dumps(payload, **dumps_kwargs) + "\n")


def file_sha256(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()
