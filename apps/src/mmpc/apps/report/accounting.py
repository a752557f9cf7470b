"""Run accounting in the report: what was completed, what served completers asked of their
endpoints, what could not run, how long stages took."""

from __future__ import annotations

import pandas as pd

from mmpc.apps.report.data import ReportInputs
from mmpc.apps.report.table import Table, simple_table

_SERVED_NOTE = (
    "requests = items + retries; tokens as the servers counted them; cost at the completer's "
    "price_per_million_tokens, – where none is set"
)


def served_table(inp: ReportInputs) -> Table | None:
    """Served completers: requests, retries, prompt and completion tokens, cost (when priced)."""
    if inp.served is None or inp.served.empty:
        return None
    frame = inp.served.copy()
    shown = frame.astype(object)
    if "cost_usd" in frame:
        shown["cost_usd"] = [
            "–" if pd.isna(v) else f"${v:,.4f}" if v < 1 else f"${v:,.2f}"
            for v in frame["cost_usd"]
        ]
    return Table(
        "served",
        inp.label("Served completers: requests, tokens, cost"),
        frame,
        shown.reset_index(drop=True),
        _SERVED_NOTE,
    )


def tables(inp: ReportInputs) -> list[Table]:
    """Completion counts (parse failures, skips), served completers' requests and tokens,
    unavailable components and stage times."""
    found = [
        simple_table(inp, "counts", "Completion counts: parse failures and skips", inp.counts),
        served_table(inp),
    ]
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
