"""Resumption inside a stage: an append-only file of item-keyed records."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from mmpc.apps.bench.manifest import canonical_json
from mmpc.metrics.files import atomic_write_text


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
        try:
            self._fh.write(canonical_json(dict(record)) + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except BaseException:
            # e.g. a full disk: drop what is buffered (the torn line on disk is dropped on the
            # next open) instead of leaving it to be flushed, and complained about, at exit
            fh, self._fh = self._fh, None
            with contextlib.suppress(OSError):
                fh.close()
            raise
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
