"""Append-only, crash-safe completion outputs, and the reader that merges them.

Layout (docs/CONTRACTS.md)::

    <run>/completion/<completer>/<task>/records.jsonl      merged records, one JSON object a line
    <run>/completion/<completer>/<task>/images/<id>.png     t2i renders
    <run>/completion/<completer>/<task>/parts/rank<k>.jsonl records appended by process k
    <run>/completion/<completer>/<task>/parts/<part>.jsonl  records of a named shard (no merge)
    <run>/completion/<completer>/<task>/run_config.json     what produced them (checked on resume)
    <run>/completion/<completer>/<task>/summary.json        counts after the last finished run

Crash safety: an image is written to a temporary file and ``os.replace``-d before its record is
appended; each batch's records are appended in one ``write`` followed by ``flush`` + ``fsync``.
A SIGKILL can only leave a partial last line in a part file; readers drop it and the owning
process truncates it before appending again. Merging (rank 0, after every process finished)
rewrites ``records.jsonl`` atomically with every item once (first record wins) and then removes
the parts, so a crash during the merge loses nothing either.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from mmpc.metrics.files import atomic_path, atomic_write_json, atomic_write_text

__all__ = [
    "CompletionWriter",
    "output_dir",
    "read_jsonl",
    "read_records",
    "repair_jsonl",
]

log = logging.getLogger(__name__)

RECORDS = "records.jsonl"
PARTS = "parts"
IMAGES = "images"
SUMMARY = "summary.json"
RUN_CONFIG = "run_config.json"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SAFE_COMPLETER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")  # '+': e.g. ``<name>+grpo``


def output_dir(run_dir: str | os.PathLike[str], completer: str, task: str) -> Path:
    """``<run>/completion/<completer>/<task>``; ``completer`` must be a plain folder name."""
    if not _SAFE_COMPLETER.match(completer) or ".." in completer:
        raise ValueError(
            f"completer name {completer!r} is not a plain folder name ([A-Za-z0-9._+-])"
        )
    if task not in ("i2t", "t2i"):
        raise ValueError(f"unknown task {task!r}: expected 'i2t' or 't2i'")
    return Path(run_dir) / "completion" / completer / task


def image_path(out: Path, item_id: str) -> Path:
    """``<out>/images/<item_id>.png``, refusing ids that would leave the images folder."""
    folder = (out / IMAGES).resolve()
    path = (folder / f"{item_id}.png").resolve()
    if path.parent != folder or not _SAFE_NAME.match(item_id):
        raise ValueError(f"item id {item_id!r} is not usable as a file name (in {folder})")
    return path


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Records of one JSONL file and the number of dropped lines.

    A last line without its newline (a write cut short by a kill) and lines that are not JSON
    objects with an ``item_id`` are dropped, with a warning naming the file.
    """
    if not path.is_file():
        return [], 0
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    records, dropped = [], 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            rec = None
        if not isinstance(rec, dict) or not isinstance(rec.get("item_id"), str):
            log.warning("%s: line %d is not a record; dropped", path, number)
            dropped += 1
            continue
        records.append(rec)
    if tail.strip():
        log.warning("%s: partial last line (interrupted write) dropped", path)
        dropped += 1
    return records, dropped


def repair_jsonl(path: Path) -> int:
    """Truncate ``path`` after its last newline; returns the number of bytes removed."""
    if not path.is_file():
        return 0
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep == len(data):
        return 0
    with path.open("r+b") as fh:
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return len(data) - keep


def _sources(out: Path) -> list[Path]:
    parts = sorted((out / PARTS).glob("*.jsonl")) if (out / PARTS).is_dir() else []
    return [out / RECORDS, *parts]


