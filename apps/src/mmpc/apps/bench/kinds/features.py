"""The feature stages: what the recommenders see of every item, per condition.

The masked items are the catalogue's CQBench sample; for I→T their text is missing, for T→I
their image.

* ``features/gt``: every item's text (title) and image (cover) features, ``mmpc.recsys.features``.
* ``features/<task>/<condition>``: only the replacement rows of the masked items for the masked
  modality (``rows.npy`` + ``item_ids.txt`` + ``condition.json``). A completer's rows encode its
  outputs with the same encoder as the ground truth; an item whose completion failed gets a zero
  row (the modality stays missing) and is counted. Imputation baselines come from
  ``mmpc.recsys.conditions``.

:func:`condition_features` reads a condition back: the GT features with its rows swapped in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmpc.apps.bench.config import FeaturesConfig
from mmpc.apps.bench.stages import StageContext, StageUnavailableError
from mmpc.metrics.files import atomic_write_json, atomic_write_text

MASKED_MODALITY = {"i2t": "text", "t2i": "image"}


def _text_encoder(cfg: FeaturesConfig) -> Any:
    from mmpc.recsys.features import TextEncoder

    return TextEncoder(cfg.text_model)


def _image_encoder(cfg: FeaturesConfig) -> Any:
    from mmpc.recsys.features import ImageEncoder

    return ImageEncoder(
        cfg.image_backend, cfg.image_model, cfg.image_weights, image_size=cfg.image_size
    )


def gt_features_stage(
    cfg: FeaturesConfig, catalog_dir: Callable[[StageContext], Path]
) -> Callable[[StageContext], dict[str, int]]:
    """Encode every item's title and cover (resumable chunks inside the stage folder)."""

    def run(ctx: StageContext) -> dict[str, int]:
        from mmpc.recsys.features import extract_features

        text, image = _text_encoder(cfg), _image_encoder(cfg)
        out = extract_features(catalog_dir(ctx), ctx.out, text, image)
        n = len((out / "item_ids.txt").read_text().splitlines())
        atomic_write_json(
            ctx.out / "encoders.json",
            {"text": text.label, "image": image.label, "image_size": cfg.image_size},
            sort_keys=True,
            default=str,
        )
        return {"items": n}

    return run


def load_feature_folder(folder: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """``item_ids`` and ``{modality: (I, d) float32}`` of a feature folder."""
    ids = (folder / "item_ids.txt").read_text(encoding="utf-8").splitlines()
    feats = {
        m: np.load(folder / f"{m}_feat.npy", allow_pickle=False)
        for m in ("text", "image")
        if (folder / f"{m}_feat.npy").is_file()
    }
    return ids, feats


def _write_rows(
    ctx: StageContext, ids: list[str], rows: np.ndarray, modality: str, info: dict[str, Any]
) -> None:
    np.save(ctx.out / "rows.npy", np.ascontiguousarray(rows, dtype=np.float32))
    atomic_write_text(ctx.out / "item_ids.txt", "\n".join(ids) + "\n")
    atomic_write_json(
        ctx.out / "condition.json", {"modality": modality, **info}, sort_keys=True, default=str
    )


def completer_condition_stage(
    cfg: FeaturesConfig,
    task: str,
    catalog_dir: Callable[[StageContext], Path],
    records_dir: Callable[[StageContext], Path],
) -> Callable[[StageContext], dict[str, int]]:
    """Encode a completer's outputs for the masked items (failed items get a zero row)."""

    def run(ctx: StageContext) -> dict[str, int]:
        from PIL import Image

        from mmpc.completion.catalog import Catalog
        from mmpc.completion.writer import image_path, read_records

        catalog = Catalog.open(catalog_dir(ctx), verify_hashes=False)
        masked = catalog.sample("cqbench")
        out_dir = records_dir(ctx)
        records = read_records(out_dir)
        modality = MASKED_MODALITY[task]
        ok: list[str] = []
        for item_id in masked:
            rec = records.get(item_id, {})
            if task == "i2t":
                good = bool(rec.get("output")) and not rec.get("error")
            else:
                good = image_path(out_dir, item_id).exists()
            if good:
                ok.append(item_id)
        if task == "i2t":
            enc = _text_encoder(cfg)
            vecs = enc.encode([str(records[i]["output"]) for i in ok]) if ok else None
        else:
            enc = _image_encoder(cfg)
            vecs = None
            if ok:
                parts = []
                for start in range(0, len(ok), 32):
                    ims = []
                    for i in ok[start : start + 32]:
                        with Image.open(image_path(out_dir, i)) as im:
                            ims.append(im.convert("RGB"))
                    parts.append(enc.encode(ims))
                vecs = np.concatenate(parts)
        dim = (
            vecs.shape[1]
            if vecs is not None
            else int(
                np.load(ctx.inputs["features/gt"] / f"{modality}_feat.npy", mmap_mode="r").shape[1]
            )
        )
        rows = np.zeros((len(masked), dim), dtype=np.float32)
        pos = {i: k for k, i in enumerate(masked)}
        for k, item_id in enumerate(ok):
            rows[pos[item_id]] = vecs[k]
        _write_rows(
            ctx,
            masked,
            rows,
            modality,
            {"kind": "completer", "failed_zero_rows": len(masked) - len(ok)},
        )
        return {"masked": len(masked), "completed": len(ok), "failed": len(masked) - len(ok)}

    return run


def imputation_condition_stage(
    cfg: FeaturesConfig, task: str, method: str, catalog_dir: Callable[[StageContext], Path]
) -> Callable[[StageContext], dict[str, int]]:
    """Fill the masked items' modality with an imputation baseline of ``mmpc.recsys``."""

    def run(ctx: StageContext) -> dict[str, int]:
        try:
            from mmpc.recsys.conditions import impute
        except ImportError as err:
            raise StageUnavailableError(
                f"imputation baselines need mmpc.recsys.conditions ({err})"
            ) from None
        from mmpc.completion.catalog import Catalog

        catalog = Catalog.open(catalog_dir(ctx), verify_hashes=False)
        masked = catalog.sample("cqbench")
        ids, feats = load_feature_folder(ctx.inputs["features/gt"])
        modality = MASKED_MODALITY[task]
        index = {i: k for k, i in enumerate(ids)}
        mask = np.zeros(len(ids), dtype=bool)
        mask[[index[i] for i in masked]] = True
        rows = impute(feats, modality, mask, method, k=cfg.knn_k)  # (n_masked, d)
        _write_rows(
            ctx,
            [ids[k] for k in np.flatnonzero(mask)],
            rows,
            modality,
            {"kind": "imputation", "method": method},
        )
        return {"masked": int(mask.sum())}

    return run


def condition_features(
    gt_dir: Path, cond_dir: Path | None
) -> tuple[list[str], dict[str, np.ndarray]]:
    """GT features with the condition's rows swapped in (``cond_dir`` None: plain GT)."""
    ids, feats = load_feature_folder(gt_dir)
    if cond_dir is None:
        return ids, feats
    info = json.loads((cond_dir / "condition.json").read_text())
    rows = np.load(cond_dir / "rows.npy")
    cond_ids = (cond_dir / "item_ids.txt").read_text().splitlines()
    index = {i: k for k, i in enumerate(ids)}
    target = feats[info["modality"]].copy()
    target[[index[i] for i in cond_ids]] = rows
    return ids, {**feats, info["modality"]: target}
