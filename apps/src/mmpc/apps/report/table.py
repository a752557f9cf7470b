"""The report's table type and number formatting, shared by every study's tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmpc.apps.report.data import ReportInputs


@dataclass
class Table:
    """A report table: ``key`` names its CSV, ``values`` holds numbers, ``shown`` the strings."""

    key: str
    title: str
    values: pd.DataFrame
    shown: pd.DataFrame
    note: str = ""


def fmt(x: float, digits: int = 3) -> str:
    """A float with ``digits`` decimals, ``–`` for NaN."""
    return "–" if not np.isfinite(x) else f"{x:.{digits}f}"


def fmt_pct(x: float) -> str:
    """A fraction as a signed percentage with two decimals, ``–`` for NaN."""
    return "–" if not np.isfinite(x) else f"{x * 100:+.2f}%"


def simple_table(
    inp: ReportInputs, key: str, title: str, frame: pd.DataFrame | None, note: str = ""
) -> Table | None:
    """A table shown as it is (counts, unavailable components, stage times)."""
    if frame is None or frame.empty:
        return None
    shown = frame.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = [fmt(v, 1) for v in shown[col]]
    return Table(key, inp.label(title), frame, shown.reset_index(drop=True), note)
