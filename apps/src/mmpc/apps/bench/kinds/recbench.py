"""The RecBench stages: one recommender trained and tested per model, condition and seed.

``recbench/<model>/<task>/<condition>/seed<k>``; the GT run is ``recbench/<model>/gt/seed<k>`` and
serves both tasks. The condition's features are the GT features with the masked rows replaced
(:func:`mmpc.recsys.conditions.condition_features`). One model is trained per category
(``per_category``; else once on the whole catalogue, users assigned to their majority category),
with ``RecommenderModule`` (BPR, full ranking, early stopping on validation Recall@20, best
checkpoint tested). Besides the module's test metrics the stage stores the per-user Recall/NDCG@K
vectors of the test users (``users.csv``) for the report's paired bootstrap; their mean is checked
against the module's metrics.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmpc.apps.bench.config import RecBenchConfig, RecModelConfig
from mmpc.apps.bench.stages import StageContext
from mmpc.apps.console import quiet_libraries
from mmpc.apps.schema import KS, REC_METRICS
from mmpc.metrics.files import atomic_write_json, atomic_write_text


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
            atomic_write_json(results / f"{group}.json", payload, sort_keys=True, default=str)
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
