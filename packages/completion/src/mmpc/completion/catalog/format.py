"""The on-disk catalogue format: one folder, validated on open, written atomically.

Layout (binding contract, see ``docs/CONTRACTS.md``)::

    <root>/manifest.json         format_version, source, synthetic, seed, preset, counts,
                                 dropped {reason: n}, hashes {file: sha256}
    <root>/items.parquet         item_id, category, title, description, image (+ attributes)
    <root>/interactions.parquet  user_id, item_id, timestamp (int64 ms), rating (float32), split
    <root>/samples.parquet       item_id, sample ("cqbench" | "grpo"), disjoint
    <root>/images/               one cover per item, referenced by items.image

``manifest.json`` is written last, so a folder without it is an unfinished write. Parquet files are
written deterministically (fixed row order, fixed writer options), so the same inputs give the same
bytes and the same hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from mmpc.metrics.errors import InputError
from mmpc.metrics.files import atomic_write_bytes, atomic_write_json, file_sha256

FORMAT_VERSION = 1
ITEMS_FILE = "items.parquet"
INTERACTIONS_FILE = "interactions.parquet"
SAMPLES_FILE = "samples.parquet"
MANIFEST_FILE = "manifest.json"
IMAGES_DIR = "images"
ITEM_COLUMNS = ("item_id", "category", "title", "description", "image")
INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "rating", "split")
SAMPLE_COLUMNS = ("item_id", "sample")
SPLITS = ("train", "valid", "test")
SAMPLES = ("cqbench", "grpo")
SYNTHETIC_SOURCE = "synthetic"


class CatalogError(InputError):
    """A catalogue folder or table is invalid; the message names the file and what is wrong."""


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` (row order as given, no index) as parquet, deterministically, atomically."""
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", write_statistics=False, use_dictionary=True)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def images_digest(root: Path, rel_paths: Iterable[str]) -> str:
    """One sha256 over all covers: sha256 of the sorted lines ``"<rel path> <sha256 of file>"``."""
    lines = [f"{rel} {file_sha256(root / rel)}" for rel in sorted(set(rel_paths))]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def safe_join(root: Path, rel: str) -> Path:
    """``root / rel`` resolved, or ``CatalogError`` when it would leave ``root``."""
    root_resolved = root.resolve()
    path = (root_resolved / rel).resolve()
    if not path.is_relative_to(root_resolved) or path == root_resolved:
        raise CatalogError(f"{root}: path {rel!r} escapes the catalogue folder")
    return path


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], file: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CatalogError(f"{file}: missing column(s) {', '.join(missing)}")


def validate_tables(items: pd.DataFrame, interactions: pd.DataFrame, samples: pd.DataFrame) -> None:
    """Check the three tables against the contract; raise ``CatalogError`` naming the first fault.

    Contract: unique non-empty string item ids; every interaction's item is an item; timestamps are
    integers; splits in ``SPLITS``; samples in ``SAMPLES``, sampled items exist and the two samples
    are disjoint; image paths are relative.
    """
    _require_columns(items, ITEM_COLUMNS, ITEMS_FILE)
    _require_columns(interactions, INTERACTION_COLUMNS, INTERACTIONS_FILE)
    _require_columns(samples, SAMPLE_COLUMNS, SAMPLES_FILE)
    ids = items["item_id"]
    if ids.isna().any() or (ids.astype(str) == "").any():
        raise CatalogError(f"{ITEMS_FILE}: empty item_id")
    dup = ids[ids.duplicated()]
    if len(dup):
        raise CatalogError(f"{ITEMS_FILE}: duplicate item_id {dup.iloc[0]!r}")
    for col in ("title", "image", "category"):
        if items[col].isna().any():
            bad = items.loc[items[col].isna(), "item_id"].iloc[0]
            raise CatalogError(f"{ITEMS_FILE}: item {bad!r} has no {col}")
    absolute = items["image"].map(lambda p: Path(p).is_absolute() or ".." in Path(p).parts)
    if absolute.any():
        bad = items.loc[absolute, "item_id"].iloc[0]
        raise CatalogError(f"{ITEMS_FILE}: item {bad!r} has an image path outside the folder")
    known = set(ids)
    unknown = ~interactions["item_id"].isin(known)
    if unknown.any():
        bad = interactions.loc[unknown, "item_id"].iloc[0]
        raise CatalogError(f"{INTERACTIONS_FILE}: item {bad!r} is not in {ITEMS_FILE}")
    if not pd.api.types.is_integer_dtype(interactions["timestamp"]):
        raise CatalogError(f"{INTERACTIONS_FILE}: timestamp must be int64 milliseconds")
    bad_split = ~interactions["split"].isin(SPLITS)
    if bad_split.any():
        raise CatalogError(
            f"{INTERACTIONS_FILE}: split {interactions.loc[bad_split, 'split'].iloc[0]!r} "
            f"not in {SPLITS}"
        )
    bad_sample = ~samples["sample"].isin(SAMPLES)
    if bad_sample.any():
        raise CatalogError(
            f"{SAMPLES_FILE}: sample {samples.loc[bad_sample, 'sample'].iloc[0]!r} not in {SAMPLES}"
        )
    unknown = ~samples["item_id"].isin(known)
    if unknown.any():
        raise CatalogError(
            f"{SAMPLES_FILE}: item {samples.loc[unknown, 'item_id'].iloc[0]!r} is not an item"
        )
    twice = samples["item_id"][samples["item_id"].duplicated()]
    if len(twice):
        raise CatalogError(
            f"{SAMPLES_FILE}: item {twice.iloc[0]!r} is in more than one sample (must be disjoint)"
        )


