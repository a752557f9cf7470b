"""The ``ray`` executor: each stage a Ray task as soon as its inputs are finished.

A stage with parts (completion shards, one RecBench training per category) becomes one task per
part plus a short finishing task. A task asks for the resources of its *kind* (the first segment
of its name: ``catalog``, ``complete``, ``grpo``, ``cqbench``, ``features``, ``recbench``;
``ray.resources`` in the config) and sets its torch thread count to its CPUs. A task whose worker
dies is re-run by Ray (``ray.max_retries``) and resumes from the files the stage left in its
partial folder. A worker writes its output to ``<run>/logs/<stage>.log``, never to this terminal
(:mod:`.ray_worker`); the driver shows one live line per kind (:mod:`.progress`) and each failure
in one line with its log.

A local Ray (``ray.address: null``) listens on the loopback only as far as Ray lets it: node
address 127.0.0.1, no dashboard, usage statistics off, token authentication on, and, with
``ray.isolate_network``, only in a network namespace whose one interface is the loopback
(:mod:`.netns`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from mmpc.apps.bench.config import BenchConfig, RayConfig, TaskResources
from mmpc.apps.bench.executors.base import LOGS, stage_kind, task_log
from mmpc.apps.bench.executors.netns import loopback_only
from mmpc.apps.bench.executors.progress import KindProgress
from mmpc.apps.bench.executors.ray_worker import run_stage_task, warm_worker
from mmpc.apps.bench.runner import StageRunner
from mmpc.apps.bench.stages import Stage, StageContext, StageResult


def ray_environment() -> None:
    """Set what Ray reads from the environment when it is *first imported*, so call this before
    anything imports Ray (lightning may): workers run this interpreter, never a ``uv run`` that
    would resolve packages over the network; no usage statistics. Workers of a local Ray inherit
    it from the driver."""
    os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def task_resources(cfg: BenchConfig, name: str) -> TaskResources:
    """The resources a task of stage ``name`` asks for (1 CPU for a kind not configured)."""
    return cfg.ray.resources.get(stage_kind(name), TaskResources())


def task_threads(res: TaskResources) -> int:
    """Torch threads of a task: its CPUs, at least one."""
    return max(1, int(res.num_cpus))


def expected_seconds(stage: Stage) -> float:
    """Which of the stages that become ready together goes first (largest first): a GRPO run
    (it heads the longest chain, run then re-completion: ``inf``), then completions by their
    per-item seconds, so long shards do not start last; 0 for the others."""
    if stage_kind(stage.name) == "grpo":
        return float("inf")
    completer = stage.config.get("completer")
    if not isinstance(completer, dict):
        return 0.0
    return float((completer.get("seconds_per_item") or {}).get(stage.config.get("task"), 0.0))


def warm_up_slots(cfg: BenchConfig, cluster_cpus: float) -> tuple[int, float]:
    """(number of warm-up tasks, CPUs each): as many as tasks of the kind asking for the fewest
    CPUs can run at once on ``cluster_cpus`` (at least one)."""
    cpus = min((r.num_cpus for r in cfg.ray.resources.values() if r.num_cpus > 0), default=1.0)
    return max(1, int(cluster_cpus // cpus)), cpus


def start_ray(rcfg: RayConfig) -> bool:
    """Start a local Ray (``address`` None) or join a cluster; True when a local one started.

    Workers run this interpreter (Ray's ``uv run`` runtime environment, which would upload the
    checkout, is turned off) and their output stays in files (``log_to_driver=False``).
    """
    ray_environment()
    import ray

    common: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if rcfg.address is not None:
        ray.init(address=rcfg.address, **common)
        return False
    if rcfg.isolate_network and not loopback_only():
        raise RuntimeError(
            "ray.address is null (start a local Ray) but this process sees network interfaces "
            "besides the loopback; run `mmpc bench` as root (it then moves into a private "
            "network namespace), run it under `unshare -n sh -c 'ip link set lo up && exec ...'`, "
            "or set ray.isolate_network=false where Ray may use the network"
        )
    ray.init(
        address="local",
        num_cpus=rcfg.num_cpus,
        num_gpus=rcfg.num_gpus,
        object_store_memory=rcfg.object_store_memory,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        **common,
    )
    return True


class _Task(NamedTuple):
    """A submitted Ray task: a part of ``stage`` (``part`` None: its finishing run)."""

    stage: Stage
    part: str | None
    submitted: float  # time.time(), compared with its log's modification time


class _Schedule:
    """One walk of the Ray executor over a stage graph.

    A waiting stage is *settled* by the runner (skipped, unavailable) or *submitted* once all its
    inputs have a result: its parts first when it has more than one, then, once every part
    succeeded, its finishing task. Ready stages go longest first (:func:`expected_seconds`).
    """

    def __init__(
        self, executor: RayExecutor, stages: Sequence[Stage], cfg_ref: Any, progress: KindProgress
    ) -> None:
        self.executor = executor
        self.runner = executor.runner
        self.stages = list(stages)
        self.cfg_ref = cfg_ref
        self.progress = progress
        self.waiting = list(stages)
        self.running: dict[Any, _Task] = {}
        self.parts_left: dict[str, int] = {}
        self.part_failures: dict[str, list[tuple[StageResult, Path]]] = {}
        self.started_at: dict[str, float] = {}

    def run(self) -> list[StageResult]:
        """Submit and collect until every stage has a result."""
        import ray

        while self.waiting or self.running:
            while self._submit_ready():
                pass
            if not self.running:
                if self.waiting:
                    names = {s.name for s in self.stages}
                    missing = sorted({d for s in self.waiting for d in s.inputs} - names)
                    raise RuntimeError(
                        f"stage {self.waiting[0].name}: inputs {missing} are not stages of this run"
                    )
                break
            done, _ = ray.wait(list(self.running), num_returns=1, timeout=0.5)
            for ref in done:
                self._collect(ref)
            self._mark_running()
        return [self.runner.results[s.name] for s in self.stages]

    def _submit(self, stage: Stage, part: str | None) -> None:
        self.running[self.executor.submit(stage.name, part, self.cfg_ref)] = _Task(
            stage, part, time.time()
        )

    def _submit_ready(self) -> bool:
        """Submit (or settle) every waiting stage whose inputs have finished."""
        ready_now = [s for s in self.waiting if all(d in self.runner.results for d in s.inputs)]
        ready_now.sort(key=expected_seconds, reverse=True)
        for stage in ready_now:
            self.waiting.remove(stage)
            ready = self.runner.prepare(stage)
            if isinstance(ready, StageResult):
                self._finish(ready, task_log(self.executor.run_dir, stage.name))
            else:
                self._start(stage, ready)
        return bool(ready_now)

    def _start(self, stage: Stage, ctx: StageContext) -> None:
        """Submit a prepared stage: one task per part when it has several, else its finishing."""
        res = task_resources(self.executor.cfg, stage.name)
        try:
            parts = list(stage.parts(ctx, max(1, res.shards))) if stage.parts else []
        except Exception as err:  # e.g. an input folder it cannot read
            first = (str(err).splitlines() or [""])[0]
            reason = f"failed: listing its parts: {type(err).__name__}: {first}"
            self._finish(StageResult(stage.name, "failed", 0.0, reason=reason), Path())
            return
        self.started_at[stage.name] = time.perf_counter()
        if len(parts) > 1:
            self.parts_left[stage.name] = len(parts)
            for part in parts:
                self._submit(stage, part)
        else:
            self._submit(stage, None)

    def _collect(self, ref: Any) -> None:
        """Take in one finished task: a stage's result, or one of its parts."""
        import ray

        stage, part, _ = self.running.pop(ref)
        log = task_log(self.executor.run_dir, stage.name, part)
        try:
            value = ray.get(ref)
        except ray.exceptions.RayError as err:
            first = (str(err).strip().splitlines() or [""])[0][:300]
            value = StageResult(
                stage.name,
                "failed",
                time.perf_counter() - self.started_at[stage.name],
                reason=f"failed: {type(err).__name__} "
                f"(after {self.executor.cfg.ray.max_retries} retries): {first}",
            )
        if part is None:
            if stage.parts and value.status == "ran":  # parts included
                value.duration_s = time.perf_counter() - self.started_at[stage.name]
            self._finish(value, log)
        else:
            self._part_done(stage, value, log)

    def _part_done(self, stage: Stage, failure: StageResult | None, log: Path) -> None:
        """Count a finished part; after the last, finish the stage (or report its failures)."""
        if failure is not None:
            self.part_failures.setdefault(stage.name, []).append((failure, log))
        self.parts_left[stage.name] -= 1
        if self.parts_left[stage.name]:
            return
        if stage.name not in self.part_failures:
            self._submit(stage, None)
            return
        (first, first_log), *more = self.part_failures[stage.name]
        first.duration_s = time.perf_counter() - self.started_at[stage.name]
        if more:
            first.reason += f" [and {len(more)} more part(s)]"
        self._finish(first, first_log)

    def _finish(self, result: StageResult, log: Path) -> None:
        """Record a stage's result and show it (a failure in one line with its log)."""
        if self.runner.results.get(result.name) is not result:  # prepare() records its own
            self.runner.record(result)
        if result.status in ("ran", "skipped"):
            self.progress.set(result.name, "done")
            return
        self.progress.set(result.name, "failed" if result.status == "failed" else "unavailable")
        detail = result.reason if result.status == "failed" else f"unavailable: {result.reason}"
        tail = f"; log {log}" if result.status == "failed" and log.is_file() else ""
        self.progress.write(f"[stage] {result.name}: {detail}{tail}")

    def _mark_running(self) -> None:
        """A submitted stage counts as running once one of its tasks wrote its log header."""
        for stage, part, submitted in self.running.values():
            log = task_log(self.executor.run_dir, stage.name, part)
            with contextlib.suppress(OSError):
                if log.stat().st_mtime >= submitted - 1.0:
                    self.progress.set(stage.name, "running")