def read_records(out: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Every item's record in ``out`` (merged file first, then part files; first record wins)."""
    merged: dict[str, dict[str, Any]] = {}
    for source in _sources(Path(out)):
        for rec in read_jsonl(source)[0]:
            merged.setdefault(rec["item_id"], rec)
    return merged


def merge_records(
    out: Path, order: Iterable[str] | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Rewrite ``records.jsonl`` with every record once (in ``order`` first), drop the parts.

    Returns:
        the merged records, and the number of records each part file held (``{"rank0": n}``).
    """
    per_part = {p.stem: len(read_jsonl(p)[0]) for p in _sources(out)[1:]}
    records = read_records(out)
    ids = [i for i in (order or []) if i in records]
    ids += sorted(set(records) - set(ids))
    atomic_write_text(out / RECORDS, "".join(json.dumps(records[i]) + "\n" for i in ids))
    for part in _sources(out)[1:]:
        part.unlink(missing_ok=True)
    if (out / PARTS).is_dir() and not any((out / PARTS).iterdir()):
        (out / PARTS).rmdir()
    return records, per_part


class CompletionWriter(BasePredictionWriter):
    """Appends each batch's records (and t2i images) under ``<run_dir>/completion/...``.

    On ``setup`` it checks that the folder holds outputs of the same configuration and hands the
    ids already done to the DataModule (``skip_items``), which then leaves them out; it creates
    its folders, the run config and repairs its own part file only when predicting starts (after
    the backends loaded), so a refused run writes nothing. On a successful ``teardown`` rank 0
    merges the parts and writes ``summary.json``: ``{"total", "done_this_run", "skipped",
    "failed_parses", "sample_size", "missing", "merged_parts"}`` (``merged_parts``: records per
    part file merged by this run).

    Args:
        run_dir: the run folder.
        part: a shard's name (e.g. ``shard0-of-4``, one process of a scheduler such as Ray):
            records go to ``parts/<part>.jsonl`` and nothing is merged on teardown; a later
            run without ``part`` merges every part. None: one part per rank, merged on teardown.
    """

    def __init__(self, run_dir: str = "runs/default", part: str | None = None) -> None:
        super().__init__(write_interval="batch")
        if part is not None and not _SAFE_NAME.match(part):
            raise ValueError(f"writer part {part!r} is not a plain file name ([A-Za-z0-9._-])")
        self.run_dir = run_dir
        self.part = part
        self.out: Path | None = None
        self._part: Path | None = None
        self._skipped = 0
        self._done_before = 0
        self._fingerprint: dict[str, Any] = {}
        self._prepared = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "predict":
            return
        completer, task = pl_module.completer, pl_module.task
        out = output_dir(self.run_dir, completer, task)
        rank = trainer.global_rank
        self._fingerprint = pl_module.fingerprint()
        cfg_path = out / RUN_CONFIG
        if rank == 0 and cfg_path.is_file():
            stored = json.loads(cfg_path.read_text())
            if stored != self._fingerprint:
                changed = sorted(
                    k for k in self._fingerprint if stored.get(k) != self._fingerprint[k]
                )
                raise ValueError(
                    f"{out}: holds outputs of another configuration (differs in {changed}); "
                    "use another completer name or run folder"
                )
        trainer.strategy.barrier("mmpc-writer-check")
        self.out = out
        self._part = out / PARTS / f"{self.part or f'rank{rank}'}.jsonl"
        done = read_records(out)
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "skip_items"):
            raise TypeError(
                "CompletionWriter needs a DataModule with skip_items() (CompletionDataModule)"
            )
        self._done_before = len(done)
        self._skipped = len(datamodule.skip_items(done))

    def on_predict_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Create the folders and the run config once the backends have loaded (the module's
        ``on_predict_start``), so a run refused for missing weights writes nothing."""
        self._prepare(trainer, pl_module)

    def _prepare(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.out is None or self._part is None or self._prepared:
            return
        if trainer.global_rank == 0:
            (self.out / PARTS).mkdir(parents=True, exist_ok=True)
            if pl_module.task == "t2i":
                (self.out / IMAGES).mkdir(exist_ok=True)
            cfg_path = self.out / RUN_CONFIG
            if not cfg_path.is_file():
                atomic_write_text(cfg_path, json.dumps(self._fingerprint, indent=2, sort_keys=True))
        # Every process has read the same done set (in setup) before anyone appends or repairs.
        trainer.strategy.barrier("mmpc-writer-mkdir")
        self._prepared = True
        if repair_jsonl(self._part):
            log.warning("%s: removed a partial last line left by an interrupted run", self._part)

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        if self.out is None or self._part is None:
            raise RuntimeError("CompletionWriter.write_on_batch_end before setup")
        lines = []
        for record in prediction:
            image = record.pop("_image", None)
            if image is not None:
                with atomic_path(image_path(self.out, record["item_id"])) as tmp:
                    image.save(tmp, format="PNG")
            lines.append(json.dumps(record) + "\n")
        with self._part.open("a", encoding="utf-8") as fh:
            fh.write("".join(lines))
            fh.flush()
            os.fsync(fh.fileno())

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "predict" or self.out is None or self.part is not None:
            return
        self._prepare(trainer, pl_module)  # nothing was left to predict: the loop was skipped
        trainer.strategy.barrier("mmpc-writer-merge")
        if trainer.global_rank == 0:
            sample = list(getattr(trainer.datamodule, "sample_ids", []))
            records, per_part = merge_records(self.out, sample)
            in_sample = (
                [records[i] for i in sample if i in records] if sample else list(records.values())
            )
            summary = {
                "completer": pl_module.completer,
                "task": pl_module.task,
                "total": len(records),
                "done_this_run": len(records) - self._done_before,
                "skipped": self._skipped,
                "failed_parses": sum(r.get("error") is not None for r in in_sample),
                "sample_size": len(sample),
                "missing": sum(i not in records for i in sample),
                "merged_parts": per_part,
            }
            atomic_write_json(self.out / SUMMARY, summary)
            log.info("completion summary: %s", summary)
        trainer.strategy.barrier("mmpc-writer-merged")