@dataclass
class Catalog:
    """A validated catalogue folder held in memory (covers are read lazily).

    Attributes:
        root: the folder.
        items: items table indexed by ``item_id``.
        interactions: interactions table (user_id, item_id, timestamp, rating, split).
        samples: samples table (item_id, sample).
        manifest: the parsed ``manifest.json``.
    """

    root: Path
    items: pd.DataFrame
    interactions: pd.DataFrame
    samples: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, root: str | os.PathLike[str], *, verify_hashes: bool = True) -> Catalog:
        """Read and validate the catalogue at ``root``.

        Args:
            root: the catalogue folder.
            verify_hashes: compare the parquet files with the manifest's sha256 values.

        Raises:
            CatalogError: one line naming the file and the fault.
        """
        root = Path(root)
        if not root.is_dir():
            raise CatalogError(f"{root}: not a catalogue folder (does not exist)")
        manifest_path = root / MANIFEST_FILE
        if not manifest_path.is_file():
            raise CatalogError(f"{manifest_path}: missing (unfinished or not a catalogue)")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CatalogError(f"{manifest_path}: not valid JSON ({err})") from None
        for key in ("format_version", "source", "synthetic", "counts", "dropped", "hashes"):
            if key not in manifest:
                raise CatalogError(f"{manifest_path}: missing key {key!r}")
        if manifest["format_version"] != FORMAT_VERSION:
            raise CatalogError(
                f"{manifest_path}: format_version {manifest['format_version']!r} is not "
                f"{FORMAT_VERSION}"
            )
        tables = {}
        for name in (ITEMS_FILE, INTERACTIONS_FILE, SAMPLES_FILE):
            path = root / name
            if not path.is_file():
                raise CatalogError(f"{path}: missing")
            if (
                verify_hashes
                and name in manifest["hashes"]
                and file_sha256(path) != manifest["hashes"][name]
            ):
                raise CatalogError(f"{path}: sha256 differs from manifest.json (modified?)")
            try:
                tables[name] = pd.read_parquet(path)
            except (OSError, pa.ArrowException) as err:
                raise CatalogError(f"{path}: unreadable parquet ({err})") from None
        items, inter, samples = tables[ITEMS_FILE], tables[INTERACTIONS_FILE], tables[SAMPLES_FILE]
        validate_tables(items, inter, samples)
        return cls(root, items.set_index("item_id", drop=False), inter, samples, manifest)

    @property
    def is_synthetic(self) -> bool:
        """True when the catalogue was generated by ``synthesize`` (reports must say so)."""
        return bool(self.manifest.get("synthetic", False))

    @property
    def categories(self) -> list[str]:
        """Sorted category names."""
        return sorted(self.items["category"].unique())

    def sample(self, name: str, category: str | None = None) -> list[str]:
        """Item ids of sample ``name`` ("cqbench" or "grpo"), sorted, optionally one category."""
        if name not in SAMPLES:
            raise CatalogError(f"{self.root}: unknown sample {name!r} (expected one of {SAMPLES})")
        ids = self.samples.loc[self.samples["sample"] == name, "item_id"]
        if category is not None:
            ids = ids[self.items.loc[ids, "category"].to_numpy() == category]
        return sorted(ids)

    def image_path(self, item_id: str) -> Path:
        """Absolute path of ``item_id``'s cover, checked to stay inside the catalogue folder."""
        if item_id not in self.items.index:
            raise KeyError(f"{self.root}: unknown item {item_id!r}")
        return safe_join(self.root, str(self.items.at[item_id, "image"]))

    def load_image(self, item_id: str) -> Image.Image:
        """The cover of ``item_id`` as an RGB PIL image (fully loaded, file closed)."""
        path = self.image_path(item_id)
        try:
            with Image.open(path) as img:
                return img.convert("RGB")
        except (OSError, Image.DecompressionBombError) as err:
            raise CatalogError(f"{path}: cover of item {item_id!r} unreadable ({err})") from None

    def summary(self) -> dict[str, Any]:
        """Counts per category (items, users, interactions, samples) for ``mmpc data info``."""
        inter = self.interactions.merge(
            self.items[["category"]], left_on="item_id", right_index=True
        )
        rows = {}
        for cat in self.categories:
            sub = inter[inter["category"] == cat]
            rows[cat] = {
                "items": int((self.items["category"] == cat).sum()),
                "users": int(sub["user_id"].nunique()),
                "interactions": len(sub),
                "cqbench": len(self.sample("cqbench", cat)),
                "grpo": len(self.sample("grpo", cat)),
            }
        return rows


