"""The GRPO stage: a LoRA adapter for one completer × task, trained on the catalogue's GRPO sample.

``grpo/<completer>/<task>`` runs :class:`~mmpc.grpo.module.GRPOModule` on
:class:`~mmpc.grpo.data.GRPODataModule` (whose set-up checks that the GRPO sample is disjoint from
CQBench) under a Lightning ``Trainer`` and leaves in its folder:

* ``adapter/``: the peft LoRA adapter (what the derived completer ``<completer>+grpo`` loads);
* ``metrics.csv``: one row per step (``step``, ``train/reward``, ``train/rewards/<name>/mean``,
  ...), merged from the CSV logs of every attempt (``logs/version_<k>/metrics.csv``);
* ``reward_curve.png``: the reward curves, raw and smoothed.

**Resuming.** ``checkpoints/last.ckpt`` is rewritten every ``checkpoint_every_n_steps`` steps by
Lightning's ``ModelCheckpoint`` through a checkpoint IO that writes aside and renames (a kill never
leaves half a file). The checkpoint holds the LoRA weights (the module keeps only those), the
AdamW state and the loop counters; a killed stage finds it in its partial folder and
``trainer.fit(ckpt_path=...)`` continues from the step after it. Nothing else carries hidden
state between steps: one Lightning epoch is one GRPO step, whose batch is a pure function of
``(data seed, step)`` (a seeded permutation of the GRPO sample per pass over it), and the global
RNGs are re-seeded from ``(data seed, step)`` before every step, so a resumed run samples exactly
what the uninterrupted run would have. The checkpoints are deleted once training has finished.
"""

from __future__ import annotations

import logging
import math
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mmpc.apps.bench.config import CompleterConfig, GRPORunConfig
from mmpc.apps.bench.stages import StageContext, StageUnavailableError
from mmpc.apps.config_files import find_config
from mmpc.metrics.files import atomic_write_text

CHECKPOINTS = "checkpoints"
LAST = "last.ckpt"
LOGS = "logs"
METRICS = "metrics.csv"
ADAPTER = "adapter"


def resolve_config_path(path: str) -> Path:
    """A GRPO YAML path: as given (absolute or from the working folder), else the shipped one."""
    found = find_config(path)
    if found is not None and found.is_file():
        return found
    raise ValueError(f"grpo: config {path!r} not found (from {Path.cwd()} or the shipped configs)")


def grpo_settings(run: GRPORunConfig) -> dict[str, dict[str, Any]]:
    """``{"model": ..., "data": ...}``: the YAML's sections updated by the run's overrides.

    ``task`` is the run's; the catalogue and the adapter folder are set when the stage runs.
    """
    base: dict[str, Any] = {}
    if run.config:
        path = resolve_config_path(run.config)
        base = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(base, dict):
            raise ValueError(f"{path}: not a mapping")
    model = {**dict(base.get("model") or {}), **dict(run.model)}
    data = {**dict(base.get("data") or {}), **dict(run.data)}
    for key in ("catalog", "synthesize_preset"):
        data.pop(key, None)
    model.pop("adapter_dir", None)
    model["task"] = data["task"] = run.task
    if "model" not in model:
        raise ValueError(f"grpo {run.stage_name}: no model.model (base model of the policy)")
    return {"model": model, "data": data}


def check_run(run: GRPORunConfig, completer: CompleterConfig) -> None:
    """One-line ValueError when ``run`` does not fit ``completer`` (task, answer prefill)."""
    if run.task not in completer.tasks:
        raise ValueError(
            f"grpo {run.stage_name}: completer {completer.name!r} has no task {run.task!r}"
        )
    if run.max_steps < 1 or run.checkpoint_every_n_steps < 1:
        raise ValueError(f"grpo {run.stage_name}: max_steps and checkpoint_every_n_steps >= 1")
    settings = grpo_settings(run)
    held_out = int(settings["data"].get("val_items") or 0)
    if run.validate_every_n_steps < 0 or (run.validate_every_n_steps > 0) != (held_out > 0):
        raise ValueError(
            f"grpo {run.stage_name}: validate_every_n_steps ({run.validate_every_n_steps}) and "
            f"data.val_items ({held_out}) go together: both > 0, or both 0"
        )
    trained = settings["model"].get("answer_prefix", "")
    used = completer.generator_spec(run.task)["init_args"].get("answer_prefix", "")
    if trained != used:
        raise ValueError(
            f"grpo {run.stage_name}: answer_prefix {trained!r} differs from the completer's "
            f"{used!r}; the adapter must be used with the prefill it was trained with"
        )


def tuned_completer(completer: CompleterConfig, task: str, adapter: Path | None) -> CompleterConfig:
    """``<name>+grpo`` for ``task``: the same spec, its generator with ``adapter: <adapter>``."""
    args = dict(completer.generator.get("init_args") or {})
    if adapter is not None:
        args["adapter"] = str(adapter)
    return CompleterConfig(
        name=f"{completer.name}+grpo",
        tasks=[task],
        generator={**completer.generator, "init_args": args},
        renderer=completer.renderer,
        task_init_args={task: dict(completer.task_init_args.get(task, {}))},
        batch_size=completer.batch_size,
        seconds_per_item=dict(completer.seconds_per_item),
        on_parse_failure=completer.on_parse_failure,
    )


