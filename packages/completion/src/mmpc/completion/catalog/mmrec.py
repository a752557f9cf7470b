"""Export a catalogue's interactions in MMRec's dataset format.

Files written to ``out`` (tab-separated, with a header row, as MMRec's preprocessing writes them):

* ``<name>.inter``: ``userID itemID rating timestamp x_label`` with integer ids, ``timestamp`` in
  milliseconds, ``x_label`` 0/1/2 for the catalogue's train/valid/test split. Rows sorted by
  userID, then timestamp, then itemID.
* ``u_id_mapping.csv``: ``user_id userID``; ``i_id_mapping.csv``: ``asin itemID``.

Integer ids are assigned in **sorted order of the string ids** (user ids and item ids each sorted
lexicographically, numbered from 0), so itemID ``i`` is row ``i`` of a feature matrix built over
the sorted item ids; this is also how ``mmpc.recsys`` indexes a catalogue without ``item_ids.txt``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmpc.completion.catalog.format import SPLITS, Catalog, CatalogError
from mmpc.metrics.files import atomic_write_bytes


def _tsv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(sep="\t", index=False, lineterminator="\n").encode()


def export_mmrec(
    catalog: Catalog | str | Path,
    out: str | Path,
    *,
    category: str | None = None,
    name: str | None = None,
) -> dict[str, int]:
    """Write ``<name>.inter`` and the two id-mapping files for one category (or all) to ``out``.

    Args:
        catalog: a ``Catalog`` or its folder.
        out: destination folder (created).
        category: export only this category's items and their interactions; ``None``: everything.
        name: dataset name for the ``.inter`` file (default: the category, or "catalog").

    Returns:
        counts: users, items, interactions.
    """
    cat = catalog if isinstance(catalog, Catalog) else Catalog.open(catalog)
    inter = cat.interactions
    items = cat.items
    if category is not None:
        if category not in cat.categories:
            raise CatalogError(f"{cat.root}: no category {category!r} (have {cat.categories})")
        items = items[items["category"] == category]
        inter = inter[inter["item_id"].isin(items.index)]
    item_ids = np.array(sorted(items.index))
    user_ids = np.array(sorted(inter["user_id"].unique()))
    frame = pd.DataFrame(
        {
            "userID": np.searchsorted(user_ids, inter["user_id"].to_numpy()),
            "itemID": np.searchsorted(item_ids, inter["item_id"].to_numpy()),
            "rating": inter["rating"].to_numpy(),
            "timestamp": inter["timestamp"].to_numpy(np.int64),
            "x_label": inter["split"].map({s: i for i, s in enumerate(SPLITS)}).to_numpy(),
        }
    ).sort_values(["userID", "timestamp", "itemID"], kind="stable")
    out = Path(out)
    stem = name or category or "catalog"
    atomic_write_bytes(out / f"{stem}.inter", _tsv(frame))
    atomic_write_bytes(
        out / "u_id_mapping.csv",
        _tsv(pd.DataFrame({"user_id": user_ids, "userID": range(len(user_ids))})),
    )
    atomic_write_bytes(
        out / "i_id_mapping.csv",
        _tsv(pd.DataFrame({"asin": item_ids, "itemID": range(len(item_ids))})),
    )
    return {"users": len(user_ids), "items": len(item_ids), "interactions": len(frame)}
