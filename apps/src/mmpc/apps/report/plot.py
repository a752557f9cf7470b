"""The report's figure type and PNG writer (matplotlib, Agg backend: no display needed).

Every study module draws with ``plt`` from here, so the backend is chosen once, before pyplot
is first imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from mmpc.metrics.files import atomic_path

__all__ = ["Figure", "plt", "save_png"]


@dataclass
class Figure:
    """A PNG written into the report folder, with the title shown above it in the report."""

    key: str
    title: str
    path: Path
    data: pd.DataFrame


def save_png(fig: plt.Figure, path: Path) -> None:
    """Write ``fig`` to ``path`` as PNG (110 dpi, tight box), atomically, then close it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
