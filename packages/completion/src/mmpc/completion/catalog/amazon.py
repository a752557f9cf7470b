"""Amazon Reviews 2023 loader: raw ``{Cat}.jsonl[.gz]`` + ``meta_{Cat}.jsonl[.gz]`` + local covers.

Per category, two streaming passes (memory grows with the kept interactions and distinct ids,
never with file or line size):

1. Reviews: ``user_id``, ``parent_asin``, ``timestamp`` (ms) and ``rating`` of every well-formed
   line go into compact typed arrays (ids interned to integers).
2. Metadata: an item is kept when its id is safe as a file name, its unescaped title has at least
   5 characters, its ``MAIN`` image has a URL, it has at least ``k`` raw reviews (fewer can never
   survive the k-core, so its cover is not opened), and ``images_dir/{parent_asin}.jpg`` is a
   complete, decodable image within the pixel limit.

Then: interactions on kept items; the first of each repeated user-item pair; iterative k-core;
the split; the samples; covers copied into ``out/images`` (JPEG in RGB copied byte for byte, any
other image re-encoded as PNG at its own size); the catalogue files. Every skipped record is
counted by reason in ``manifest.json["dropped"]``.
"""

from __future__ import annotations

import json
import logging
import shutil
from array import array
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from mmpc.completion.catalog.format import IMAGES_DIR, Catalog, CatalogError, write_catalog
from mmpc.completion.catalog.kcore import drop_repeats, kcore
from mmpc.completion.catalog.rawio import (
    DEFAULT_MAX_PIXELS,
    check_image,
    clean_text,
    find_raw_file,
    iter_records,
    main_image_url,
    parse_details,
    safe_image_path,
)
from mmpc.completion.catalog.splits import draw_samples, split_interactions
from mmpc.completion.catalog.vocab import CATEGORIES
from mmpc.metrics.files import atomic_path

log = logging.getLogger(__name__)
SOURCE = "amazon-reviews-2023"
MIN_TITLE_CHARS = 5
META_COLUMNS = [
    "item_id",
    "category",
    "title",
    "description",
    "source_image",
    "source_format",
    "cover_url",
    "store",
    "main_category",
    "features",
    "categories",
    "price",
    "average_rating",
    "rating_number",
    "details",
]


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and np.isfinite(value):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def read_reviews(path: Path, dropped: Counter[str]) -> pd.DataFrame:
    """Stream a reviews file into (user_id, item_id, timestamp, rating, line) rows.

    Missing or null fields count ``review_missing_field``; present but unusable ones (a
    non-integer timestamp, a non-numeric rating, an empty id) count ``review_bad_field``.
    """
    user_codes: dict[str, int] = {}
    item_codes: dict[str, int] = {}
    users, items, stamps, ratings = array("i"), array("i"), array("q"), array("f")
    for rec in tqdm(
        iter_records(path, dropped, "review"),
        desc=f"reading {path.name}",
        unit=" lines",
        mininterval=2.0,
    ):
        user, item = rec.get("user_id"), rec.get("parent_asin")
        ts, rating = rec.get("timestamp"), rec.get("rating")
        if user is None or item is None or ts is None or rating is None:
            dropped["review_missing_field"] += 1
            continue
        ts, rating = _as_int(ts), _as_float(rating)
        if (
            not isinstance(user, str)
            or not isinstance(item, str)
            or not user
            or not item
            or ts is None
            or rating is None
        ):
            dropped["review_bad_field"] += 1
            continue
        users.append(user_codes.setdefault(user, len(user_codes)))
        items.append(item_codes.setdefault(item, len(item_codes)))
        stamps.append(ts)
        ratings.append(rating)
    user_names = np.array(list(user_codes), dtype=object)
    item_names = np.array(list(item_codes), dtype=object)
    return pd.DataFrame(
        {
            "user_id": user_names[np.frombuffer(users, np.int32)] if len(users) else [],
            "item_id": item_names[np.frombuffer(items, np.int32)] if len(items) else [],
            "timestamp": np.frombuffer(stamps, np.int64),
            "rating": np.frombuffer(ratings, np.float32),
        }
    )