class RayExecutor:
    """Each stage a Ray task once its inputs exist (see the module docstring)."""

    def __init__(self, cfg: BenchConfig, run_dir: Path, show_progress: bool = True) -> None:
        ray_environment()
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.show_progress = show_progress
        (self.run_dir / LOGS).mkdir(parents=True, exist_ok=True)
        self._driver_log = (self.run_dir / LOGS / "driver.log").open("a", encoding="utf-8")
        self.runner = StageRunner(self.run_dir, show_progress=False, log=self._to_file)
        self.startup_s = 0.0
        self.warm_up_s = 0.0
        self.warm_pids: list[int] = []
        self._remote: Any = None

    def _to_file(self, line: str) -> None:
        self._driver_log.write(line + "\n")
        self._driver_log.flush()

    def log(self, line: str) -> None:
        """A line for the user (and the driver log)."""
        self._to_file(line)
        print(line, flush=True)

    def run(self, stages: Sequence[Stage]) -> list[StageResult]:
        start = time.perf_counter()
        started = start_ray(self.cfg.ray)
        import ray

        self.startup_s = time.perf_counter() - start
        self._to_file(f"[ray] connected in {self.startup_s:.1f} s: {ray.cluster_resources()}")
        try:
            cfg_ref = ray.put(self.cfg)
            if self.cfg.ray.warm_up:
                self._warm_up(cfg_ref)
            progress = KindProgress([s.name for s in stages], self.show_progress)
            try:
                return _Schedule(self, stages, cfg_ref, progress).run()
            finally:
                progress.close()
        finally:
            if started:
                ray.shutdown()
            self._driver_log.flush()

    def _warm_up(self, cfg_ref: Any) -> None:
        """Start the workers and import the stage tasks' modules in each, in parallel (see
        ``RayConfig.warm_up``); a failure is logged and left to the stages to report."""
        import ray

        start = time.perf_counter()
        count, cpus = warm_up_slots(self.cfg, ray.cluster_resources().get("CPU", 1.0))
        task = ray.remote(warm_worker).options(num_cpus=cpus, name="warm-up", max_retries=0)
        try:
            self.warm_pids = ray.get([task.remote(cfg_ref) for _ in range(count)])
        except ray.exceptions.RayError as err:
            first = (str(err).strip().splitlines() or [""])[0][:300]
            self._to_file(f"[ray] warm-up failed, going on without it: {first}")
        self.warm_up_s = time.perf_counter() - start
        self._to_file(
            f"[ray] warm-up: {count} task(s) on {len(set(self.warm_pids))} worker(s) in "
            f"{self.warm_up_s:.1f} s, pids {sorted(set(self.warm_pids))}"
        )

    def submit(self, name: str, part: str | None, cfg_ref: Any) -> Any:
        """Submit one task of stage ``name`` (a part, or its finishing run for ``part`` None)
        with its kind's resources; returns its object reference."""
        import ray

        if self._remote is None:
            self._remote = ray.remote(run_stage_task)
        res = task_resources(self.cfg, name)
        remote = self._remote.options(
            num_cpus=res.num_cpus,
            num_gpus=res.num_gpus,
            max_retries=self.cfg.ray.max_retries,
            retry_exceptions=False,
            name=f"{name}:{part}" if part else name,
        )
        return remote.remote(cfg_ref, self.run_dir, name, part, task_threads(res))
