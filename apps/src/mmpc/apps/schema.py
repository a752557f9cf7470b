"""Names the bench writes and the report reads: metrics, cut-offs, task labels, report options.

Both :mod:`mmpc.apps.bench` (which computes the numbers) and :mod:`mmpc.apps.report` (which shows
them) import this module and nothing of each other's internals, so the two can change apart as
long as a run folder keeps these names.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_METRICS",
    "GT",
    "KS",
    "MANIFEST",
    "REC_METRICS",
    "TASK_LABELS",
    "MetricInfo",
    "ReportConfig",
]

MANIFEST = "manifest.json"
"""A stage folder is finished when it holds this file (the bench writes it last)."""
KS = (5, 10, 20, 50)
"""RecBench cut-offs K of Recall@K and NDCG@K."""
REC_METRICS = tuple(f"{m}@{k}" for k in KS for m in ("recall", "ndcg"))
"""RecBench metric columns, ``recall@5, ndcg@5, recall@10, ...``."""
GT = "ground_truth"
"""The RecBench condition trained on the catalogue's own (ground-truth) features."""
TASK_LABELS = {"i2t": "I→T", "t2i": "T→I"}
"""Display names of the two completion tasks."""


@dataclass(frozen=True)
class MetricInfo:
    """A CQBench metric column: its key, display label, task and direction."""

    key: str
    label: str
    task: str
    higher_is_better: bool = True
    note: str = ""

    @property
    def header(self) -> str:
        """The label with an arrow saying which way is better, e.g. ``MSE ↓``."""
        return f"{self.label} {'↑' if self.higher_is_better else '↓'}"


DEFAULT_METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("cosine", "Cosine", "i2t"),
    MetricInfo("euclidean", "Euclidean", "i2t"),
    MetricInfo("overlap", "Overlap", "i2t"),
    MetricInfo("bertscore", "BERTScore", "i2t"),
    MetricInfo("psnr", "PSNR", "t2i"),
    MetricInfo("ssim", "SSIM", "t2i"),
    MetricInfo("mse", "MSE", "t2i", higher_is_better=False),
    MetricInfo("lpips", "LPIPS", "t2i", higher_is_better=False),
    MetricInfo("clip", "CLIP", "t2i"),
)
"""Every CQBench metric in the order the report shows them."""


@dataclass
class ReportConfig:
    """Report options: gallery size, bootstrap replicates, heatmap metric, a GRPO log."""

    gallery: int = 6
    bootstrap_samples: int = 1000
    heatmap_metric: str = "recall@20"
    grpo_log: str | None = None
