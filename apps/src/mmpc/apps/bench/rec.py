"""Feature conditions and RecBench stages.

Feature conditions (the masked items are the catalogue's CQBench sample; for I→T their text is
missing, for T→I their image):

* ``features/gt``: every item's text (title) and image (cover) features, ``mmpc.recsys.features``.
* ``features/<task>/<condition>``: only the replacement rows of the masked items for the masked
  modality (``rows.npy`` + ``item_ids.txt`` + ``condition.json``). A completer's rows encode its
  outputs with the same encoder as the ground truth; an item whose completion failed gets a zero
  row (the modality stays missing) and is counted. Imputation baselines come from
  ``mmpc.recsys.conditions``.

RecBench (``recbench/<model>/<task>/<condition>/seed<k>``; the GT run is ``recbench/<model>/gt/
seed<k>`` and serves both tasks): the condition's features are the GT features with the masked
rows replaced. One model is trained per category (``per_category``; else once on the whole
catalogue, users assigned to their majority category), with ``RecommenderModule`` (BPR, full
ranking, early stopping on validation Recall@20, best checkpoint tested). Besides the module's
test metrics the stage stores the per-user Recall/NDCG@K vectors of the test users (``users.csv``)
for the report's paired bootstrap; their mean is checked against the module's metrics.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmpc.apps.bench.config import FeaturesConfig, RecBenchConfig, RecModelConfig
from mmpc.apps.bench.stages import (
    StageContext,
    StageUnavailableError,
    atomic_write_json,
    atomic_write_text,
)
from mmpc.apps.console import quiet_libraries
from mmpc.apps.report.data import KS, REC_METRICS

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


def _model(spec: RecModelConfig, dm: Any) -> Any:
    import mmpc.recsys.models as models

    cls = getattr(models, spec.name, None)
    if cls is None:
        raise ValueError(
            f"recbench.models: unknown recommender {spec.name!r} "
            f"(mmpc.recsys.models has {models.__all__})"
        )
    return cls(dm.num_users, dm.num_items, dm.feature_dims, **spec.hparams)


def per_user_metrics(module: Any, dm: Any) -> pd.DataFrame:
    """Recall/NDCG@K of every test user under the module's current weights (full ranking)."""
    values = module.per_user_metrics("test")
    user_ids = module.data.user_ids
    frame = pd.DataFrame({name: values[name] for name in REC_METRICS})
    frame.insert(0, "user_id", [user_ids[u] if user_ids else str(u) for u in values["user"]])
    return frame


