"""The completion stage: one completer × task over the catalogue's CQBench sample.

It runs ``mmpc.completion``'s ``CompletionModule`` under ``Trainer.predict`` with the
``CompletionDataModule`` and the ``CompletionWriter``, which appends records (and T→I renders)
crash-safely under ``<stage>/completion/<completer>/<task>/`` and skips items already done, so a
killed stage resumes where it stopped. Backends are built from ``{"class_path", "init_args"}``
specs; a backend whose weights are missing makes the stage unavailable with its one-line reason.

Parts (``shard<k>-of-<n>``, for an executor that spreads a stage over workers): shard ``k`` takes
the batches ``b`` with ``b % n == k`` and appends to its own part file without merging; the
finishing run merges every part, each item once, and completes whatever a shard left undone.

Served completers (``OpenAIChatBackend``): the shards of one completer × task share its endpoint,
so each shard keeps ``ceil(max_concurrency / n)`` requests in flight (at least 1) and the total
stays bounded by the configured ``max_concurrency`` (up to rounding). A completer whose endpoint
is ``launch:``ed is not split: the server belongs to the one process that started it. Whatever
happens, the stage ends with the generator's ``teardown()`` (the client closed, a launched server
stopped), errors included.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmpc.apps.bench.config import TASKS, BenchConfig, CompleterConfig
from mmpc.apps.bench.stages import StageContext, StageUnavailableError
from mmpc.apps.console import quiet_libraries


def build_backend(spec: dict[str, Any], what: str) -> Any:
    """Instantiate ``spec["class_path"](**spec["init_args"])`` (short names resolve in
    ``mmpc.completion.backends``)."""
    path = spec.get("class_path")
    if not path:
        raise ValueError(f"{what}: missing class_path")
    module_name, _, name = str(path).rpartition(".")
    module = importlib.import_module(module_name or "mmpc.completion.backends")
    cls = getattr(module, name, None)
    if cls is None:
        raise ValueError(f"{what}: {path!r} not found")
    return cls(**dict(spec.get("init_args") or {}))


def records_dir(stage_dir: Path, completer: str, task: str) -> Path:
    """Where the writer puts ``completer``'s ``task`` records inside a complete stage folder."""
    return stage_dir / "completion" / completer / task


_SHARD = re.compile(r"^shard(\d+)-of-(\d+)$")


def _launches(spec: CompleterConfig) -> bool:
    """Whether the completer's generator starts its own server (``launch:``) for some task."""
    return spec.served and any(spec.generator_spec(t)["init_args"].get("launch") for t in TASKS)


def shard_concurrency(max_concurrency: int, shards: int) -> int:
    """Requests in flight per shard when ``shards`` share one endpoint: ``ceil(total / n)``,
    at least 1."""
    return max(1, math.ceil(max_concurrency / max(1, shards)))


def build_generator(spec: CompleterConfig, task: str, shards: int = 1) -> Any:
    """``spec``'s generator for ``task``; a served one, as one of ``shards`` shards sharing its
    endpoint, keeps :func:`shard_concurrency` requests in flight.

    A bench YAML's ``init_args`` reach the backend as plain mappings (the bench does not type
    them), so a served generator's ``retry:`` and ``launch:`` become the dataclasses it takes.
    """
    gen_spec = spec.generator_spec(task)
    if spec.served:
        from mmpc.completion.backends.served_client import RetryPolicy
        from mmpc.completion.backends.served_launch import Launch

        args = dict(gen_spec["init_args"])
        if isinstance(args.get("retry"), dict):
            args["retry"] = RetryPolicy(**args["retry"])
        if isinstance(args.get("launch"), dict):
            args["launch"] = Launch(**args["launch"])
        gen_spec = {**gen_spec, "init_args": args}
    generator = build_backend(gen_spec, f"completer {spec.name}: generator")
    if spec.served and shards > 1:
        generator.max_concurrency = shard_concurrency(generator.max_concurrency, shards)
    return generator


def complete_parts(
    spec: CompleterConfig, catalog_dir: Callable[[StageContext], Path]
) -> Callable[[StageContext, int], list[str]]:
    """The stage's shards: ``min(shards, batches)`` of them (none when that is one, or when the
    completer launches its own server)."""

    def parts(ctx: StageContext, shards: int) -> list[str]:
        from mmpc.completion.catalog import Catalog

        if _launches(spec):
            return []
        items = len(Catalog.open(catalog_dir(ctx), verify_hashes=False).sample("cqbench"))
        n = max(1, min(shards, math.ceil(items / spec.batch_size)))
        return [f"shard{k}-of-{n}" for k in range(n)] if n > 1 else []

    return parts


