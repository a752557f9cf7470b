"""Simulate the paper study on a 4-GPU, 64-CPU Ray cluster and print its wall time.

Usage (as root; the script moves itself into a private network namespace before Ray starts)::

    uv run python benchmarks/apps/bench_ray_cluster_sim.py [--gpus 4] [--cpus 64]
        [--config apps/configs/bench/paper.yaml] [--target-s 60]

A local Ray is started with *logical* resources (``ray.init(num_gpus=4, num_cpus=64)``; no GPU is
needed) and given the paper plan's work as sleeps, with the resources of the config's
``ray.resources``: every completion shard (items × ``seconds_per_item`` / shards, one per
completer × task × shard) and every RecBench training (``expected_epochs`` ×
``seconds_per_epoch``, one per model × seed × condition × category), and every GRPO run
(``max_steps`` × ``seconds_per_step``) followed by its ``+grpo`` re-completion's shards. A
completer's trainings wait for its completion, as in the bench's stage graph; the ground-truth
and imputation trainings do not. All durations are divided by one factor so the run lasts
about ``--target-s`` seconds; the measured wall time is multiplied back. Printed side by side:
the one-device sequential plan (``--dry-run``'s accelerator-hours), the dry-run's wall-time
estimate for this many GPUs, and the simulated wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

from mmpc.apps.bench.config import TaskResources
from mmpc.apps.bench.executors.netns import isolated_command, loopback_only
from mmpc.apps.bench.executors.ray import ray_environment
from mmpc.apps.bench.plan import make_plan, wall_hours
from mmpc.apps.cli.bench import parse_config


def _sleep(seconds: float, *deps: object) -> None:
    time.sleep(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="apps/configs/bench/paper.yaml")
    parser.add_argument("--gpus", type=int, default=4)
    parser.add_argument("--cpus", type=int, default=64)
    parser.add_argument("--target-s", type=float, default=60.0)
    args = parser.parse_args()
    if not loopback_only():
        if os.geteuid() != 0 or not shutil.which("unshare"):
            raise SystemExit("run as root (the benchmark starts Ray in `unshare -n`)")
        sys.stdout.flush()
        os.execvp("unshare", isolated_command([sys.executable, *sys.orig_argv[1:]]))
    cfg, _, _ = parse_config(["--config", args.config])
    plan = make_plan(cfg)
    comp_h, rec_h = wall_hours(cfg, plan, args.gpus)
    scale = (comp_h + rec_h) * 3600 / args.target_s
    res = cfg.ray.resources
    comp_res = res.get("complete", TaskResources())
    rec_res = res.get("recbench", TaskResources())
    shards = max(1, comp_res.shards)

    ray_environment()
    import ray

    start = time.perf_counter()
    ray.init(
        address="local",
        num_cpus=args.cpus,
        num_gpus=args.gpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        logging_level="warning",
    )
    startup = time.perf_counter() - start
    sleep = ray.remote(_sleep)
    comp_opts = {"num_cpus": comp_res.num_cpus, "num_gpus": comp_res.num_gpus}
    rec_opts = {"num_cpus": rec_res.num_cpus, "num_gpus": rec_res.num_gpus}
    groups = plan.categories if cfg.recbench.per_category else 1
    epochs = min(cfg.recbench.expected_epochs, cfg.recbench.max_epochs)
    train_s = epochs * cfg.recbench.seconds_per_epoch / scale
    start = time.perf_counter()
    done: dict[tuple[str, str], list[object]] = {}
    # each GRPO run, then its +grpo re-completion's shards once it has ended
    grpo_res = res.get("grpo", TaskResources())
    grpo_opts = {"num_cpus": grpo_res.num_cpus, "num_gpus": grpo_res.num_gpus}
    # (the executor submits GRPO runs first among ready stages: each heads the longest chain)
    for run in sorted(cfg.grpo, key=lambda r: r.max_steps * r.seconds_per_step, reverse=True):
        tuned = sleep.options(**grpo_opts).remote(run.max_steps * run.seconds_per_step / scale)
        per_item = cfg.completer(run.completer).seconds_per_item.get(run.task, 0.0)
        secs = plan.items_per_task * per_item / shards / scale
        done[(run.tuned_name, run.task)] = [
            sleep.options(**comp_opts).remote(secs, tuned) for _ in range(shards)
        ]
    # as the executor: completion stages that are ready together go longest first
    jobs = [(comp, task) for comp in cfg.completers for task in comp.tasks]
    jobs.sort(key=lambda job: job[0].seconds_per_item.get(job[1], 0.0), reverse=True)
    for comp, task in jobs:
        secs = plan.items_per_task * comp.seconds_per_item.get(task, 0.0) / shards / scale
        done[(comp.name, task)] = [sleep.options(**comp_opts).remote(secs) for _ in range(shards)]
    refs = list(ref for shard_refs in done.values() for ref in shard_refs)
    conditions = [()]  # the ground truth
    for task in ("i2t", "t2i"):
        conditions += [tuple(done[(c.name, task)]) for c in cfg.completers if task in c.tasks]
        conditions += [tuple(done[(g.tuned_name, task)]) for g in cfg.grpo if g.task == task]
        conditions += [()] * len(cfg.features.imputation)
    per_condition = len(cfg.recbench.models) * len(cfg.recbench.seeds) * groups
    for deps in conditions:
        refs += [sleep.options(**rec_opts).remote(train_s, *deps) for _ in range(per_condition)]
    ray.get(refs)
    simulated_h = (time.perf_counter() - start) * scale / 3600
    ray.shutdown()
    print(
        f"paper study ({plan.generations} generations, {plan.grpo_steps} GRPO steps, "
        f"{plan.trainings} trainings) on a "
        f"simulated {args.gpus}-GPU, {args.cpus}-CPU Ray cluster; durations divided by "
        f"{scale:.0f}, {len(refs)} tasks, Ray start-up {startup:.1f} s (not counted)"
    )
    print(f"  one device, sequential (dry-run accelerator-hours): {plan.total_hours:8.1f} h")
    print(f"  dry-run wall-time estimate for {args.gpus} GPUs:            {comp_h + rec_h:8.1f} h")
    print(f"  simulated wall time on {args.gpus} GPUs:                   {simulated_h:8.1f} h")
    print(f"  speed-up over one device: {plan.total_hours / simulated_h:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