def write_catalog(
    root: Path,
    items: pd.DataFrame,
    interactions: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    source: str,
    seed: int | None,
    preset: str | None,
    dropped: Mapping[str, int],
    extra: Mapping[str, Any] | None = None,
) -> Catalog:
    """Validate and write the three tables and the manifest (last); the covers must already exist.

    Rows are sorted (items by item_id; interactions by user_id, timestamp, item_id; samples by
    sample, item_id) so equal content gives equal bytes. Returns the re-opened ``Catalog``.
    """
    root = Path(root)
    items = items.sort_values("item_id", kind="stable").reset_index(drop=True)
    interactions = interactions.sort_values(
        ["user_id", "timestamp", "item_id"], kind="stable"
    ).reset_index(drop=True)
    interactions["timestamp"] = interactions["timestamp"].astype("int64")
    interactions["rating"] = interactions["rating"].astype("float32")
    samples = samples.sort_values(["sample", "item_id"], kind="stable").reset_index(drop=True)
    validate_tables(items, interactions, samples)
    for item_id, rel in zip(items["item_id"], items["image"], strict=True):
        if not safe_join(root, rel).is_file():
            raise CatalogError(f"{root / rel}: cover of item {item_id!r} is missing")
    write_parquet(root / ITEMS_FILE, items)
    write_parquet(root / INTERACTIONS_FILE, interactions)
    write_parquet(root / SAMPLES_FILE, samples)
    hashes = {
        name: file_sha256(root / name) for name in (ITEMS_FILE, INTERACTIONS_FILE, SAMPLES_FILE)
    }
    hashes[IMAGES_DIR] = images_digest(root, items["image"])
    counts = {
        "items": len(items),
        "users": int(interactions["user_id"].nunique()),
        "interactions": len(interactions),
        "categories": int(items["category"].nunique()),
        "splits": {s: int((interactions["split"] == s).sum()) for s in SPLITS},
        "samples": {s: int((samples["sample"] == s).sum()) for s in SAMPLES},
    }
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "source": source,
        "synthetic": source == SYNTHETIC_SOURCE,
        "seed": seed,
        "preset": preset,
        "counts": counts,
        "dropped": {k: int(v) for k, v in sorted(dropped.items())},
        "hashes": hashes,
    }
    manifest.update(extra or {})
    atomic_write_json(root / MANIFEST_FILE, manifest, sort_keys=True)
    return Catalog.open(root)