def train_one(
    spec: RecModelConfig,
    rcfg: RecBenchConfig,
    data_dir: Path,
    feat_dir: Path,
    work: Path,
    seed: int,
    accelerator: str,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train + test one recommender; returns (metrics payload, per-user frame)."""
    import lightning as L

    from mmpc.recsys.data import InteractionDataModule
    from mmpc.recsys.module import RecommenderModule

    L.seed_everything(seed, workers=True, verbose=False)
    dm = InteractionDataModule(
        data_dir, feature_dir=feat_dir, batch_size=rcfg.batch_size, seed=seed
    )
    module = RecommenderModule(
        _model(spec, dm),
        lr=spec.lr,
        weight_decay=spec.weight_decay,
        ks=KS,
        stopping_step=rcfg.stopping_step,
    )
    with quiet_libraries():
        trainer = L.Trainer(
            max_epochs=rcfg.max_epochs,
            accelerator=accelerator,
            devices=1,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=str(work),
            deterministic=False,
        )
        trainer.fit(module, datamodule=dm)
        test = trainer.test(module, datamodule=dm, ckpt_path="best", verbose=False)[0]
    users = per_user_metrics(module.cpu(), dm)
    for metric in ("recall@20", "ndcg@20"):
        mean = float(np.nanmean(users[metric].to_numpy()))
        if abs(mean - float(test[f"test/{metric}"])) > 1e-4:
            raise RuntimeError(
                f"{work}: per-user {metric} mean {mean:.6f} differs from the "
                f"module's test value {test[f'test/{metric}']:.6f}"
            )
    payload = {
        "test": {k.split("/", 1)[1]: float(v) for k, v in test.items()},
        "best_val": {k: float(v) for k, v in module.best_val.items()},
        "best_epoch": int(module.best_epoch),
        "epochs_run": int(trainer.current_epoch),
    }
    return payload, users


def recbench_parts(
    rcfg: RecBenchConfig, catalog_dir: Callable[[StageContext], Path]
) -> Callable[[StageContext, int], list[str]]:
    """One part per category when training per category (an executor may train them apart)."""

    def parts(ctx: StageContext, shards: int) -> list[str]:
        if not rcfg.per_category:
            return []
        from mmpc.completion.catalog import Catalog

        return list(Catalog.open(catalog_dir(ctx), verify_hashes=False).categories)

    return parts


def recbench_stage(
    spec: RecModelConfig,
    rcfg: RecBenchConfig,
    seed: int,
    accelerator: str,
    catalog_dir: Callable[[StageContext], Path],
    cond_stage: str | None,
) -> Callable[[StageContext], dict[str, int]]:
    """Train/test ``spec`` on the condition's features, per category (resumable by category).

    With ``ctx.part`` set only that category is trained (``results/<category>.*``); without, the
    categories not yet done are trained and the per-user results assembled.
    """

    def run(ctx: StageContext) -> dict[str, int]:
        from mmpc.completion.catalog import Catalog
        from mmpc.recsys.conditions import condition_features
        from mmpc.recsys.features import write_feature_folder

        catalog = Catalog.open(catalog_dir(ctx), verify_hashes=False)
        ids, feats = condition_features(
            ctx.inputs["features/gt"], ctx.inputs[cond_stage] if cond_stage else None
        )
        inter = catalog.interactions
        item_cat = catalog.items["category"]
        groups = catalog.categories if rcfg.per_category else ["all"]
        if ctx.part is not None and ctx.part not in groups:
            raise ValueError(f"{ctx.name}: unknown part {ctx.part!r} (categories: {groups})")
        results = ctx.out / "results"
        results.mkdir(exist_ok=True)
        todo = [ctx.part] if ctx.part is not None else groups
        bar = ctx.progress(total=len(todo), desc=f"{ctx.name}", unit="category")
        for group in todo:
            if (results / f"{group}.json").exists():
                bar.update(1)
                continue
            work = ctx.out / "work" / group
            if work.exists():
                shutil.rmtree(work)
            sub = (
                inter
                if group == "all"
                else inter[item_cat.loc[inter["item_id"]].to_numpy() == group]
            )
            data_dir = work / "data"
            data_dir.mkdir(parents=True)
            sub.to_parquet(data_dir / "interactions.parquet", index=False)
            keep = sorted(set(sub["item_id"].astype(str)))
            pos = {i: k for k, i in enumerate(ids)}
            rows = [pos[i] for i in keep]
            write_feature_folder(work / "features", keep, {m: f[rows] for m, f in feats.items()})
            payload, users = train_one(
                spec,
                rcfg,
                data_dir,
                work / "features",
                work / "train",
                seed,
                ctx_accelerator(accelerator),
            )
            if group == "all":
                first = sub.merge(item_cat.rename("category"), left_on="item_id", right_index=True)
                major = first.groupby("user_id")["category"].agg(lambda s: s.mode().iloc[0])
                users["category"] = users["user_id"].map(major)
            else:
                users["category"] = group
            atomic_write_text(results / f"{group}.users.csv", users.to_csv(index=False))
            atomic_write_json(results / f"{group}.json", payload)
            shutil.rmtree(work)
            bar.update(1)
        bar.close()
        if ctx.part is not None:
            return {}
        shutil.rmtree(ctx.out / "work", ignore_errors=True)
        frames = [pd.read_csv(results / f"{g}.users.csv") for g in groups]
        users = pd.concat(frames, ignore_index=True)
        atomic_write_text(ctx.out / "users.csv", users.to_csv(index=False))
        summary = users.groupby("category")[list(REC_METRICS)].mean()
        atomic_write_text(ctx.out / "metrics.csv", summary.to_csv())
        return {"categories": len(summary), "users": len(users)}

    return run


def ctx_accelerator(name: str) -> str:
    """``cpu`` / ``gpu`` / ``auto`` as Lightning understands them."""
    return {"cuda": "gpu"}.get(name, name)
