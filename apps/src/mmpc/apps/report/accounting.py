"""Run accounting in the report: what was completed, what could not run, how long stages took."""

from __future__ import annotations

import pandas as pd

from mmpc.apps.report.data import ReportInputs
from mmpc.apps.report.table import Table, simple_table


def tables(inp: ReportInputs) -> list[Table]:
    """Completion counts (parse failures, skips), unavailable components and stage times."""
    found = [simple_table(inp, "counts", "Completion counts: parse failures and skips", inp.counts)]
    if inp.unavailable:
        frame = pd.DataFrame(sorted(inp.unavailable.items()), columns=["Component", "Reason"])
        found.append(
            simple_table(
                inp,
                "unavailable",
                "Unavailable components",
                frame,
                "not run on this machine; no number is reported for them",
            )
        )
    found.append(simple_table(inp, "stage_times", "Stage times", inp.stage_times))
    return [t for t in found if t is not None]
