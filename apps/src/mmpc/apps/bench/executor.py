"""Who runs the bench's stages: :class:`LocalExecutor` or :class:`RayExecutor`.

Both take the stage graph of :func:`mmpc.apps.bench.pipeline.build_stages` as it is and run
every stage through :class:`~mmpc.apps.bench.stages.StageRunner`, so skipping, resuming and the
manifests are the same and both write the same run folder.

* ``local`` (the default) runs the stages one after another in this process.
* ``ray`` submits each stage as a Ray task as soon as its inputs are finished. A stage with parts
  (completion shards, one RecBench training per category) becomes one task per part plus a short
  finishing task. A task asks for the resources of its *kind* (the first segment of its name:
  ``catalog``, ``complete``, ``grpo``, ``cqbench``, ``features``, ``recbench``;
  ``ray.resources`` in the config) and sets its torch thread count to its CPUs. A task whose
  worker dies is re-run by Ray (``ray.max_retries``) and resumes from the files the stage left in
  its partial folder. A worker writes its output to ``<run>/logs/<stage>.log``, never to this
  terminal; the driver shows one live line per kind and each failure in one line with its log.

A local Ray (``ray.address: null``) listens on the loopback only as far as Ray lets it: node
address 127.0.0.1, no dashboard, usage statistics off, token authentication on. Ray still binds
some ports on every interface and probes an outside address at start-up, so with
``ray.isolate_network`` (the default) a local Ray only starts where the loopback is the only
network interface: ``mmpc bench`` moves itself into a private network namespace when it can.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol, TextIO

from tqdm.auto import tqdm

from mmpc.apps.bench.config import BenchConfig, RayConfig, TaskResources
from mmpc.apps.bench.stages import (
    Stage,
    StageResult,
    StageRunner,
    StageUnavailableError,
    atomic_write_text,
    config_hash,
)

LOGS = "logs"
_NETNS_ENV = "MMPC_PRIVATE_NETNS"
# Ray reads this when it is first imported (lightning may import it before start_ray runs):
# workers run this interpreter, never a `uv run` that would resolve packages over the network.
os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"


class Executor(Protocol):
    """Runs a stage graph (inputs listed before the stages that read them)."""

    log: Callable[[str], None]

    def run(self, stages: Sequence[Stage]) -> list[StageResult]: ...


def stage_kind(name: str) -> str:
    """A stage's kind: the first segment of its name (``recbench/VBPR/gt/seed0`` → recbench)."""
    return name.split("/", 1)[0]


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


def task_log(run_dir: Path, name: str, part: str | None = None) -> Path:
    """``<run>/logs/<stage with / as __>[__<part>].log``: where a task's output goes."""
    key = name.replace("/", "__") + (f"__{part}" if part else "")
    return run_dir / LOGS / f"{key}.log"


class LocalExecutor:
    """Today's loop: every stage in order, in this process."""

    def __init__(self, run_dir: Path, show_progress: bool = True) -> None:
        self.runner = StageRunner(run_dir, show_progress=show_progress)
        self.log = self.runner.log

    def run(self, stages: Sequence[Stage]) -> list[StageResult]:
        return self.runner.run_all(stages)


def loopback_only() -> bool:
    """True when this process's network namespace has no interface but the loopback."""
    return all(name == "lo" for _, name in socket.if_nameindex())


def isolated_command(argv: Sequence[str]) -> list[str]:
    """``argv`` run in a new network namespace whose only interface, the loopback, is up."""
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def reexec_isolated_if_needed(cfg: BenchConfig) -> None:
    """Re-run this command in a private network namespace before a local Ray would start.

    Does nothing unless ``executor: ray`` starts a local Ray with ``isolate_network`` and other
    interfaces exist; needs root and ``unshare``/``ip`` (else :func:`start_ray` refuses with one
    line). Only when this process was started as ``mmpc bench`` (``bench`` is one of its
    arguments), since it replaces the process.
    """
    rcfg = cfg.ray
    if cfg.executor != "ray" or rcfg.address is not None or not rcfg.isolate_network:
        return
    if "bench" not in sys.orig_argv[1:]:
        return
    if loopback_only() or os.environ.get(_NETNS_ENV) or os.geteuid() != 0:
        return
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ[_NETNS_ENV] = "1"
    os.execvp("unshare", isolated_command([sys.executable, *sys.orig_argv[1:]]))


def start_ray(rcfg: RayConfig) -> bool:
    """Start a local Ray (``address`` None) or join a cluster; True when a local one started.

    Workers run this interpreter (Ray's ``uv run`` runtime environment, which would upload the
    checkout, is turned off) and their output stays in files (``log_to_driver=False``).
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # the uv-run switch: at module import
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


_STAGES: dict[str, dict[str, Stage]] = {}


def _stages_of(cfg: BenchConfig) -> dict[str, Stage]:
    """The stage graph of ``cfg`` by name, built once per worker process and config."""
    key = config_hash(asdict(cfg))
    if key not in _STAGES:
        from mmpc.apps.bench.pipeline import build_stages

        _STAGES.clear()
        _STAGES[key] = {s.name: s for s in build_stages(cfg)}
    return _STAGES[key]


def warm_worker(cfg: BenchConfig) -> int:
    """The body of a warm-up task: import what a stage task imports (torch, Lightning, the
    stage graph of ``cfg``) so this worker's first stage does not pay it; returns its pid."""
    import lightning  # noqa: F401  (the import is the point)
    import torch  # noqa: F401

    _stages_of(cfg)
    return os.getpid()


