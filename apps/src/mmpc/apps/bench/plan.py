"""``mmpc bench --dry-run``: what a configuration will do, and an accelerator-hours estimate.

Counts come from the configuration (and the catalogue's sample sizes: the given folder's, else
the synthetic preset's). The estimate is ``Σ items × seconds_per_item[task]`` over completers
and tasks (the ``+grpo`` re-completions included), plus ``max_steps × seconds_per_step`` per GRPO
run, plus ``trainings × categories × expected_epochs × seconds_per_epoch`` for RecBench;
metrics and feature extraction are left out (minutes, not hours, at the paper's scale). Every
assumption is printed beside the number.

The wall time on ``gpus`` GPUs (:func:`wall_hours`) schedules the same work as the Ray executor
would, placing at every moment the longest ready tasks that fit on the free GPUs (list
scheduling): each completer × task split into ``ray.resources.complete.shards`` equal shards
needing ``num_gpus`` each, every GRPO run needing ``ray.resources.grpo.num_gpus``, and the
``+grpo`` re-completion's shards once their GRPO run has ended; then every RecBench training (one
per category when ``per_category``) needing ``ray.resources.recbench.num_gpus``. It assumes tasks
that share a GPU run as fast as alone, a task asking for no GPU takes one, and RecBench after all
completion.

Served completers (``OpenAIChatBackend``) generate on their endpoint, not on this run's
accelerators: their ``seconds_per_item`` is only what runs here (the T→I render), and their
generations are counted on their own lines as requests (one per item, retries not foreseen) and
tokens: completion tokens at most ``items × max_tokens``, prompt tokens estimated at 4 characters
per token of the packaged prompt with a 16-token title (T→I), the image's tokens not included
(they depend on the model), and the cost at ``price_per_million_tokens`` when it is set.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from pathlib import Path

from mmpc.apps.bench.config import TASKS, BenchConfig, CompleterConfig, TaskResources

_CHARS_PER_TOKEN = 4
_TITLE_TOKENS = 16


@dataclass
class ServedCount:
    """What one served completer × task will ask of its endpoint."""

    completer: str
    task: str
    endpoint: str
    model: str
    requests: int
    max_completion_tokens: int
    prompt_tokens: int
    max_cost: float | None = None


@dataclass
class Plan:
    """Counts and the estimate of one configuration."""

    categories: int
    items_per_task: int
    generations: int
    renders: int
    conditions: dict[str, int]
    trainings: int
    completion_hours: float
    recbench_hours: float
    lines: list[str]
    grpo_steps: int = 0
    grpo_hours: float = 0.0
    served: list[ServedCount] = field(default_factory=list)

    @property
    def total_hours(self) -> float:
        return self.completion_hours + self.grpo_hours + self.recbench_hours


def _sample_sizes(cfg: BenchConfig) -> tuple[int, int]:
    """(categories, CQBench items over all categories)."""
    if cfg.catalog.path and (Path(cfg.catalog.path) / "samples.parquet").is_file():
        import pandas as pd

        root = Path(cfg.catalog.path)
        samples = pd.read_parquet(root / "samples.parquet")
        items = pd.read_parquet(root / "items.parquet", columns=["item_id", "category"])
        n = int((samples["sample"] == "cqbench").sum())
        return int(items["category"].nunique()), n
    from mmpc.completion.catalog import SynthConfig

    synth = SynthConfig.from_preset(cfg.catalog.preset)
    return len(synth.counts), synth.cqbench_n * len(synth.counts)


def _prompt_tokens(task: str) -> int:
    """Text tokens of one request with the packaged prompt (4 characters per token)."""
    from mmpc.completion.prompts import default_template, user_text

    template = default_template(task)
    title = "x" * (_TITLE_TOKENS * _CHARS_PER_TOKEN) if template.needs_title else None
    chars = len(template.system) + len(user_text(template, title=title))
    return math.ceil(chars / _CHARS_PER_TOKEN)


def served_count(comp: CompleterConfig, task: str, items: int) -> ServedCount:
    """Requests and tokens of served completer ``comp`` on ``task`` over ``items`` items."""
    args = comp.generator_spec(task)["init_args"]
    max_tokens = int(args.get("max_tokens", 256))  # the backend's default
    count = ServedCount(
        comp.name,
        task,
        str(args.get("base_url", "?")),
        str(args.get("model", "?")),
        items,
        items * max_tokens,
        items * _prompt_tokens(task),
    )
    price = comp.price_per_million_tokens
    if price:
        count.max_cost = (
            count.prompt_tokens * price.get("prompt", 0.0)
            + count.max_completion_tokens * price.get("completion", 0.0)
        ) / 1e6
    return count


def _served_line(count: ServedCount, secs: float) -> str:
    cost = "" if count.max_cost is None else f", cost ≤ ${count.max_cost:,.2f} at the set prices"
    here = (
        f"{count.requests} renders here, assumed {secs:g} s/item"
        if count.task == "t2i"
        else f"assumed {secs:g} s/item here"
    )
    return (
        f"  complete {count.completer}/{count.task}: served by {count.endpoint} "
        f"(model {count.model}): {count.requests} requests, ≤ {count.max_completion_tokens} "
        f"completion tokens, ~{count.prompt_tokens} prompt tokens{cost}; {here}"
    )


def make_plan(cfg: BenchConfig) -> Plan:
    """Count generations, renders and trainings of ``cfg`` and estimate accelerator hours."""
    n_cat, n_items = _sample_sizes(cfg)
    if cfg.catalog.path and Path(cfg.catalog.path).is_dir():
        source = f"folder {cfg.catalog.path}"
    elif cfg.catalog.path:
        source = (
            f"folder {cfg.catalog.path} (not here yet; sizes of the synthetic "
            f"'{cfg.catalog.preset}' preset)"
        )
    else:
        source = f"synthetic preset {cfg.catalog.preset}"
    lines = [f"catalogue: {source} — {n_cat} categories, {n_items} CQBench items in all"]
    generations = renders = 0
    completion_s = 0.0
    served: list[ServedCount] = []
    for comp in cfg.completers:
        for task in comp.tasks:
            generations += n_items
            if task == "t2i":
                renders += n_items
            secs = comp.seconds_per_item.get(task, 0.0)
            completion_s += n_items * secs
            if comp.served:
                served.append(served_count(comp, task, n_items))
                lines.append(_served_line(served[-1], secs))
                continue
            lines.append(
                f"  complete {comp.name}/{task}: {n_items} generations"
                + (f" + {n_items} renders" if task == "t2i" else "")
                + f", assumed {secs:g} s/item"
            )
    grpo_steps = 0
    grpo_s = 0.0
    for run in cfg.grpo:
        comp = cfg.completer(run.completer)
        group = run.model.get("group_size", "the config's")
        grpo_steps += run.max_steps
        grpo_s += run.max_steps * run.seconds_per_step
        lines.append(
            f"  grpo {run.completer}/{run.task}: {run.max_steps} steps (group size {group}), "
            f"assumed {run.seconds_per_step:g} s/step"
        )
        generations += n_items
        secs = comp.seconds_per_item.get(run.task, 0.0)
        completion_s += n_items * secs
        if run.task == "t2i":
            renders += n_items
        lines.append(
            f"  complete {run.tuned_name}/{run.task}: {n_items} generations"
            + (f" + {n_items} renders" if run.task == "t2i" else "")
            + f", assumed {secs:g} s/item"
        )
    conds = {
        t: sum(t in c.tasks for c in cfg.completers)
        + sum(g.task == t for g in cfg.grpo)
        + len(cfg.features.imputation)
        for t in TASKS
    }
    runs_per_seed = 1 + sum(conds.values())
    groups = n_cat if cfg.recbench.per_category else 1
    trainings = len(cfg.recbench.models) * len(cfg.recbench.seeds) * runs_per_seed * groups
    epochs = min(cfg.recbench.expected_epochs, cfg.recbench.max_epochs)
    rec_s = trainings * epochs * cfg.recbench.seconds_per_epoch
    lines.append(
        f"  recbench: {len(cfg.recbench.models)} models × {len(cfg.recbench.seeds)} "
        f"seed(s) × (1 GT + {conds['i2t']} I→T + {conds['t2i']} T→I conditions) × "
        f"{groups} {'categories' if cfg.recbench.per_category else 'pooled run'} = "
        f"{trainings} trainings, assumed {epochs} epochs × "
        f"{cfg.recbench.seconds_per_epoch:g} s"
    )
    return Plan(
        n_cat,
        n_items,
        generations,
        renders,
        conds,
        trainings,
        completion_s / 3600,
        rec_s / 3600,
        lines,
        grpo_steps,
        grpo_s / 3600,
        served,
    )


def _list_schedule(
    jobs: list[tuple[float, float]], capacity: float, after: list[int | None] | None = None
) -> float:
    """Seconds to run ``(duration, gpus)`` jobs on ``capacity`` GPUs: at every moment start the
    longest ready jobs that fit (a job asking for more than ``capacity`` gets all of it); job
    ``i`` is ready once job ``after[i]`` (an index into ``jobs``; None: at once) has ended."""
    deps = after if after is not None else [None] * len(jobs)
    need = [min(n, capacity) for _, n in jobs]
    pending = sorted(range(len(jobs)), key=lambda i: -jobs[i][0])
    running: list[tuple[float, int]] = []
    ended: set[int] = set()
    now, free = 0.0, capacity
    while pending or running:
        waiting = []
        for i in pending:
            dep = deps[i]
            if (dep is None or dep in ended) and need[i] <= free + 1e-9:
                free -= need[i]
                heapq.heappush(running, (now + jobs[i][0], i))
            else:
                waiting.append(i)
        pending = waiting
        if not running:
            break
        now, i = heapq.heappop(running)
        free += need[i]
        ended.add(i)
    return now


def makespan(durations: list[float], slots: int) -> float:
    """Seconds to run ``durations`` on ``slots`` parallel slots, longest first (LPT)."""
    return _list_schedule([(d, 1.0) for d in durations], float(max(1, slots)))


def _need(res: TaskResources) -> float:
    return res.num_gpus if res.num_gpus > 0 else 1.0


@dataclass
class Durations:
    """Seconds of every task :func:`wall_hours` schedules, with the GPUs each asks for."""

    completion: list[tuple[float, float]]  # base completion shards
    grpo: list[tuple[float, float]]  # GRPO runs, in the order of ``cfg.grpo``
    recompletion: list[tuple[float, float, int]]  # +grpo shards, with their GRPO run's index
    training: list[tuple[float, float]]  # RecBench trainings


def task_durations(cfg: BenchConfig, plan: Plan) -> Durations:
    """Seconds of every completion shard, GRPO run and RecBench training the plan counts."""
    res = cfg.ray.resources
    comp_res = res.get("complete", TaskResources())
    shards = max(1, comp_res.shards)

    def sharded(secs_per_item: float) -> list[tuple[float, float]]:
        return [(plan.items_per_task * secs_per_item / shards, _need(comp_res))] * shards

    completion = [
        job
        for comp in cfg.completers
        for task in comp.tasks
        for job in sharded(comp.seconds_per_item.get(task, 0.0))
    ]
    grpo_need = _need(res.get("grpo", TaskResources()))
    grpo = [(run.max_steps * run.seconds_per_step, grpo_need) for run in cfg.grpo]
    recompletion = [
        (dur, need, k)
        for k, run in enumerate(cfg.grpo)
        for dur, need in sharded(cfg.completer(run.completer).seconds_per_item.get(run.task, 0.0))
    ]
    epochs = min(cfg.recbench.expected_epochs, cfg.recbench.max_epochs)
    rec_need = _need(res.get("recbench", TaskResources()))
    training = [(epochs * cfg.recbench.seconds_per_epoch, rec_need)] * plan.trainings
    return Durations(completion, grpo, recompletion, training)


def wall_hours(cfg: BenchConfig, plan: Plan, gpus: int) -> tuple[float, float]:
    """(completion with GRPO, RecBench) wall hours on ``gpus`` GPUs (see the module docstring)."""
    jobs = task_durations(cfg, plan)
    cap = float(max(1, gpus))
    first = jobs.completion + jobs.grpo
    after: list[int | None] = [None] * len(first)
    after += [len(jobs.completion) + k for _, _, k in jobs.recompletion]
    completion = _list_schedule(first + [(d, n) for d, n, _ in jobs.recompletion], cap, after)
    return completion / 3600, _list_schedule(jobs.training, cap) / 3600


def served_totals(plan: Plan) -> list[str]:
    """The served completers' line (none without one): requests, tokens, cost, not in hours."""
    if not plan.served:
        return []
    costs = [c.max_cost for c in plan.served if c.max_cost is not None]
    cost = f", cost ≤ ${sum(costs):,.2f} ({len(costs)} priced)" if costs else ""
    return [
        f"served: {sum(c.requests for c in plan.served)} requests to "
        f"{len({c.endpoint for c in plan.served})} endpoint(s), "
        f"≤ {sum(c.max_completion_tokens for c in plan.served)} completion tokens, "
        f"~{sum(c.prompt_tokens for c in plan.served)} prompt tokens (text only, 4 characters "
        f"per token; images not counted){cost}; not in the accelerator-hours below"
    ]