def build_grpo(
    settings: dict[str, dict[str, Any]], catalog: Path, adapter: Path
) -> tuple[Any, Any]:
    """(``GRPOModule``, step-wise ``GRPODataModule``) from :func:`grpo_settings` (jsonargparse)."""
    from jsonargparse import ArgumentParser

    from mmpc.grpo.module import GRPOModule
    from mmpc.grpo.resume import StepwiseGRPODataModule

    dm_class = StepwiseGRPODataModule
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(GRPOModule, "model")
    parser.add_class_arguments(dm_class, "data")
    model = {**settings["model"], "adapter_dir": str(adapter)}
    data = {**settings["data"], "catalog": str(catalog), "synthesize_preset": None}
    init = parser.instantiate_classes(parser.parse_object({"model": model, "data": data}))
    return init.model, init.data


def _callbacks(seed: int, bar: Any, every: int, ckpt_dir: Path) -> list[Any]:
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from mmpc.grpo.resume import StepSeed

    class StepBar(L.Callback):
        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            bar.update(trainer.global_step - bar.n)

    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="step{step}",
        save_last=True,
        save_top_k=0,
        every_n_train_steps=every,
    )
    return [StepSeed(seed), StepBar(), checkpoint]


def merge_logs(out: Path) -> pd.DataFrame:
    """One row per step from every attempt's ``logs/version_<k>/metrics.csv``, later wins.

    A step logged by an attempt that was killed before its checkpoint was written runs again in
    the next attempt; the later row is kept, so the merged log has each step once.
    """
    versions = sorted(
        (out / LOGS).glob("version_*/metrics.csv"),
        key=lambda p: int(p.parent.name.removeprefix("version_")),
    )
    frames = [pd.read_csv(p).assign(attempt=i) for i, p in enumerate(versions)]
    if not frames:
        return pd.DataFrame(columns=["step", "attempt"])
    log = pd.concat(frames, ignore_index=True)
    val_cols = [c for c in log if c.startswith("val/")]
    val = log.dropna(subset=["val/reward"])[["step", *val_cols]] if val_cols else None
    log = log.drop(columns=val_cols)
    log = log.dropna(subset=["train/reward"]) if "train/reward" in log else log
    log = log.drop_duplicates(subset="step", keep="last")
    if val is not None:  # validation rows: the held-out reward after ``step`` updates
        if "val/updates" in val:
            val = val.assign(step=val["val/updates"].astype(int))
        val = val.drop_duplicates(subset="step", keep="last")
        log = log.merge(val, on="step", how="outer")
    return log.sort_values("step").reset_index(drop=True)


def grpo_stage(
    run: GRPORunConfig,
    accelerator: str,
    catalog_dir: Callable[[StageContext], Path],
    extra_callbacks: Sequence[Any] = (),
) -> Callable[[StageContext], dict[str, int]]:
    """A stage function training ``run``'s adapter into ``ctx.out`` (resumable, see module doc).

    ``extra_callbacks`` are added to the Trainer (tests use one to stop a run after some step).
    """
    settings = grpo_settings(run)

    def stage(ctx: StageContext) -> dict[str, int]:
        import lightning as L
        from lightning.pytorch.loggers import CSVLogger

        from mmpc.grpo.plotting import plot_reward_curve
        from mmpc.grpo.resume import AtomicCheckpointIO, checkpoint_step
        from mmpc.metrics.errors import MissingWeightsError

        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.ERROR)
        ckpt_dir = ctx.out / CHECKPOINTS
        last = ckpt_dir / LAST
        start = checkpoint_step(last) if last.is_file() else 0
        seed = int(settings["data"].get("seed", 0))
        bar = ctx.progress(
            total=run.max_steps, initial=start, desc=f"grpo {run.completer}/{run.task}", unit="step"
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module, dm = build_grpo(settings, catalog_dir(ctx), ctx.out / ADAPTER)
                trainer = L.Trainer(
                    accelerator=accelerator,
                    devices=1,
                    max_steps=run.max_steps,
                    max_epochs=-1,
                    log_every_n_steps=1,
                    logger=CSVLogger(ctx.out, name=LOGS, flush_logs_every_n_steps=1),
                    callbacks=[
                        *_callbacks(seed, bar, run.checkpoint_every_n_steps, ckpt_dir),
                        *extra_callbacks,
                    ],
                    plugins=[AtomicCheckpointIO()],
                    enable_progress_bar=False,
                    enable_model_summary=False,
                    num_sanity_val_steps=0,
                    # one Lightning epoch is one GRPO step
                    check_val_every_n_epoch=run.validate_every_n_steps or 1,
                    limit_val_batches=1.0 if run.validate_every_n_steps else 0,
                )
                if run.validate_every_n_steps and not last.is_file():
                    trainer.validate(module, datamodule=dm, verbose=False)  # the step-0 point
                trainer.fit(module, datamodule=dm, ckpt_path=str(last) if last.is_file() else None)
        except MissingWeightsError as err:
            raise StageUnavailableError(str(err).splitlines()[0]) from None
        finally:
            bar.close()
        if trainer.global_step < run.max_steps:
            raise RuntimeError(
                f"grpo {run.stage_name}: stopped at step {trainer.global_step} of {run.max_steps}"
            )
        log = merge_logs(ctx.out)
        atomic_write_text(ctx.out / METRICS, log.to_csv(index=False))
        plot_reward_curve(
            ctx.out / METRICS,
            ctx.out / "reward_curve.png",
            window=max(1, math.ceil(len(log) / 10)),
            title=f"GRPO reward: {run.completer} {run.task}",
        )
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        ctx.notes["resumed_from_step"] = start
        ctx.notes["settings"] = settings
        return {
            "steps": int(trainer.global_step),
            "logged_steps": int(log["train/reward"].notna().sum()) if len(log) else 0,
            "attempts": int(log["attempt"].max()) + 1 if len(log) else 0,
        }

    return stage