def check_served(cfg: BenchConfig) -> None:
    """Before a run writes anything: every served completer's endpoint that is not ``launch:``ed
    is reached once with the backend's own setup (the key variable is set, the endpoint answers,
    it serves the model), so a bad setting stops ``mmpc bench`` with one line and its exit code
    instead of failing its stages one by one.

    Raises:
        InputError: a key variable is unset or refused, or the endpoint does not serve the model.
        EndpointError: an endpoint cannot be reached (exit code 3, the URL named).
    """
    checked: set[tuple[Any, ...]] = set()
    for comp in cfg.completers:
        if not comp.served:
            continue
        for task in comp.tasks:
            spec = comp.generator_spec(task)
            args = spec["init_args"]
            key = (args.get("base_url"), args.get("model"), args.get("api_key_env"))
            if args.get("launch") or key in checked:
                continue
            checked.add(key)
            import torch

            from mmpc.completion.backends.base import BackendContext

            generator = build_generator(comp, task)
            where = f"completers[{comp.name}].generator"
            try:
                generator.setup(BackendContext(device=torch.device("cpu"), config_key=where))
            finally:
                generator.teardown()


def complete_stage(
    spec: CompleterConfig,
    task: str,
    seed: int,
    accelerator: str,
    catalog_dir: Callable[[StageContext], Path],
) -> Callable[[StageContext], dict[str, int]]:
    """A stage function completing ``task`` with ``spec`` (resumable through the writer)."""

    def run(ctx: StageContext) -> dict[str, int]:
        shard = _SHARD.match(ctx.part) if ctx.part else None
        if ctx.part and shard is None:
            raise ValueError(f"{ctx.name}: unknown part {ctx.part!r} (expected shard<k>-of-<n>)")
        generator = build_generator(spec, task, int(shard.group(2)) if shard else 1)
        try:
            return _complete(ctx, generator, shard)
        finally:
            generator.teardown()  # a served client closed, a launched server stopped

    def _complete(ctx: StageContext, generator: Any, shard: re.Match[str] | None) -> dict[str, int]:
        import lightning as L

        from mmpc.completion.data import CompletionDataModule
        from mmpc.completion.module import CompletionModule
        from mmpc.completion.writer import CompletionWriter, read_records
        from mmpc.metrics.errors import MissingWeightsError

        renderer = (
            build_backend(spec.renderer, f"completer {spec.name}: renderer")
            if task == "t2i" and spec.renderer
            else None
        )
        module = CompletionModule(
            spec.name,
            generator,
            task=task,
            renderer=renderer,
            seed=seed,
            on_parse_failure=spec.on_parse_failure if task == "t2i" else "skip",
        )
        dm = CompletionDataModule(
            str(catalog_dir(ctx)),
            task=task,
            sample="cqbench",
            batch_size=spec.batch_size,
            shard=int(shard.group(1)) if shard else 0,
            num_shards=int(shard.group(2)) if shard else 1,
        )
        dm.setup("predict")
        out = records_dir(ctx.out, spec.name, task)
        done = len(read_records(out)) if out.exists() else 0
        bar = ctx.progress(
            total=len(dm.sample_ids), initial=done, desc=f"complete {spec.name}/{task}"
        )

        class _Bar(L.Callback):
            def on_predict_batch_end(
                self,
                trainer: Any,
                pl_module: Any,
                outputs: Any,
                batch: Any,
                batch_idx: int,
                dataloader_idx: int = 0,
            ) -> None:
                bar.update(len(batch["item_id"]))

        try:
            with quiet_libraries():
                trainer = L.Trainer(
                    accelerator=accelerator,
                    devices=1,
                    logger=False,
                    enable_progress_bar=False,
                    enable_model_summary=False,
                    callbacks=[CompletionWriter(str(ctx.out), part=ctx.part), _Bar()],
                )
                trainer.predict(module, datamodule=dm, return_predictions=False)
        except MissingWeightsError as err:
            raise StageUnavailableError(str(err).splitlines()[0]) from None
        finally:
            bar.close()
        if ctx.part:
            return {}
        summary = (
            json.loads((out / "summary.json").read_text())
            if (out / "summary.json").exists()
            else {}
        )
        records = read_records(out)
        failed = sum(1 for r in records.values() if r.get("output") is None or r.get("error"))
        ctx.notes["writer_summary"] = summary
        return {"items": len(records), "failed": failed}

    return run
