"""The synthetic catalogue: presets, determinism, and a real attribute signal."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import cross_val_score

from mmpc.completion.catalog import Catalog, CatalogError, SynthConfig, synthesize


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_other_bytes(synth_tiny: Catalog, tmp_path) -> None:
    again = synthesize("tiny", seed=0, out=tmp_path / "again")
    assert _tree_hashes(again.root) == _tree_hashes(synth_tiny.root)
    other = synthesize("tiny", seed=1, out=tmp_path / "other")
    assert other.manifest["hashes"]["items.parquet"] != again.manifest["hashes"]["items.parquet"]
    assert other.manifest["hashes"]["images"] != again.manifest["hashes"]["images"]


def test_tiny_preset_counts_and_labels(synth_tiny: Catalog) -> None:
    m = synth_tiny.manifest
    assert m["synthetic"] is True and m["preset"] == "tiny" and m["seed"] == 0
    assert m["counts"] == {
        "items": 120,
        "users": 75,
        "interactions": 900,
        "categories": 3,
        "splits": m["counts"]["splits"],
        "samples": {"cqbench": 30, "grpo": 15},
    }
    inter = synth_tiny.interactions
    assert inter.groupby("user_id").size().min() >= 5
    assert inter.groupby("item_id").size().min() >= 5
    assert m["dropped"] == {"kcore": 0}
    assert set(synth_tiny.sample("cqbench")).isdisjoint(synth_tiny.sample("grpo"))


def test_paper_preset_holds_table_1() -> None:
    cfg = SynthConfig.from_preset("paper")
    assert cfg.counts["Video_Games"] == (25501, 3461, 189692)
    assert cfg.counts["All_Beauty"] == (1068, 4094, 10198)
    assert len(cfg.counts) == 9 and cfg.cqbench_n == 1000 and cfg.grpo_n == 500
    demo = SynthConfig.from_preset("demo", image_size=128)
    assert len(demo.counts) == 9 and set(demo.counts.values()) == {(40, 80, 600)}
    assert demo.image_size == 128 and demo.cqbench_n == 20 and demo.grpo_n == 10


def test_exact_counts_and_five_core_minimum(tmp_path: Path) -> None:
    cfg = SynthConfig(
        counts={"Office_Products": (12, 30, 100), "Electronics": (10, 8, 70)},
        image_size=32,
        cqbench_n=5,
        grpo_n=3,
    )
    cat = synthesize(cfg, seed=5, out=tmp_path / "c")
    summary = cat.summary()
    assert summary["Electronics"] == {
        "items": 8,
        "users": 10,
        "interactions": 70,
        "cqbench": 5,
        "grpo": 3,
    }
    assert summary["Office_Products"]["interactions"] == 150  # raised to 5 * 30
    assert "raised from 100 to 150" in cat.manifest["notes"]["Office_Products"]


def test_refuses_a_folder_holding_something_else(synth_tiny: Catalog, tmp_path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(CatalogError, match="not empty and holds another catalogue"):
        synthesize("tiny", seed=0, out=tmp_path / "x")
    with pytest.raises(CatalogError, match="not empty and holds another catalogue"):
        synthesize("tiny", seed=9, out=synth_tiny.root)
    assert synthesize("tiny", seed=0, out=synth_tiny.root).root == synth_tiny.root


def test_resume_rerenders_only_missing_covers(tmp_path: Path) -> None:
    cat = synthesize("tiny", seed=0, out=tmp_path / "c")
    before = _tree_hashes(cat.root)
    (cat.root / "manifest.json").unlink()  # as if killed before the end
    cat.image_path("SYN-EL-00003").unlink()
    synthesize("tiny", seed=0, out=tmp_path / "c")
    assert _tree_hashes(cat.root) == before


def _image_features(cat: Catalog) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(12x12 grey silhouettes (N, 144), 4x4x4 colour histograms (N, 64), items)."""
    ids = sorted(cat.items.index)
    sil, hist = [], []
    for i in ids:
        img = cat.load_image(i)
        sil.append(np.asarray(img.convert("L").resize((12, 12)), np.float32).ravel() / 255.0)
        h = np.histogramdd(
            np.asarray(img).reshape(-1, 3) // 64, bins=(4, 4, 4), range=((0, 4),) * 3
        )[0].ravel()
        hist.append(h / h.sum())
    return np.stack(sil), np.stack(hist), cat.items.loc[ids]


def _accuracy(X, y) -> float:
    """3-fold cross-validated accuracy of a linear (ridge) classifier."""
    return float(cross_val_score(RidgeClassifier(alpha=1.0), X, y, cv=3).mean())


def test_type_and_colour_recoverable_from_images(signal_catalog: Catalog) -> None:
    sil, hist, items = _image_features(signal_catalog)
    types = items["category"] + "/" + items["product_type"]
    chance_type, chance_colour = 1 / types.nunique(), 1 / items["color"].nunique()
    acc_type = _accuracy(np.hstack([sil, hist]), types)
    acc_colour = _accuracy(hist, items["color"])
    assert acc_type > 5 * chance_type, (acc_type, chance_type)
    assert acc_colour > 5 * chance_colour, (acc_colour, chance_colour)
    # shuffled labels: the same classifier is at chance, so the signal is in the pictures
    shuffled = np.random.default_rng(0).permutation(items["color"].to_numpy())
    assert _accuracy(hist, shuffled) < 2 * chance_colour


def test_type_and_colour_recoverable_from_titles(signal_catalog: Catalog) -> None:
    items = signal_catalog.items
    X = TfidfVectorizer(ngram_range=(1, 2)).fit_transform(items["title"])
    assert _accuracy(X, items["product_type"]) > 0.9
    assert _accuracy(X, items["color"]) > 0.7
    # titles are not one fixed template
    assert items["title"].str.replace(r"[A-Za-z]+", "w", regex=True).nunique() >= 5


@pytest.mark.parametrize("attribute", ["color", "product_type"])
def test_interactions_follow_preferences_beyond_popularity(
    signal_catalog: Catalog, attribute: str
) -> None:
    """A user's favourite value of ``attribute`` (from train) is over-represented in the
    held-out interactions, far beyond its share of all train interactions (popularity)."""
    inter = signal_catalog.interactions.merge(
        signal_catalog.items[["category", attribute]], left_on="item_id", right_index=True
    )
    train, held = inter[inter["split"] == "train"], inter[inter["split"] != "train"]
    share = train.groupby("category")[attribute].value_counts(normalize=True)
    hits, base = [], []
    for user, rows in train.groupby("user_id"):
        fav = rows[attribute].value_counts().index[0]
        out = held[held["user_id"] == user]
        hits.append((out[attribute] == fav).mean())
        base.append(share.loc[(rows["category"].iloc[0], fav)])
    observed, expected = float(np.mean(hits)), float(np.mean(base))
    assert observed > 1.5 * expected, (observed, expected)


def test_unknown_preset() -> None:
    with pytest.raises(CatalogError, match="unknown preset 'huge'"):
        SynthConfig.from_preset("huge")
