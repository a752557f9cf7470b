"""Feature conditions for RecBench: ground truth with the masked items' rows replaced.

A *condition* folder holds only the replacement rows (the one format, ``docs/CONTRACTS.md``)::

    <condition>/rows.npy        (n, d) float32, row j replaces item_ids[j]'s ``modality`` row
    <condition>/item_ids.txt    the n masked items, one per line
    <condition>/condition.json  {"modality": "text" | "image", ...provenance}

:func:`condition_features` swaps the rows into the ground-truth feature folder, so a recommender
trained on a condition differs from ground truth only in those rows. The rows come from

* :func:`write_condition`: a completer's outputs encoded with the same encoder as the ground
  truth; masked items whose completion failed get a zero row (or a mean / kNN fill), never their
  ground-truth row;
* :func:`write_imputed_condition`: the feature-level baselines for the same masked items:
  ``"zeros"`` (x_i = 0), ``"mean"`` (x_i = mean of the unmasked rows) and ``"knn"``
  (x_i = mean of the masked modality over the k unmasked items nearest to i by cosine similarity
  of the OTHER modality, computed in chunks with top-k, never an n × n matrix).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mmpc.metrics.files import atomic_path, atomic_write_json, atomic_write_text
from mmpc.recsys.types import MODALITIES

IMPUTATIONS: tuple[str, ...] = ("zeros", "mean", "knn")
OTHER = {"text": "image", "image": "text"}
ROWS_FILE = "rows.npy"
IDS_FILE = "item_ids.txt"
CONDITION_FILE = "condition.json"


@dataclass(frozen=True)
class Condition:
    """A condition folder in memory: ``rows[j]`` replaces ``item_ids[j]``'s ``modality`` row."""

    modality: str
    item_ids: list[str]
    rows: np.ndarray  # (n, d) float32
    info: dict[str, Any] = field(default_factory=dict)


