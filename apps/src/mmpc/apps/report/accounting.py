"""Run accounting in the report: the catalogue the run used (the paper's Table 1), what was
completed, what served completers asked of their endpoints, what could not run, how long stages
took."""

from __future__ import annotations

import pandas as pd

from mmpc.apps.report.data import ReportInputs
from mmpc.apps.report.table import Table, simple_table

_SERVED_NOTE = (
    "requests = items + retries; tokens as the servers counted them; cost at the completer's "
    "price_per_million_tokens, – where none is set"
)


_CATALOG_HEADERS = {
    "users": "Users",
    "items": "Items",
    "interactions": "Interactions",
    "cqbench": "CQBench items",
    "grpo": "GRPO items",
}


def catalog_table(inp: ReportInputs) -> Table | None:
    """Paper Table 1: per category the users, items and interactions of the catalogue, and how
    many items the CQBench and GRPO samples draw from it (a Total row sums the categories)."""
    if inp.catalog is None or inp.catalog.empty:
        return None
    values = inp.catalog[list(_CATALOG_HEADERS)].astype(int)
    # No total row: a user who rated items of two categories is counted in both.
    shown = values.map(lambda v: f"{v:,}")
    shown.columns = list(_CATALOG_HEADERS.values())
    shown.index.name = "Category"
    return Table(
        "catalogue",
        inp.label("Table 1: Catalogue by category: users, items, interactions, samples"),
        values,
        shown,
        "users and interactions over all splits; the CQBench and GRPO samples are disjoint",
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
    """The catalogue (Table 1), completion counts (parse failures, skips), served completers'
    requests and tokens, unavailable components and stage times."""
    found = [
        catalog_table(inp),
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
