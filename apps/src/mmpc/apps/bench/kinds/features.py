"""The feature stages: what the recommenders see of every item, per condition.

The masked items are the catalogue's CQBench sample; for I→T their text is missing, for T→I
their image.

* ``features/gt``: every item's text (title) and image (cover) features, ``mmpc.recsys.features``.
* ``features/<task>/<condition>``: only the replacement rows of the masked items for the masked
  modality (``rows.npy`` + ``item_ids.txt`` + ``condition.json``). A completer's rows encode its
  outputs with the same encoder as the ground truth; an item whose completion failed gets a zero
  row (the modality stays missing) and is counted. Imputation baselines come from
  ``mmpc.recsys.conditions``.

:func:`mmpc.recsys.conditions.condition_features` reads a condition back: the GT features with
its rows swapped in (one condition format, owned by ``mmpc.recsys``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmpc.apps.bench.config import FeaturesConfig
from mmpc.apps.bench.stages import StageContext, StageUnavailableError
from mmpc.metrics.files import atomic_write_json

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
        from mmpc.recsys.conditions import write_condition

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
        write_condition(
            ctx.inputs["features/gt"],
            ctx.out,
            modality,
            dict(zip(ok, vecs, strict=True)) if ok else {},
            masked_items=masked,
            info={"kind": "completer", "failed_zero_rows": len(masked) - len(ok)},
        )
        return {"masked": len(masked), "completed": len(ok), "failed": len(masked) - len(ok)}

    return run


def imputation_condition_stage(
    cfg: FeaturesConfig, task: str, method: str, catalog_dir: Callable[[StageContext], Path]
) -> Callable[[StageContext], dict[str, int]]:
    """Fill the masked items' modality with an imputation baseline of ``mmpc.recsys``."""

    def run(ctx: StageContext) -> dict[str, int]:
        try:
            from mmpc.recsys.conditions import write_imputed_condition
        except ImportError as err:
            raise StageUnavailableError(
                f"imputation baselines need mmpc.recsys.conditions ({err})"
            ) from None
        from mmpc.completion.catalog import Catalog

        catalog = Catalog.open(catalog_dir(ctx), verify_hashes=False)
        masked = catalog.sample("cqbench")
        write_imputed_condition(
            ctx.inputs["features/gt"], ctx.out, MASKED_MODALITY[task], masked, method, cfg.knn_k
        )
        return {"masked": len(set(masked))}

    return run
