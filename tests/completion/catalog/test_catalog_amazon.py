"""The Amazon Reviews 2023 loader on hand-written files holding every kind of bad input."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from mmpc.completion.catalog import Catalog, CatalogError, load_amazon
from mmpc.completion.catalog.rawio import (
    check_image,
    iter_records,
    main_image_url,
    parse_details,
    safe_image_path,
)
from mmpc.metrics.files import file_sha256

CATEGORY = "Video_Games"


def _load(root: Path, out: Path, **kw) -> Catalog:
    return load_amazon(CATEGORY, root, root / "images", out, cqbench_n=3, grpo_n=2, **kw)


@pytest.mark.parametrize("gz", [False, True])
def test_loader_keeps_good_items_and_counts_every_drop(
    tmp_path: Path, amazon_writer, gz: bool
) -> None:
    root = tmp_path / "raw"
    expected = amazon_writer(root, gz=gz)
    cat = _load(root, tmp_path / "out")
    assert sorted(cat.items.index) == expected["items"]
    assert sorted(cat.interactions["user_id"].unique()) == expected["users"]
    assert len(cat.interactions) == expected["interactions"]
    dropped = {k: v for k, v in cat.manifest["dropped"].items() if v}
    assert dropped == expected["dropped"]
    assert cat.manifest["source"] == "amazon-reviews-2023"
    assert not cat.is_synthetic


def test_loader_fields_forms_and_covers(amazon_raw, tmp_path: Path) -> None:
    root, _ = amazon_raw
    cat = _load(root, tmp_path / "out")
    items = cat.items
    assert items.at["B0GOOD3", "title"] == "Pokémon & Friends Deluxe"  # unescaped, spaces joined
    assert "\ufffd" in items.at["B0GOOD5", "title"]  # non-UTF-8 bytes replaced, item kept
    assert items.at["B0GOOD1", "cover_url"] == "https://x/B0GOOD1_large.jpg"  # hi_res null
    assert items.at["B0GOOD2", "cover_url"] == "https://x/B0GOOD2_hi.jpg"  # HF dict of lists
    assert json.loads(items.at["B0GOOD2", "details"]) == {"Platform": "PC"}  # JSON string form
    assert json.loads(items.at["B0GOOD0", "details"]) == {"Release date": "May 1, 2020"}
    assert items.at["B0GOOD0", "description"] == "A controller for long sessions."
    # covers: clean RGB JPEGs are copied byte for byte, anything else re-encoded as PNG
    assert items.at["B0GOOD6", "image"] == "images/B0GOOD6.jpg"
    assert file_sha256(cat.image_path("B0GOOD6")) == file_sha256(root / "images/B0GOOD6.jpg")
    assert items.at["B0GOOD4", "image"] == "images/B0GOOD4.png"
    img = cat.load_image("B0GOOD4")
    assert img.mode == "RGB" and img.size == (40, 30)
    assert all(cat.image_path(i).is_relative_to(cat.root.resolve()) for i in items.index)


def test_first_of_repeated_pair_is_kept(amazon_raw, tmp_path: Path) -> None:
    root, expected = amazon_raw
    users, t0 = expected["core_users"], expected["t0"]
    inter = _load(root, tmp_path / "out").interactions.set_index(["user_id", "item_id"])
    assert not inter.index.duplicated().any()
    assert inter.loc[(users[1], "B0GOOD1"), "timestamp"] == t0 - 50_000
    assert inter.loc[(users[1], "B0GOOD1"), "rating"] == 1.0
    assert inter.loc[(users[0], "B0GOOD0"), "timestamp"] == t0 + 1000


def test_result_is_five_core_split_and_sampled(amazon_raw, tmp_path: Path) -> None:
    root, _ = amazon_raw
    cat = _load(root, tmp_path / "out", split="chrono")
    inter = cat.interactions
    assert inter.groupby("user_id").size().min() >= 5
    assert inter.groupby("item_id").size().min() >= 5
    assert set(inter["split"]) == {"train", "valid", "test"}
    cq, gr = cat.sample("cqbench"), cat.sample("grpo")
    assert len(cq) == 3 and len(gr) == 2 and not set(cq) & set(gr)


def test_unknown_category_and_missing_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="unknown category 'Books'"):
        load_amazon("Books", tmp_path, tmp_path, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match=r"Video_Games\.jsonl nor Video_Games\.jsonl\.gz"):
        load_amazon(CATEGORY, tmp_path, tmp_path, tmp_path / "out")


def test_nothing_left_is_an_error(tmp_path: Path) -> None:
    (tmp_path / f"{CATEGORY}.jsonl").write_text('{"user_id": "u", "parent_asin": "x"}\n')
    (tmp_path / f"meta_{CATEGORY}.jsonl").write_text("\n")
    with pytest.raises(CatalogError, match="no item of"):
        load_amazon(CATEGORY, tmp_path, tmp_path, tmp_path / "out")


def test_truncated_gzip_is_counted_not_raised(tmp_path: Path) -> None:
    payload = gzip.compress(b"".join(b'{"a": %d}\n' % i for i in range(2000)))
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(payload[: len(payload) // 2])
    dropped: Counter[str] = Counter()
    records = list(iter_records(path, dropped, "review"))
    assert 0 < len(records) < 2000
    assert dropped["review_truncated"] == 1


def test_main_image_url_forms() -> None:
    main = {"thumb": "t", "large": "L", "variant": "MAIN", "hi_res": "H"}
    assert main_image_url([{"variant": "PT01", "hi_res": "x"}, main]) == ("H", None)
    assert main_image_url([{**main, "hi_res": None}]) == ("L", None)
    assert main_image_url([{**main, "hi_res": ""}]) == ("L", None)
    assert main_image_url({"variant": ["MAIN"], "hi_res": [None], "large": ["L"]}) == ("L", None)
    assert main_image_url(None) == (None, "no_images")
    assert main_image_url({"variant": [], "hi_res": []}) == (None, "no_images")
    assert main_image_url([{"variant": "PT01"}]) == (None, "no_main_image")
    assert main_image_url([{"variant": "MAIN", "hi_res": None, "large": None}]) == (
        None,
        "no_cover_url",
    )


def test_parse_details_forms() -> None:
    assert parse_details({"a": 1}) == {"a": 1}
    assert parse_details('{"a": 1}') == {"a": 1}
    assert parse_details("not json") == {}
    assert parse_details("[1]") == {}
    assert parse_details(None) == {}


@pytest.mark.parametrize(
    "bad", ["../x", "..", ".hidden", "a/b", "a\\b", "", "x\x00y", None, 7, "\ufffdid"]
)
def test_unsafe_ids_are_rejected(tmp_path: Path, bad) -> None:
    assert safe_image_path(tmp_path, bad) is None


def test_safe_id_stays_inside(tmp_path: Path) -> None:
    assert safe_image_path(tmp_path, "B00X-1_a.b") == (tmp_path / "B00X-1_a.b.jpg").resolve()


def test_pixel_limit_guard(tmp_path: Path) -> None:
    path = tmp_path / "img.png"
    Image.new("RGB", (20, 20)).save(path)
    assert check_image(path, max_pixels=400) == ("PNG", None)
    assert check_image(path, max_pixels=399) == (None, "image_too_large")
