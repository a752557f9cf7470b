"""The report's inputs as plain tables, independent of how a run folder stores them.

Shapes (one row per unit; metric columns are floats, NaN where a metric does not apply):

* ``cq``: ``completer, task, category, item_id, <metric keys>`` — per-item CQBench scores.
* ``rec``: ``model, task, condition, kind, seed, category, recall@K, ndcg@K`` for K in
  :data:`mmpc.apps.schema.KS` — one RecBench test result; ``kind`` is ``"gt"`` (the
  ground-truth features, ``condition == "ground_truth"``), ``"completer"`` or ``"imputation"``.
  Ground-truth rows belong to both tasks (``task`` is ``"i2t"`` or ``"t2i"``, a GT run is listed
  once per task).
* ``rec_users``: the same keys plus ``user_id`` and the metric columns, one row per test user
  (the vectors behind ``rec``, paired by user for the bootstrap).
* ``grpo_log``: a GRPO CSV log (``step`` plus reward columns) given from outside the run.
* ``grpo_runs``: the run's own GRPO stages (:class:`GRPORun`): which completer and task, and
  its per-step log; the tuned completer ``<completer>+grpo`` has rows in ``cq`` and ``rec``.
* ``catalog``: indexed by ``category``, columns ``users, items, interactions, cqbench, grpo``:
  the run's catalogue per category (``Catalog.summary``), the paper's Table 1.
* ``served``: ``completer, task, items, requests, retries, prompt_tokens, completion_tokens``
  (and ``cost_usd`` when a price is configured): one row per served completer × task, sums
  over its records' ``"served"`` entries; None when the run has no served completer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mmpc.apps.schema import DEFAULT_METRICS, MetricInfo


@dataclass(frozen=True)
class GalleryItem:
    """One item shown side by side: the original and a completer's output (text or image)."""

    item_id: str
    category: str
    completer: str
    task: str
    original_title: str
    generated: str
    original_image: Path | None = None
    generated_image: Path | None = None


@dataclass(frozen=True)
class GRPORun:
    """One GRPO stage of the run: ``completer`` tuned on ``task`` into ``<completer>+grpo``."""

    completer: str
    task: str
    log: pd.DataFrame | None = None
    status: str = "ran"
    reason: str = ""

    @property
    def tuned(self) -> str:
        return f"{self.completer}+grpo"


@dataclass
class ReportInputs:
    """Everything the report shows; every part is optional so a partial run still reports."""

    title: str = "MMPCBench report"
    synthetic: bool = False
    metrics: tuple[MetricInfo, ...] = DEFAULT_METRICS
    catalog: pd.DataFrame | None = None
    cq: pd.DataFrame | None = None
    rec: pd.DataFrame | None = None
    rec_users: pd.DataFrame | None = None
    grpo_log: pd.DataFrame | None = None
    grpo_runs: list[GRPORun] = field(default_factory=list)
    gallery: list[GalleryItem] = field(default_factory=list)
    counts: pd.DataFrame | None = None
    served: pd.DataFrame | None = None
    unavailable: dict[str, str] = field(default_factory=dict)
    stage_times: pd.DataFrame | None = None
    heatmap_metric: str = "recall@20"
    bootstrap_samples: int = 1000
    seed: int = 0

    def label(self, title: str) -> str:
        """``title`` with ``(synthetic)`` appended when the catalogue is synthetic."""
        return f"{title} (synthetic)" if self.synthetic else title

    def cq_tasks(self) -> Iterator[tuple[str, list[MetricInfo], pd.DataFrame]]:
        """``(task, its metrics, its CQBench rows)`` for each task that has both."""
        for task in ("i2t", "t2i"):
            metrics = self.task_metrics(task)
            sub = self.cq[self.cq["task"] == task] if self.cq is not None else None
            if metrics and sub is not None and not sub.empty:
                yield task, metrics, sub

    def task_metrics(self, task: str) -> list[MetricInfo]:
        """The metrics of ``task`` that have at least one finite value in ``cq``."""
        if self.cq is None:
            return []
        sub = self.cq[self.cq["task"] == task]
        return [
            m for m in self.metrics if m.task == task and m.key in sub and sub[m.key].notna().any()
        ]