def warm_up_slots(cfg: BenchConfig, cluster_cpus: float) -> tuple[int, float]:
    """(number of warm-up tasks, CPUs each): as many as tasks of the kind asking for the fewest
    CPUs can run at once on ``cluster_cpus`` (at least one)."""
    cpus = min((r.num_cpus for r in cfg.ray.resources.values() if r.num_cpus > 0), default=1.0)
    return max(1, int(cluster_cpus // cpus)), cpus


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[TextIO]:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with path.open("a", encoding="utf-8") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield fh
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def run_stage_task(
    cfg: BenchConfig, run_dir: Path, name: str, part: str | None, threads: int
) -> StageResult | None:
    """The body of one Ray task: a part of a prepared stage, or the stage's finishing run.

    Returns the stage's result (finishing run) or, for a part, None when it succeeded and a
    ``failed`` / ``unavailable`` result when it did not (the traceback in
    ``<partial>/error.<part>.txt``).
    """
    import torch

    torch.set_num_threads(threads)
    with _output_to(task_log(run_dir, name, part)):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"[task] {name}{f' part {part}' if part else ''}: pid {os.getpid()} on "
            f"{socket.gethostname()} at {stamp}, {threads} torch thread(s)",
            flush=True,
        )
        stage = _stages_of(cfg)[name]
        runner = StageRunner(run_dir, show_progress=False, log=lambda line: print(line, flush=True))
        if part is None:
            return runner.execute(stage)
        try:
            runner.run_part(stage, part)
        except StageUnavailableError as err:
            return StageResult(name, "unavailable", 0.0, reason=str(err))
        except Exception as err:  # reported by the driver; the other parts still run
            text = traceback.format_exc()
            print(text, flush=True)
            where = runner.partial(name) / f"error.{part}.txt"
            atomic_write_text(where, text)
            first = (str(err).splitlines() or [""])[0]
            return StageResult(
                name,
                "failed",
                0.0,
                reason=f"failed: part {part}: {type(err).__name__}: {first} (see {where})",
            )
        print(f"[task] {name} part {part}: done", flush=True)
        return None


STATES = ("done", "running", "queued", "failed")


class KindProgress:
    """One live line per stage kind: done / running / queued / failed (+ unavailable)."""

    def __init__(self, names: Sequence[str], enabled: bool) -> None:
        self.enabled = enabled
        self.state = dict.fromkeys(names, "queued")
        self.kinds = list(dict.fromkeys(stage_kind(n) for n in names))
        totals = Counter(stage_kind(n) for n in names)
        width = max((len(k) for k in self.kinds), default=0)
        self.bars = {
            kind: tqdm(
                total=totals[kind],
                desc=kind.ljust(width),
                position=i,
                leave=True,
                disable=not enabled,
                dynamic_ncols=True,
                file=sys.stderr,
                bar_format="{desc} {bar:16} {n_fmt}/{total_fmt} {postfix}",
            )
            for i, kind in enumerate(self.kinds)
        }
        for kind in self.kinds:
            self._refresh(kind)

    def counts(self, kind: str) -> Counter[str]:
        return Counter(s for n, s in self.state.items() if stage_kind(n) == kind)

    def line(self, kind: str) -> str:
        counts = self.counts(kind)
        shown = [f"{counts[s]} {s}" for s in STATES]
        if counts["unavailable"]:
            shown.append(f"{counts['unavailable']} unavailable")
        return ", ".join(shown)

    def _refresh(self, kind: str) -> None:
        bar = self.bars[kind]
        counts = self.counts(kind)
        bar.n = counts["done"] + counts["failed"] + counts["unavailable"]
        bar.set_postfix_str(self.line(kind), refresh=True)

    def set(self, name: str, state: str) -> None:
        if self.state[name] != state:
            self.state[name] = state
            self._refresh(stage_kind(name))

    def write(self, line: str) -> None:
        if self.enabled:
            tqdm.write(line, file=sys.stderr)
        else:
            print(line, flush=True)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        if not self.enabled:
            for kind in self.kinds:
                print(f"[ray] {kind}: {self.line(kind)}", flush=True)


class RayExecutor:
    """Each stage a Ray task once its inputs exist (see the module docstring)."""

    def __init__(self, cfg: BenchConfig, run_dir: Path, show_progress: bool = True) -> None:
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
        import ray

        start = time.perf_counter()
        started = start_ray(self.cfg.ray)
        self.startup_s = time.perf_counter() - start
        self._to_file(f"[ray] connected in {self.startup_s:.1f} s: {ray.cluster_resources()}")
        try:
            cfg_ref = ray.put(self.cfg)
            if self.cfg.ray.warm_up:
                self._warm_up(cfg_ref)
            return self._schedule(stages, cfg_ref)
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

    def _submit(self, name: str, part: str | None, cfg_ref: Any) -> Any:
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

    def _schedule(self, stages: Sequence[Stage], cfg_ref: Any) -> list[StageResult]:
        import ray

        progress = KindProgress([s.name for s in stages], self.show_progress)
        waiting = list(stages)
        running: dict[Any, tuple[Stage, str | None, float]] = {}
        parts_left: dict[str, int] = {}
        part_failures: dict[str, list[tuple[StageResult, Path]]] = {}
        started_at: dict[str, float] = {}

        def finish(result: StageResult, log: Path) -> None:
            if self.runner.results.get(result.name) is not result:  # prepare() records its own
                self.runner.record(result)
            if result.status in ("ran", "skipped"):
                progress.set(result.name, "done")
                return
            progress.set(result.name, "failed" if result.status == "failed" else "unavailable")
            detail = result.reason if result.status == "failed" else f"unavailable: {result.reason}"
            tail = f"; log {log}" if result.status == "failed" and log.is_file() else ""
            progress.write(f"[stage] {result.name}: {detail}{tail}")

        def submit_ready() -> bool:
            """Submit (or settle) every waiting stage whose inputs have finished."""
            ready_now = [s for s in waiting if all(d in self.runner.results for d in s.inputs)]
            ready_now.sort(key=expected_seconds, reverse=True)
            for stage in ready_now:
                waiting.remove(stage)
                ready = self.runner.prepare(stage)
                if isinstance(ready, StageResult):
                    finish(ready, task_log(self.run_dir, stage.name))
                    continue
                res = task_resources(self.cfg, stage.name)
                try:
                    parts = list(stage.parts(ready, max(1, res.shards))) if stage.parts else []
                except Exception as err:  # e.g. an input folder it cannot read
                    first = (str(err).splitlines() or [""])[0]
                    reason = f"failed: listing its parts: {type(err).__name__}: {first}"
                    finish(StageResult(stage.name, "failed", 0.0, reason=reason), Path())
                    continue
                started_at[stage.name] = time.perf_counter()
                if len(parts) > 1:
                    parts_left[stage.name] = len(parts)
                    for part in parts:
                        running[self._submit(stage.name, part, cfg_ref)] = (
                            stage,
                            part,
                            time.time(),
                        )
                else:
                    running[self._submit(stage.name, None, cfg_ref)] = (stage, None, time.time())
            return bool(ready_now)

        try:
            while waiting or running:
                while submit_ready():
                    pass
                if not running:
                    if waiting:
                        names = {s.name for s in stages}
                        missing = sorted({d for s in waiting for d in s.inputs} - names)
                        raise RuntimeError(
                            f"stage {waiting[0].name}: inputs {missing} are not stages of this run"
                        )
                    break
                done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                for ref in done:
                    stage, part, _ = running.pop(ref)
                    log = task_log(self.run_dir, stage.name, part)
                    try:
                        value = ray.get(ref)
                    except ray.exceptions.RayError as err:
                        first = (str(err).strip().splitlines() or [""])[0][:300]
                        value = StageResult(
                            stage.name,
                            "failed",
                            time.perf_counter() - started_at[stage.name],
                            reason=f"failed: {type(err).__name__} "
                            f"(after {self.cfg.ray.max_retries} retries): {first}",
                        )
                    if part is None:
                        if stage.parts and value.status == "ran":  # parts included
                            value.duration_s = time.perf_counter() - started_at[stage.name]
                        finish(value, log)
                        continue
                    if value is not None:
                        part_failures.setdefault(stage.name, []).append((value, log))
                    parts_left[stage.name] -= 1
                    if parts_left[stage.name]:
                        continue
                    if stage.name in part_failures:
                        (failure, first_log), *more = part_failures[stage.name]
                        failure.duration_s = time.perf_counter() - started_at[stage.name]
                        if more:
                            failure.reason += f" [and {len(more)} more part(s)]"
                        finish(failure, first_log)
                    else:
                        running[self._submit(stage.name, None, cfg_ref)] = (
                            stage,
                            None,
                            time.time(),
                        )
                self._mark_running(running, progress)
        finally:
            progress.close()
        return [self.runner.results[s.name] for s in stages]

    def _mark_running(
        self, running: dict[Any, tuple[Stage, str | None, float]], progress: KindProgress
    ) -> None:
        """A submitted stage counts as running once one of its tasks wrote its log header."""
        for stage, part, submitted in running.values():
            log = task_log(self.run_dir, stage.name, part)
            with contextlib.suppress(OSError):
                if log.stat().st_mtime >= submitted - 1.0:
                    progress.set(stage.name, "running")


def make_executor(cfg: BenchConfig, run_dir: Path, show_progress: bool = True) -> Executor:
    """The executor ``cfg.executor`` names."""
    if cfg.executor == "local":
        return LocalExecutor(run_dir, show_progress)
    if cfg.executor == "ray":
        return RayExecutor(cfg, run_dir, show_progress)
    raise ValueError(f"executor {cfg.executor!r}: expected 'local' or 'ray'")