def read_feature_folder(folder: str | Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """``(item_ids, {modality: (I, d) float32})`` of a feature folder."""
    folder = Path(folder)
    ids_file = folder / IDS_FILE
    if not ids_file.is_file():
        raise FileNotFoundError(f"{folder}: not a feature folder (no item_ids.txt)")
    ids = ids_file.read_text(encoding="utf-8").splitlines()
    features = {}
    for modality in MODALITIES:
        path = folder / f"{modality}_feat.npy"
        if path.is_file():
            array = np.load(path, allow_pickle=False)
            if array.ndim != 2 or array.shape[0] != len(ids):
                raise ValueError(f"{path}: shape {array.shape} does not match {len(ids)} item ids")
            features[modality] = array.astype(np.float32, copy=False)
    return ids, features


def _rows(ids: Sequence[str], items: Sequence[str], where: Path) -> np.ndarray:
    index = {item: row for row, item in enumerate(ids)}
    missing = [item for item in items if item not in index]
    if missing:
        raise ValueError(f"{where}: item {missing[0]!r} is not in item_ids.txt")
    return np.fromiter((index[i] for i in items), dtype=np.int64, count=len(items))


def save_condition(
    out: str | Path,
    modality: str,
    item_ids: Sequence[str],
    rows: np.ndarray,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write a condition folder (each file atomically; ``condition.json`` last).

    Args:
        out: the condition folder.
        modality: ``"text"`` or ``"image"``: the modality whose rows are replaced.
        item_ids: the items whose rows are replaced, in row order.
        rows: ``(len(item_ids), d)`` replacement rows (stored as float32).
        info: provenance stored in ``condition.json`` beside ``modality``.
    """
    if modality not in MODALITIES:
        raise ValueError(f"{out}: unknown modality {modality!r}; use one of {MODALITIES}")
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[0] != len(item_ids):
        raise ValueError(f"{out}: rows of shape {rows.shape} for {len(item_ids)} item ids")
    out = Path(out)
    with atomic_path(out / ROWS_FILE) as tmp, tmp.open("wb") as fh:
        np.save(fh, rows)
    atomic_write_text(out / IDS_FILE, "\n".join(item_ids) + "\n")
    payload = {"modality": modality, **(info or {})}
    atomic_write_json(out / CONDITION_FILE, payload, sort_keys=True, default=str)
    return out


def read_condition(folder: str | Path) -> Condition:
    """The :class:`Condition` stored in ``folder`` (see :func:`save_condition`)."""
    folder = Path(folder)
    info = json.loads((folder / CONDITION_FILE).read_text(encoding="utf-8"))
    modality = info.pop("modality")
    rows = np.load(folder / ROWS_FILE, allow_pickle=False)
    ids = (folder / IDS_FILE).read_text(encoding="utf-8").splitlines()
    if rows.ndim != 2 or rows.shape[0] != len(ids):
        raise ValueError(f"{folder}: rows.npy {rows.shape} does not match {len(ids)} item ids")
    return Condition(modality, ids, rows, info)


def condition_features(
    ground_truth: str | Path, condition: str | Path | None = None
) -> tuple[list[str], dict[str, np.ndarray]]:
    """The ground-truth features with the condition's rows swapped in (``None``: plain GT)."""
    ids, features = read_feature_folder(ground_truth)
    if condition is None:
        return ids, features
    cond = read_condition(condition)
    target = features[cond.modality].copy()
    target[_rows(ids, cond.item_ids, Path(ground_truth))] = cond.rows
    return ids, {**features, cond.modality: target}


def write_condition(
    ground_truth: str | Path,
    out: str | Path,
    modality: str,
    completed: Mapping[str, np.ndarray],
    *,
    masked_items: Sequence[str],
    on_failure: str = "zeros",
    k: int = 10,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write the condition of a completer: one row per masked item, in ``masked_items`` order.

    Every item in ``masked_items`` lost ``modality``: its row is the completed vector when the
    completion succeeded, and otherwise the ``on_failure`` fill. A masked item never keeps its
    ground-truth row, which would leak the true feature into the condition and flatter the
    completer by its failure rate.

    Args:
        ground_truth: feature folder of the original features.
        out: condition folder to write (see :func:`save_condition`).
        modality: ``"text"`` or ``"image"``: the modality that was completed.
        completed: ``{item_id: (d,) vector}`` encoded with the ground truth's encoder, for the
            masked items whose completion succeeded (a subset of ``masked_items``).
        masked_items: every item whose ``modality`` was masked, completed or not.
        on_failure: the row of a masked item without a completion: ``"zeros"`` (default, as
            ``mmpc bench``), ``"mean"`` or ``"knn"`` (the imputation baselines, computed from the
            unmasked items), or ``"error"`` to refuse.
        k: neighbours for ``on_failure="knn"``.
        info: provenance written to ``out/condition.json``.

    Raises:
        ValueError: an unknown item, a completed item that is not masked, a vector of the
            wrong width, an unknown ``on_failure``, or a failure with ``on_failure="error"``.
    """
    if on_failure not in (*IMPUTATIONS, "error"):
        raise ValueError(f"unknown on_failure {on_failure!r}; use one of {(*IMPUTATIONS, 'error')}")
    gt = Path(ground_truth)
    ids, features = read_feature_folder(gt)
    if modality not in features:
        raise ValueError(f"{gt}: no {modality}_feat.npy to replace rows in")
    masked_items = list(dict.fromkeys(masked_items))
    stray = [item for item in completed if item not in set(masked_items)]
    if stray:
        raise ValueError(f"completed item {stray[0]!r} is not among the masked items")
    failed = [item for item in masked_items if item not in completed]
    if failed and on_failure == "error":
        raise ValueError(
            f"{len(failed)} masked item(s) have no completion (first: {failed[0]!r}) and "
            "on_failure='error'"
        )
    gt_rows = _rows(ids, masked_items, gt)
    rows = np.zeros((len(masked_items), features[modality].shape[1]), dtype=np.float32)
    if failed and on_failure != "zeros":  # fill every masked row, then the completed overwrite
        mask = np.zeros(len(ids), dtype=bool)
        mask[gt_rows] = True
        fill = impute(features, modality, mask, on_failure, k=k)  # rows in GT order
        order = np.argsort(gt_rows, kind="stable")  # masked_items[order[j]] is the j-th GT row
        rows[order] = fill
    pos = {item: j for j, item in enumerate(masked_items)}
    items = list(completed)
    if items:
        vectors = np.stack([np.asarray(completed[i], dtype=np.float32) for i in items])
        if vectors.ndim != 2 or vectors.shape[1] != rows.shape[1]:
            raise ValueError(
                f"{gt}: completed {modality} vectors have shape {vectors.shape[1:]}, "
                f"ground truth rows ({rows.shape[1]},)"
            )
        rows[[pos[i] for i in items]] = vectors
    return save_condition(out, modality, masked_items, rows, info)


def read_completed_outputs(records: str | Path) -> dict[str, str]:
    """``{item_id: output}`` of the successful records of a completion ``records.jsonl``.

    Records with an ``error`` or an empty ``output`` are skipped: pass the masked items to
    :func:`write_condition`, which fills those failures with its ``on_failure`` row.
    """
    path = Path(records)
    out = {}
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{line_no}: not JSON ({err.msg})") from err
            if record.get("error") or not record.get("output"):
                continue
            out[str(record["item_id"])] = str(record["output"])
    return out


def impute(
    features: Mapping[str, np.ndarray],
    modality: str,
    masked: np.ndarray,
    method: str,
    k: int = 10,
    chunk: int = 1024,
) -> np.ndarray:
    """Imputed ``(n_masked, d)`` rows of ``modality`` for the items where ``masked`` is True.

    Args:
        features: ``{modality: (I, d)}``; ``"knn"`` needs the other modality too.
        modality: the modality to fill in.
        masked: (I,) bool, the items that lost ``modality``.
        method: ``"zeros"``, ``"mean"`` or ``"knn"``.
        k: neighbours for ``"knn"`` (fewer if fewer unmasked items exist).
        chunk: masked items per similarity block for ``"knn"``.
    """
    if method not in IMPUTATIONS:
        raise ValueError(f"unknown imputation {method!r}; use one of {IMPUTATIONS}")
    target = np.asarray(features[modality], dtype=np.float32)
    masked = np.asarray(masked, dtype=bool)
    keep = ~masked
    if not keep.any():
        raise ValueError(f"all {masked.size} items are masked: nothing to impute {modality} from")
    if method == "zeros":
        return np.zeros((int(masked.sum()), target.shape[1]), dtype=np.float32)
    if method == "mean":
        mean = target[keep].mean(axis=0, dtype=np.float64).astype(np.float32)
        return np.repeat(mean[None], int(masked.sum()), axis=0)
    other = OTHER[modality]
    if other not in features:
        raise ValueError(f"kNN imputation of {modality} needs {other} features")
    key = F.normalize(torch.from_numpy(np.asarray(features[other], np.float32)), dim=1)
    pool = key[torch.from_numpy(keep)]  # (n_keep, d_o)
    values = torch.from_numpy(target[keep])  # (n_keep, d)
    query = key[torch.from_numpy(masked)]  # (n_masked, d_o)
    k = min(k, pool.shape[0])
    out = []
    for start in range(0, query.shape[0], chunk):
        sims = query[start : start + chunk] @ pool.T  # (c, n_keep)
        top = sims.topk(k, dim=1).indices  # (c, k)
        out.append(values[top].mean(dim=1))
    return torch.cat(out).numpy() if out else np.zeros((0, target.shape[1]), np.float32)


def write_imputed_condition(
    ground_truth: str | Path,
    out: str | Path,
    modality: str,
    masked_items: Sequence[str],
    method: str,
    k: int = 10,
) -> Path:
    """Write the imputation baseline ``method`` for ``masked_items`` (rows in ground-truth order).

    ``condition.json`` records ``{"kind": "imputation", "method": method}``.
    """
    gt = Path(ground_truth)
    ids, features = read_feature_folder(gt)
    if modality not in features:
        raise ValueError(f"{gt}: no {modality}_feat.npy to impute")
    mask = np.zeros(len(ids), dtype=bool)
    mask[_rows(ids, list(masked_items), gt)] = True
    rows = impute(features, modality, mask, method, k=k)  # (n_masked, d)
    info = {"kind": "imputation", "method": method}
    return save_condition(out, modality, [ids[r] for r in np.flatnonzero(mask)], rows, info)
