"""MMRec export: .inter with integer ids and x_label, id mappings that round-trip."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mmpc.completion.catalog import Catalog, CatalogError, export_mmrec


def test_export_one_category_round_trips(synth_tiny: Catalog, tmp_path: Path) -> None:
    counts = export_mmrec(synth_tiny, tmp_path, category="Electronics")
    inter = pd.read_csv(tmp_path / "Electronics.inter", sep="\t")
    assert list(inter.columns) == ["userID", "itemID", "rating", "timestamp", "x_label"]
    users = pd.read_csv(tmp_path / "u_id_mapping.csv", sep="\t")
    items = pd.read_csv(tmp_path / "i_id_mapping.csv", sep="\t")
    assert list(users.columns) == ["user_id", "userID"] and list(items.columns) == [
        "asin",
        "itemID",
    ]
    assert users["user_id"].is_monotonic_increasing and items["asin"].is_monotonic_increasing
    assert users["userID"].tolist() == list(range(len(users)))
    assert counts == {"users": len(users), "items": len(items), "interactions": len(inter)}
    back = pd.DataFrame(
        {
            "user_id": users.set_index("userID").loc[inter["userID"], "user_id"].to_numpy(),
            "item_id": items.set_index("itemID").loc[inter["itemID"], "asin"].to_numpy(),
            "timestamp": inter["timestamp"].to_numpy(),
            "split": inter["x_label"].map({0: "train", 1: "valid", 2: "test"}).to_numpy(),
        }
    )
    src = synth_tiny.interactions
    src = src[src["item_id"].str.startswith("SYN-EL-")][back.columns]
    key = ["user_id", "item_id"]
    pd.testing.assert_frame_equal(
        back.sort_values(key).reset_index(drop=True), src.sort_values(key).reset_index(drop=True)
    )


def test_export_everything(synth_tiny: Catalog, tmp_path: Path) -> None:
    counts = export_mmrec(synth_tiny.root, tmp_path, name="all")
    assert counts["interactions"] == len(synth_tiny.interactions)
    assert (tmp_path / "all.inter").is_file()


def test_unknown_category(synth_tiny: Catalog, tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no category 'Books'"):
        export_mmrec(synth_tiny, tmp_path, category="Books")
