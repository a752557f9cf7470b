"""What the report holds and in which order: every study's tables and figures, by section.

A study module (:mod:`~mmpc.apps.report.cqbench`, :mod:`~mmpc.apps.report.recbench`,
:mod:`~mmpc.apps.report.quality_impact`, :mod:`~mmpc.apps.report.grpo`,
:mod:`~mmpc.apps.report.accounting`) gives ``tables(inputs)`` and, where it draws,
``figures(inputs, out)``; a new table or figure is added in its study module and placed here by
the prefix of its key.
"""

from __future__ import annotations

from pathlib import Path

from mmpc.apps.report import accounting, cqbench, grpo, quality_impact, recbench
from mmpc.apps.report.data import ReportInputs
from mmpc.apps.report.plot import Figure
from mmpc.apps.report.table import Table

GRPO_SECTION = "GRPO alignment"
CQ_SECTION = "Content quality (CQBench)"
# Reading order: (section heading, table/figure key prefixes in the order shown).
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Dataset", ("catalogue",)),
    (CQ_SECTION, ("cq_completer", "radar", "cq_category", "cq_by_completer_category")),
    ("Recommendation impact (RecBench)", ("rec_overall", "heatmap", "rec_")),
    ("Which differences are real", ("bootstrap",)),
    ("Content quality vs recommendation impact", ("spearman", "quality_vs_impact")),
    (GRPO_SECTION, ("grpo_i2t", "grpo_category", "grpo_t2i", "grpo_rewards")),
    ("Run accounting", ("counts", "served", "unavailable", "stage_times")),
)


def build_tables(inp: ReportInputs) -> list[Table]:
    """Every table the inputs allow, study by study."""
    return (
        cqbench.tables(inp)
        + recbench.tables(inp)
        + quality_impact.tables(inp)
        + grpo.tables(inp)
        + accounting.tables(inp)
    )


def build_figures(inp: ReportInputs, out: Path) -> list[Figure]:
    """Every figure the inputs allow, written as PNG under ``out``, study by study."""
    return (
        cqbench.figures(inp, out)
        + recbench.figures(inp, out)
        + grpo.figures(inp, out)
        + quality_impact.figures(inp, out)
    )


def section_notes(inp: ReportInputs, heading: str) -> list[str]:
    """Lines shown under ``heading`` before its tables: what the run could not show, and why."""
    if heading == CQ_SECTION:
        return cqbench.notes(inp)
    return grpo.grpo_notes(inp) if heading == GRPO_SECTION else []