def format_plan(cfg: BenchConfig, plan: Plan, gpus: int = 1) -> str:
    """The text ``--dry-run`` prints (with the wall time on ``gpus`` GPUs)."""
    out = [
        f"plan for run '{cfg.name}' in {Path(cfg.runs_dir) / cfg.name} "
        f"(accelerator: {cfg.accelerator})",
        *plan.lines,
        f"totals: {plan.generations} generations, {plan.renders} renders, "
        f"{plan.trainings} recommender trainings, {plan.grpo_steps} GRPO steps",
        *served_totals(plan),
        f"estimate: {plan.completion_hours:.1f} h completion + {plan.grpo_hours:.1f} h GRPO + "
        f"{plan.recbench_hours:.1f} h RecBench = {plan.total_hours:.1f} accelerator-hours "
        "(assumptions above: the config's seconds_per_item, seconds_per_step and "
        "seconds_per_epoch × expected_epochs; CQBench metrics and feature extraction not counted)",
    ]
    if gpus >= 1:
        comp_h, rec_h = wall_hours(cfg, plan, gpus)
        res = cfg.ray.resources
        comp, rec = res.get("complete", TaskResources()), res.get("recbench", TaskResources())
        out.append(
            f"wall time on {gpus} GPU(s) with --executor ray: {comp_h:.1f} h completion and "
            f"GRPO + {rec_h:.1f} h RecBench = {comp_h + rec_h:.1f} h (the same work in "
            f"{comp.shards} shard(s) per completer × task at {comp.num_gpus:g} GPU each, "
            f"trainings at {rec.num_gpus:g} GPU each, assumed as fast as alone; completion "
            "and GRPO before RecBench, each +grpo re-completion after its GRPO run; set --gpus N "
            "for another count)"
        )
    return "\n".join(out)
