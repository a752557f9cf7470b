"""The stage graph: every stage of the MMPCBench study and its inputs, from a :class:`BenchConfig`.

One run folder ``<runs_dir>/<name>/`` holds::

    catalog                                   the catalogue (synthetic preset, or a given folder)
    complete/<completer>/<task>               completion records (+ renders) of the CQBench sample
    grpo/<completer>/<task>                   a LoRA adapter trained on the GRPO sample
    complete/<completer>+grpo/<task>          the CQBench sample completed again with the adapter
    cqbench/<completer>/<task>                per-item content-quality metrics
    features/gt                               every item's text + image features
    features/<task>/<condition>               replacement rows of the masked items
    recbench/<model>/gt/seed<k>               ground-truth run (serves both tasks)
    recbench/<model>/<task>/<condition>/seed<k>
    report                                    report.md, report.html, CSV tables, PNG figures

Conditions of a task are its completers (``<completer>+grpo`` included) and the imputation
baselines (``imp-<method>``). What each stage does is its kind's module
(:mod:`mmpc.apps.bench.kinds`); this module only names the stages, their configs (what enters
their fingerprints) and their inputs, in an order where inputs come first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from mmpc.apps.bench.config import (
    TASKS,
    BenchConfig,
    CompleterConfig,
    GRPORunConfig,
    run_dir,
)
from mmpc.apps.bench.kinds.catalog import catalog_root, catalog_settings, catalog_stage
from mmpc.apps.bench.kinds.complete import complete_parts, complete_stage, records_dir
from mmpc.apps.bench.kinds.cqbench import cqbench_stage
from mmpc.apps.bench.kinds.features import (
    completer_condition_stage,
    gt_features_stage,
    imputation_condition_stage,
)
from mmpc.apps.bench.kinds.grpo import check_run, grpo_settings, grpo_stage, tuned_completer
from mmpc.apps.bench.kinds.recbench import recbench_parts, recbench_stage
from mmpc.apps.bench.stages import Stage, StageContext

CatalogDir = Callable[[StageContext], Path]
_GT_FEATURE_KEYS = ("text_model", "image_backend", "image_model", "image_weights", "image_size")


def conditions(cfg: BenchConfig, task: str) -> list[tuple[str, str]]:
    """``(condition name, kind)`` of ``task``: its completers, then the imputation baselines."""
    out = [(c.name, "completer") for c in cfg.completers if task in c.tasks]
    out += [(g.tuned_name, "completer") for g in cfg.grpo if g.task == task]
    return out + [(f"imp-{m}", "imputation") for m in cfg.features.imputation]


def _cq_stage(cfg: BenchConfig, cat_dir: CatalogDir, name: str, completer: str, task: str) -> Stage:
    """``cqbench/<completer>/<task>``: scores the records of completion stage ``name``."""

    def rec_dir(ctx: StageContext) -> Path:
        return records_dir(ctx.inputs[name], completer, task)

    return Stage(
        f"cqbench/{completer}/{task}",
        cqbench_stage(cfg.cqbench, completer, task, cat_dir, rec_dir),
        asdict(cfg.cqbench),
        ("catalog", name),
    )


def completion_stages(cfg: BenchConfig, cat_dir: CatalogDir) -> list[Stage]:
    """Per completer and task: ``complete/<c>/<task>``, then its CQBench."""
    stages = []
    for comp in cfg.completers:
        for task in comp.tasks:
            name = f"complete/{comp.name}/{task}"
            stages.append(
                Stage(
                    name,
                    complete_stage(comp, task, cfg.catalog.seed, cfg.accelerator, cat_dir),
                    {"completer": comp.settings(), "task": task},
                    ("catalog",),
                    complete_parts(comp, cat_dir),
                )
            )
            stages.append(_cq_stage(cfg, cat_dir, name, comp.name, task))
    return stages


def grpo_stages(cfg: BenchConfig, cat_dir: CatalogDir) -> list[Stage]:
    """Per GRPO run: ``grpo/<c>/<task>``, then ``complete/<c>+grpo/<task>`` and its CQBench."""
    stages = []
    for run in cfg.grpo:
        comp = cfg.completer(run.completer)
        check_run(run, comp)
        stages.append(
            Stage(
                run.stage_name,
                grpo_stage(run, cfg.accelerator, cat_dir),
                {"grpo": asdict(run), "settings": grpo_settings(run), "completer": comp.settings()},
                ("catalog",),
            )
        )
        name = f"complete/{run.tuned_name}/{run.task}"

        def complete(ctx: StageContext, comp: CompleterConfig = comp, run: GRPORunConfig = run):
            adapter = ctx.inputs[run.stage_name] / "adapter"
            tuned = tuned_completer(comp, run.task, adapter)
            return complete_stage(tuned, run.task, cfg.catalog.seed, cfg.accelerator, cat_dir)(ctx)

        spec = tuned_completer(comp, run.task, None).settings()
        stages.append(
            Stage(
                name,
                complete,
                {"completer": spec, "task": run.task},
                ("catalog", run.stage_name),
                complete_parts(comp, cat_dir),
            )
        )
        stages.append(_cq_stage(cfg, cat_dir, name, run.tuned_name, run.task))
    return stages


def feature_stages(cfg: BenchConfig, cat_dir: CatalogDir) -> list[Stage]:
    """``features/gt``, then ``features/<task>/<condition>`` per task and condition."""
    feat_cfg = asdict(cfg.features)
    stages = [
        Stage(
            "features/gt",
            gt_features_stage(cfg.features, cat_dir),
            {k: feat_cfg[k] for k in _GT_FEATURE_KEYS},
            ("catalog",),
        )
    ]
    for task in TASKS:
        for cond, kind in conditions(cfg, task):
            if kind == "completer":
                cname = f"complete/{cond}/{task}"

                def rec_dir(
                    ctx: StageContext, n: str = cname, c: str = cond, t: str = task
                ) -> Path:
                    return records_dir(ctx.inputs[n], c, t)

                fn = completer_condition_stage(cfg.features, task, cat_dir, rec_dir)
                inputs: tuple[str, ...] = ("catalog", "features/gt", cname)
            else:
                fn = imputation_condition_stage(
                    cfg.features, task, cond.removeprefix("imp-"), cat_dir
                )
                inputs = ("catalog", "features/gt")
            stages.append(
                Stage(f"features/{task}/{cond}", fn, {"features": feat_cfg, "task": task}, inputs)
            )
    return stages


def recbench_stages(cfg: BenchConfig, cat_dir: CatalogDir) -> list[Stage]:
    """Per model and seed: the GT training, then one per task and condition."""
    rec_cfg = asdict(cfg.recbench)
    shared = {k: rec_cfg[k] for k in ("max_epochs", "stopping_step", "batch_size", "per_category")}
    stages = []
    for spec in cfg.recbench.models:
        for seed in cfg.recbench.seeds:
            base = {"model": asdict(spec), "seed": seed, **shared}
            stages.append(
                Stage(
                    f"recbench/{spec.name}/gt/seed{seed}",
                    recbench_stage(spec, cfg.recbench, seed, cfg.accelerator, cat_dir, None),
                    base,
                    ("catalog", "features/gt"),
                    recbench_parts(cfg.recbench, cat_dir),
                )
            )
            for task in TASKS:
                for cond, _ in conditions(cfg, task):
                    fstage = f"features/{task}/{cond}"
                    stages.append(
                        Stage(
                            f"recbench/{spec.name}/{task}/{cond}/seed{seed}",
                            recbench_stage(
                                spec, cfg.recbench, seed, cfg.accelerator, cat_dir, fstage
                            ),
                            base,
                            ("catalog", "features/gt", fstage),
                            recbench_parts(cfg.recbench, cat_dir),
                        )
                    )
    return stages


def build_stages(cfg: BenchConfig) -> list[Stage]:
    """Every stage of the study, inputs before the stages that read them."""
    rdir = run_dir(cfg)

    def cat_dir(ctx: StageContext) -> Path:
        return catalog_root(cfg.catalog, ctx.inputs.get("catalog", rdir / "catalog"))

    catalog = Stage("catalog", catalog_stage(cfg.catalog), catalog_settings(cfg.catalog))
    return [
        catalog,
        *completion_stages(cfg, cat_dir),
        *grpo_stages(cfg, cat_dir),
        *feature_stages(cfg, cat_dir),
        *recbench_stages(cfg, cat_dir),
    ]
