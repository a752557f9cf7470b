"""CompletionDataModule: only the unmasked modality, the right items, skipping done ones."""

from __future__ import annotations

import pytest
from PIL import Image

from mmpc.completion.catalog import Catalog
from mmpc.completion.data import CompletionDataModule


def _batches(dm: CompletionDataModule) -> list[dict]:
    return list(dm.predict_dataloader())


def test_i2t_batches_hold_ids_and_images_only(tiny_catalog: Catalog) -> None:
    dm = CompletionDataModule(str(tiny_catalog.root), task="i2t", batch_size=4)
    dm.setup("predict")
    assert dm.sample_ids == tiny_catalog.sample("cqbench")
    batches = _batches(dm)
    assert all(set(b) == {"item_id", "image"} for b in batches)
    ids = [i for b in batches for i in b["item_id"]]
    assert ids == dm.sample_ids
    first = batches[0]["image"][0]
    assert isinstance(first, Image.Image) and first.mode == "RGB"
    assert list(first.getdata()) == list(tiny_catalog.load_image(ids[0]).getdata())


def test_t2i_batches_hold_ids_and_titles_only(tiny_catalog: Catalog) -> None:
    dm = CompletionDataModule(str(tiny_catalog.root), task="t2i", sample="grpo", batch_size=3)
    dm.setup()
    batches = _batches(dm)
    assert all(set(b) == {"item_id", "title"} for b in batches)
    ids = [i for b in batches for i in b["item_id"]]
    titles = [t for b in batches for t in b["title"]]
    assert ids == tiny_catalog.sample("grpo")
    assert titles == [tiny_catalog.items.at[i, "title"] for i in ids]


def test_selection_limit_category_and_skip(tiny_catalog: Catalog) -> None:
    category = tiny_catalog.categories[1]
    dm = CompletionDataModule(str(tiny_catalog.root), task="i2t", category=category, limit=4)
    dm.setup()
    expected = tiny_catalog.sample("cqbench", category)[:4]
    assert dm.sample_ids == expected
    skipped = dm.skip_items([expected[0], expected[2], "not-in-sample"])
    assert skipped == [expected[0], expected[2]]
    assert [i for b in _batches(dm) for i in b["item_id"]] == [expected[1], expected[3]]


def test_explicit_item_ids_and_errors(tiny_catalog: Catalog) -> None:
    some = sorted(tiny_catalog.items.index)[:3]
    dm = CompletionDataModule(str(tiny_catalog.root), task="t2i", item_ids=list(reversed(some)))
    dm.setup()
    assert dm.sample_ids == some
    bad = CompletionDataModule(str(tiny_catalog.root), task="t2i", item_ids=["nope"])
    with pytest.raises(ValueError, match=r"unknown item ids \['nope'\]"):
        bad.setup()
    with pytest.raises(ValueError, match="unknown task"):
        CompletionDataModule(str(tiny_catalog.root), task="x2y")
