"""Feature conditions for RecBench: ground truth with some items' rows replaced.

A *condition* is a feature folder (``docs/CONTRACTS.md``) equal to the ground-truth folder except
for the rows of the items whose masked modality was completed:

* ``write_condition``: the rows come from encoding a completer's outputs (generated titles for
  I→T, rendered images for T→I) with the same encoder as the ground truth; masked items whose
  completion failed get a zero row (or a mean / kNN fill), never their ground-truth row.
* ``impute``/``write_imputed_condition``: feature-level baselines for the same masked items:
  ``"zeros"`` (x_i = 0), ``"mean"`` (x_i = mean of the unmasked rows) and ``"knn"``
  (x_i = mean of the masked modality over the k unmasked items nearest to i by cosine similarity
  of the OTHER modality, computed in chunks with top-k, never an n × n matrix).

Everything not replaced is copied byte-for-byte from the ground truth, so a recommender trained on
a condition differs from ground truth only in the completed rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mmpc.recsys.features import _atomic_save, write_feature_folder

IMPUTATIONS: tuple[str, ...] = ("zeros", "mean", "knn")
OTHER = {"text": "image", "image": "text"}


def read_feature_folder(folder: str | Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """``(item_ids, {modality: (I, d) float32})`` of a feature folder."""
    folder = Path(folder)
    ids_file = folder / "item_ids.txt"
    if not ids_file.is_file():
        raise FileNotFoundError(f"{folder}: not a feature folder (no item_ids.txt)")
    ids = ids_file.read_text(encoding="utf-8").splitlines()
    features = {}
    for modality in ("text", "image"):
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


def write_condition(
    ground_truth: str | Path,
    out: str | Path,
    modality: str,
    completed: Mapping[str, np.ndarray],
    *,
    masked_items: Sequence[str],
    on_failure: str = "zeros",
    k: int = 10,
    info: dict | None = None,
) -> Path:
    """Copy the ground-truth features to ``out``, the masked items' ``modality`` rows replaced.

    Every item in ``masked_items`` lost ``modality``: its row becomes the completed vector when
    the completion succeeded, and otherwise the ``on_failure`` fill. A masked item never keeps
    its ground-truth row, which would leak the true feature into the condition and flatter the
    completer by its failure rate.

    Args:
        ground_truth: feature folder of the original features.
        out: condition folder to write (atomically, file by file).
        modality: ``"text"`` or ``"image"``: the modality that was completed.
        completed: ``{item_id: (d,) vector}`` encoded with the ground truth's encoder, for the
            masked items whose completion succeeded (a subset of ``masked_items``).
        masked_items: every item whose ``modality`` was masked, completed or not.
        on_failure: the row of a masked item without a completion: ``"zeros"`` (default, as
            ``mmpc bench``), ``"mean"`` or ``"knn"`` (the imputation baselines, computed from the
            unmasked items), or ``"error"`` to refuse.
        k: neighbours for ``on_failure="knn"``.
        info: extra provenance written to ``out/condition.json``.

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
    base = features[modality]
    masked_items = list(dict.fromkeys(masked_items))
    masked_set = set(masked_items)
    stray = [item for item in completed if item not in masked_set]
    if stray:
        raise ValueError(f"completed item {stray[0]!r} is not among the masked items")
    failed = [item for item in masked_items if item not in completed]
    if failed and on_failure == "error":
        raise ValueError(
            f"{len(failed)} masked item(s) have no completion (first: {failed[0]!r}) and "
            "on_failure='error'"
        )
    items = list(completed)
    if masked_items:
        base = base.copy()
    if failed:  # fill every masked row, then the completed vectors overwrite theirs
        mask = np.zeros(len(ids), dtype=bool)
        mask[_rows(ids, masked_items, gt)] = True
        base[mask] = impute(features, modality, mask, on_failure, k=k)  # rows in id order
    if items:
        vectors = np.stack([np.asarray(completed[i], dtype=np.float32) for i in items])
        if vectors.ndim != 2 or vectors.shape[1] != base.shape[1]:
            raise ValueError(
                f"{gt}: completed {modality} vectors have shape {vectors.shape[1:]}, "
                f"ground truth rows ({base.shape[1]},)"
            )
        base[_rows(ids, items, gt)] = vectors
    features = {**features, modality: base}
    write_feature_folder(out, ids, features)
    meta = {
        "ground_truth": str(gt),
        "modality": modality,
        "masked": len(masked_items),
        "replaced": len(items),
        "failed": len(failed),
        "on_failure": on_failure,
        **(info or {}),
    }
    text = json.dumps(meta, indent=2)
    _atomic_save(Path(out) / "condition.json", lambda p: p.write_text(text, encoding="utf-8"))
    return Path(out)


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
    """Write the imputation baseline ``method`` for ``masked_items`` as a condition folder."""
    gt = Path(ground_truth)
    ids, features = read_feature_folder(gt)
    if modality not in features:
        raise ValueError(f"{gt}: no {modality}_feat.npy to impute")
    rows = _rows(ids, list(masked_items), gt)
    mask = np.zeros(len(ids), dtype=bool)
    mask[rows] = True
    filled = impute(features, modality, mask, method, k=k)
    completed = dict(zip([ids[r] for r in np.flatnonzero(mask)], filled, strict=True))
    info = {"imputation": method, **({"k": k} if method == "knn" else {})}
    return write_condition(gt, out, modality, completed, masked_items=list(completed), info=info)
