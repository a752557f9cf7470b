"""The MMPCBench pipeline as stages of one run folder ``<runs_dir>/<name>/``.

::

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
baselines (``imp-<method>``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from mmpc.apps.bench.complete import complete_parts, complete_stage, records_dir
from mmpc.apps.bench.config import BenchConfig, CompleterConfig, GRPORunConfig
from mmpc.apps.bench.cq import cqbench_stage
from mmpc.apps.bench.grpo import check_run, grpo_settings, grpo_stage, tuned_completer
from mmpc.apps.bench.rec import (
    completer_condition_stage,
    gt_features_stage,
    imputation_condition_stage,
    recbench_parts,
    recbench_stage,
)
from mmpc.apps.bench.stages import (
    Stage,
    StageContext,
    StageResult,
    StageUnavailableError,
    atomic_write_json,
)

TASKS = ("i2t", "t2i")


def run_dir(cfg: BenchConfig) -> Path:
    """``<runs_dir>/<name>``."""
    return Path(cfg.runs_dir) / cfg.name


def catalog_root(cfg: BenchConfig, stage_dir: Path) -> Path:
    """The catalogue folder: the configured path, or the synthetic one inside the stage."""
    return Path(cfg.catalog.path) if cfg.catalog.path else stage_dir / "catalogue"


def _catalog_stage(cfg: BenchConfig) -> Stage:
    def run(ctx: StageContext) -> dict[str, int]:
        from mmpc.completion.catalog import Catalog, synthesize

        if cfg.catalog.path:
            cat = Catalog.open(cfg.catalog.path)
            atomic_write_json(
                ctx.out / "source.json",
                {
                    "path": str(Path(cfg.catalog.path).resolve()),
                    "hashes": cat.manifest.get("hashes"),
                },
            )
        else:
            cat = synthesize(cfg.catalog.preset, cfg.catalog.seed, ctx.out / "catalogue")
        ctx.notes["synthetic"] = cat.is_synthetic
        return {
            "items": len(cat.items),
            "interactions": len(cat.interactions),
            "categories": len(cat.categories),
            "cqbench": len(cat.sample("cqbench")),
        }

    config = asdict(cfg.catalog)
    if cfg.catalog.path:
        from mmpc.apps.bench.stages import file_sha256

        manifest = Path(cfg.catalog.path) / "manifest.json"
        config["manifest_sha256"] = file_sha256(manifest) if manifest.exists() else None
    return Stage("catalog", run, config)


def conditions(cfg: BenchConfig, task: str) -> list[tuple[str, str]]:
    """``(condition name, kind)`` of ``task``: its completers, then the imputation baselines."""
    out = [(c.name, "completer") for c in cfg.completers if task in c.tasks]
    out += [(g.tuned_name, "completer") for g in cfg.grpo if g.task == task]
    return out + [(f"imp-{m}", "imputation") for m in cfg.features.imputation]


def grpo_stages(
    cfg: BenchConfig,
    cat_dir: Callable[[StageContext], Path],
    cq_stage: Callable[[str, str, str], Stage],
) -> list[Stage]:
    """Per GRPO run: ``grpo/<c>/<task>``, then ``complete/<c>+grpo/<task>`` and its CQBench."""
    stages = []
    for run in cfg.grpo:
        comp = cfg.completer(run.completer)
        check_run(run, comp)
        stages.append(
            Stage(
                run.stage_name,
                grpo_stage(run, cfg.accelerator, cat_dir),
                {"grpo": asdict(run), "settings": grpo_settings(run), "completer": asdict(comp)},
                ("catalog",),
            )
        )
        name = f"complete/{run.tuned_name}/{run.task}"

        def complete(ctx: StageContext, comp: CompleterConfig = comp, run: GRPORunConfig = run):
            adapter = ctx.inputs[run.stage_name] / "adapter"
            tuned = tuned_completer(comp, run.task, adapter)
            return complete_stage(tuned, run.task, cfg.catalog.seed, cfg.accelerator, cat_dir)(ctx)

        spec = asdict(tuned_completer(comp, run.task, None))
        stages.append(
            Stage(
                name,
                complete,
                {"completer": spec, "task": run.task},
                ("catalog", run.stage_name),
                complete_parts(comp, cat_dir),
            )
        )
        stages.append(cq_stage(name, run.tuned_name, run.task))
    return stages


def build_stages(cfg: BenchConfig) -> list[Stage]:
    """Every stage of the study, inputs before the stages that read them."""
    rdir = run_dir(cfg)

    def cat_dir(ctx: StageContext) -> Path:
        return catalog_root(cfg, ctx.inputs.get("catalog", rdir / "catalog"))

    def cq_stage(name: str, completer: str, task: str) -> Stage:
        def rec_dir(ctx: StageContext) -> Path:
            return records_dir(ctx.inputs[name], completer, task)

        return Stage(
            f"cqbench/{completer}/{task}",
            cqbench_stage(cfg.cqbench, completer, task, cat_dir, rec_dir),
            asdict(cfg.cqbench),
            ("catalog", name),
        )

    stages = [_catalog_stage(cfg)]
    for comp in cfg.completers:
        for task in comp.tasks:
            name = f"complete/{comp.name}/{task}"
            stages.append(
                Stage(
                    name,
                    complete_stage(comp, task, cfg.catalog.seed, cfg.accelerator, cat_dir),
                    {"completer": asdict(comp), "task": task},
                    ("catalog",),
                    complete_parts(comp, cat_dir),
                )
            )
            stages.append(cq_stage(name, comp.name, task))
    stages += grpo_stages(cfg, cat_dir, cq_stage)
    feat_cfg = asdict(cfg.features)
    stages.append(
        Stage(
            "features/gt",
            gt_features_stage(cfg.features, cat_dir),
            {
                k: feat_cfg[k]
                for k in (
                    "text_model",
                    "image_backend",
                    "image_model",
                    "image_weights",
                    "image_size",
                )
            },
            ("catalog",),
        )
    )
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
    rec_cfg = asdict(cfg.recbench)
    shared = {k: rec_cfg[k] for k in ("max_epochs", "stopping_step", "batch_size", "per_category")}
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


def run_bench(cfg: BenchConfig, show_progress: bool = True) -> tuple[Path, list[StageResult]]:
    """Run every stage (skipping finished ones) with the configured executor and write the
    report; returns (report, results)."""
    from mmpc.apps.bench.executor import make_executor
    from mmpc.apps.report.html import write_report
    from mmpc.apps.report.load import load_run

    rdir = run_dir(cfg)
    rdir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(rdir / "bench_config.json", asdict(cfg))
    executor = make_executor(cfg, rdir, show_progress)
    start = time.perf_counter()
    results = executor.run(build_stages(cfg))
    atomic_write_json(
        rdir / "status.json",
        {
            r.name: {
                "status": r.status,
                "reason": r.reason,
                "duration_s": round(r.duration_s, 3),
                "counts": r.counts,
            }
            for r in results
        },
    )
    t0 = time.perf_counter()
    inputs = load_run(rdir, results, cfg.report)
    files = write_report(inputs, rdir / "report")
    executor.log(
        f"[stage] report: done in {time.perf_counter() - t0:.1f} s "
        f"(tables={len(files.tables)}, figures={len(files.figures)})"
    )
    executor.log(f"[bench] finished in {time.perf_counter() - start:.1f} s; report: {files.html}")
    return files.html, results


__all__ = ["StageUnavailableError", "build_stages", "conditions", "run_bench", "run_dir"]
