"""The catalogue folder: validated open, one-line errors, safe image paths, atomic writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from mmpc.completion.catalog import Catalog, CatalogError
from mmpc.completion.catalog.format import write_parquet


@pytest.fixture
def copy(synth_tiny: Catalog, tmp_path: Path) -> Path:
    dest = tmp_path / "cat"
    shutil.copytree(synth_tiny.root, dest)
    return dest


def _rewrite(root: Path, name: str, frame: pd.DataFrame) -> None:
    write_parquet(root / name, frame)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["hashes"].pop(name)
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_open_gives_the_contract(synth_tiny: Catalog) -> None:
    cat = Catalog.open(synth_tiny.root)
    assert cat.items.index.name == "item_id" and cat.items.index.is_unique
    assert {"item_id", "category", "title", "description", "image"} <= set(cat.items.columns)
    assert cat.interactions["timestamp"].dtype == "int64"
    assert cat.interactions["rating"].dtype == "float32"
    assert set(cat.interactions["split"]) == {"train", "valid", "test"}
    assert cat.is_synthetic and cat.manifest["source"] == "synthetic"
    item = cat.sample("cqbench")[0]
    img = cat.load_image(item)
    assert img.mode == "RGB" and img.size == (64, 64)
    assert cat.image_path(item) == (cat.root / cat.items.at[item, "image"]).resolve()
    assert cat.summary()["Video_Games"]["cqbench"] == 10


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: (r / "manifest.json").unlink(), "manifest.json: missing"),
        (lambda r: (r / "manifest.json").write_text("{"), "not valid JSON"),
        (lambda r: (r / "samples.parquet").unlink(), "samples.parquet: missing"),
        (lambda r: (r / "items.parquet").write_bytes(b"x"), "sha256 differs"),
        (
            lambda r: _rewrite(
                r, "items.parquet", pd.read_parquet(r / "items.parquet").drop(columns="title")
            ),
            "items.parquet: missing column(s) title",
        ),
        (
            lambda r: _rewrite(r, "items.parquet", pd.read_parquet(r / "items.parquet").iloc[1:]),
            "interactions.parquet: item 'SYN-AB-00000' is not in items.parquet",
        ),
        (
            lambda r: _rewrite(
                r, "samples.parquet", pd.concat([pd.read_parquet(r / "samples.parquet")] * 2)
            ),
            "must be disjoint",
        ),
        (
            lambda r: _rewrite(
                r,
                "items.parquet",
                pd.read_parquet(r / "items.parquet").assign(image="../outside.png"),
            ),
            "image path outside the folder",
        ),
        (
            lambda r: _rewrite(
                r,
                "interactions.parquet",
                pd.read_parquet(r / "interactions.parquet").assign(split="holdout"),
            ),
            "split 'holdout' not in",
        ),
    ],
)
def test_invalid_folders_fail_with_one_line(copy: Path, mutate, message: str) -> None:
    mutate(copy)
    with pytest.raises(CatalogError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        Catalog.open(copy)
    assert "\n" not in str(err.value)


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="does not exist"):
        Catalog.open(tmp_path / "nope")


def test_image_path_checks(copy: Path) -> None:
    cat = Catalog.open(copy)
    with pytest.raises(KeyError, match="unknown item 'nope'"):
        cat.image_path("nope")
    cat.items.loc["SYN-AB-00000", "image"] = "../../etc/passwd"
    with pytest.raises(CatalogError, match="escapes the catalogue folder"):
        cat.image_path("SYN-AB-00000")


def test_unreadable_cover_names_the_item(copy: Path) -> None:
    cat = Catalog.open(copy)
    cat.image_path("SYN-AB-00001").write_bytes(b"\x89PNG broken")
    with pytest.raises(CatalogError, match="cover of item 'SYN-AB-00001' unreadable"):
        cat.load_image("SYN-AB-00001")
    assert isinstance(cat.load_image("SYN-AB-00002"), Image.Image)


def test_sample_filters(synth_tiny: Catalog) -> None:
    cq = synth_tiny.sample("cqbench", "Electronics")
    assert len(cq) == 10 and all(i.startswith("SYN-EL-") for i in cq)
    with pytest.raises(CatalogError, match="unknown sample 'train'"):
        synth_tiny.sample("train")


def test_no_temporary_files_left(synth_tiny: Catalog) -> None:
    leftovers = [p for p in synth_tiny.root.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