def read_metadata(
    path: Path,
    category: str,
    review_counts: dict[str, int],
    images_dir: Path,
    dropped: Counter[str],
    *,
    k: int = 5,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> pd.DataFrame:
    """Stream a metadata file; return one row per kept item (reasons for the rest counted)."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rec in tqdm(
        iter_records(path, dropped, "meta"),
        desc=f"reading {path.name}",
        unit=" items",
        mininterval=2.0,
    ):
        item_id = rec.get("parent_asin")
        if not isinstance(item_id, str) or not item_id:
            dropped["meta_missing_parent_asin"] += 1
            continue
        if item_id in seen:
            dropped["meta_duplicate_item"] += 1
            continue
        seen.add(item_id)
        src = safe_image_path(images_dir, item_id)
        if src is None:
            dropped["unsafe_id"] += 1
            continue
        n_reviews = review_counts.get(item_id, 0)
        if n_reviews == 0:
            dropped["meta_item_without_reviews"] += 1
            continue
        title = clean_text(rec.get("title"))
        if len(title) < MIN_TITLE_CHARS:
            dropped["short_title"] += 1
            continue
        url, reason = main_image_url(rec.get("images"))
        if url is None:
            dropped[reason or "no_images"] += 1
            continue
        if n_reviews < k:
            dropped["item_fewer_than_k_reviews"] += 1
            continue
        fmt, reason = check_image(src, max_pixels)
        if fmt is None:
            dropped[reason or "image_corrupt"] += 1
            continue
        details = parse_details(rec.get("details"))
        rows.append(
            {
                "item_id": item_id,
                "category": category,
                "title": title,
                "description": clean_text(rec.get("description"))
                or clean_text(rec.get("features")),
                "source_image": str(src),
                "source_format": fmt,
                "cover_url": url,
                "store": clean_text(rec.get("store")),
                "main_category": clean_text(rec.get("main_category")),
                "features": clean_text(rec.get("features")),
                "categories": " > ".join(
                    c for c in rec.get("categories") or [] if isinstance(c, str)
                ),
                "price": str(rec["price"]) if rec.get("price") is not None else "",
                "average_rating": _as_float(rec.get("average_rating")),
                "rating_number": _as_int(rec.get("rating_number")),
                "details": json_dumps_sorted(details),
            }
        )
    return pd.DataFrame(rows, columns=META_COLUMNS)


def json_dumps_sorted(obj: Any) -> str:
    """Deterministic JSON text of ``obj`` (non-JSON values written as strings)."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)


def _copy_cover(src: Path, fmt: str, out: Path, item_id: str) -> str:
    """Put the cover of ``item_id`` in ``out/images``; returns its path relative to ``out``."""
    dest_dir = out / IMAGES_DIR
    dest_dir.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as img:
        verbatim = fmt == "JPEG" and img.mode == "RGB"
        rel = f"{IMAGES_DIR}/{item_id}.{'jpg' if verbatim else 'png'}"
        # One cover per item, thousands of them: no fsync per file (a rerun copies it again).
        with atomic_path(out / rel, fsync=False) as tmp:
            if verbatim:
                shutil.copyfile(src, tmp)
            else:
                img.convert("RGB").save(tmp, "PNG")
    return rel


def load_category(
    category: str,
    raw_dir: Path,
    images_dir: Path,
    dropped: Counter[str],
    *,
    k: int = 5,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, interactions) of one category after filtering, repeats and the k-core."""
    reviews = read_reviews(find_raw_file(raw_dir, category), dropped)
    counts = reviews["item_id"].value_counts().to_dict()
    items = read_metadata(
        find_raw_file(raw_dir, f"meta_{category}"),
        category,
        counts,
        Path(images_dir),
        dropped,
        k=k,
        max_pixels=max_pixels,
    )
    kept_ids = set(items["item_id"])
    on_kept = reviews["item_id"].isin(kept_ids)
    dropped["review_item_not_kept"] += int((~on_kept).sum())
    inter, repeats = drop_repeats(reviews[on_kept])
    dropped["repeat_interaction"] += repeats
    cored = kcore(inter, k)
    dropped["kcore_interaction"] += len(inter) - len(cored)
    survivors = set(cored["item_id"])
    dropped["kcore_item"] += len(kept_ids - survivors)
    items = items[items["item_id"].isin(survivors)]
    log.info(
        "%s: %d items, %d users, %d interactions after %d-core",
        category,
        len(items),
        cored["user_id"].nunique(),
        len(cored),
        k,
    )
    return items, cored


def load_amazon(
    categories: str | Sequence[str],
    raw_dir: str | Path,
    images_dir: str | Path,
    out: str | Path,
    *,
    seed: int = 0,
    k: int = 5,
    split: str = "random",
    cqbench_n: int = 1000,
    grpo_n: int = 500,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Catalog:
    """Build a catalogue folder from local Amazon Reviews 2023 files.

    Args:
        categories: one or more of the nine category names (e.g. "Video_Games").
        raw_dir: folder with ``{Cat}.jsonl[.gz]`` and ``meta_{Cat}.jsonl[.gz]``.
        images_dir: folder with ``{parent_asin}.jpg`` covers (see ``mmpc data fetch-images``).
        out: the catalogue folder to write.
        seed: seed of the random split and the samples.
        k: the k of the k-core (5 in the paper).
        split: "random" (MMRec), "chrono" (per user, by time) or "absolute" (official cut-offs).
        cqbench_n, grpo_n: sample sizes per category (fewer when a category is smaller).
        max_pixels: covers with more pixels are dropped (decompression-bomb guard).
    """
    cats = [categories] if isinstance(categories, str) else list(categories)
    unknown = [c for c in cats if c not in CATEGORIES]
    if unknown:
        raise CatalogError(f"unknown category {unknown[0]!r} (expected one of {CATEGORIES})")
    out = Path(out)
    dropped: Counter[str] = Counter()
    all_items, all_inter = [], []
    seen: set[str] = set()
    for cat in cats:
        items, inter = load_category(
            cat, Path(raw_dir), Path(images_dir), dropped, k=k, max_pixels=max_pixels
        )
        clash = items["item_id"].isin(seen)
        if clash.any():
            dropped["duplicate_item_across_categories"] += int(clash.sum())
            inter = inter[~inter["item_id"].isin(set(items.loc[clash, "item_id"]))]
            items = items[~clash]
        seen.update(items["item_id"])
        all_items.append(items)
        all_inter.append(inter)
    items = pd.concat(all_items, ignore_index=True)
    inter = pd.concat(all_inter, ignore_index=True)
    if not len(items):
        raise CatalogError(f"{raw_dir}: no item of {cats} survives the filters ({dict(dropped)})")
    items["image"] = [
        _copy_cover(Path(s), f, out, i)
        for s, f, i in tqdm(
            zip(items["source_image"], items["source_format"], items["item_id"], strict=True),
            total=len(items),
            desc="copying covers",
            mininterval=2.0,
        )
    ]
    items = items.drop(columns=["source_image", "source_format"])
    inter = inter.assign(split=split_interactions(inter, split, seed=seed))
    samples = draw_samples(items, cqbench_n=cqbench_n, grpo_n=grpo_n, seed=seed)
    return write_catalog(
        out,
        items,
        inter,
        samples,
        source=SOURCE,
        seed=seed,
        preset=None,
        dropped=dropped,
        extra={"categories": cats, "k": k, "split_method": split, "max_pixels": max_pixels},
    )
