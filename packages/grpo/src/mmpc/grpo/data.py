"""``GRPODataModule``: the catalogue's GRPO sample as batches of prompts (item records).

Each record is ``{"item_id", "category", "title", "image"}`` (``image`` a PIL RGB cover): the i2t
prompt shows the image and the title-similarity reward reads ``title``; the t2i prompt reads the
title and the image-similarity reward reads ``image``. The GRPO sample must be disjoint from the
CQBench sample (PROTOCOL.md, Data); that is checked when the data module is set up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from mmpc.completion.catalog import Catalog, CatalogError, synthesize

__all__ = ["CatalogItems", "GRPODataModule"]


class CatalogItems(Dataset):
    """Item records of ``item_ids`` from ``catalog`` (covers read on access)."""

    def __init__(self, catalog: Catalog, item_ids: list[str]) -> None:
        self.catalog, self.item_ids = catalog, list(item_ids)

    def __len__(self) -> int:
        return len(self.item_ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item_id = self.item_ids[index]
        row = self.catalog.items.loc[item_id]
        return {
            "item_id": item_id,
            "category": str(row["category"]),
            "title": str(row["title"]),
            "image": self.catalog.load_image(item_id),
        }


def _as_list(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return batch


class GRPODataModule(LightningDataModule):
    """Batches of ``batch_size`` prompts from the catalogue's ``grpo`` sample, reshuffled per epoch.

    Args:
        catalog: the catalogue folder.
        task: ``i2t`` or ``t2i`` (both read the same records; kept for config linking).
        batch_size: prompts per GRPO step (each gets G completions).
        max_items: keep at most this many items (a seeded random subset), e.g. for a demo.
        categories: only these categories (default all).
        seed: shuffling and subset seed.
        val_items: hold this many items of the sample out of training (a seeded random pick,
            the same for every step count) and answer them greedily in validation, so the
            reward curve of the same items shows the policy's progress (0: no validation).
        val_batch_size: items per validation batch (default: all ``val_items`` at once).
        num_workers: DataLoader workers.
        synthesize_preset: when ``catalog`` does not exist yet, generate the synthetic catalogue
            with this preset there first (``tiny``, ``demo``, ``paper``); ``None`` requires it.
    """

    def __init__(
        self,
        catalog: str,
        task: Literal["i2t", "t2i"] = "t2i",
        batch_size: int = 1,
        max_items: int | None = None,
        categories: list[str] | None = None,
        seed: int = 0,
        val_items: int = 0,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        synthesize_preset: str | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if val_items < 0:
            raise ValueError(f"val_items must be >= 0, got {val_items}")
        self.save_hyperparameters()
        self.dataset: CatalogItems | None = None
        self.val_dataset: CatalogItems | None = None

    def prepare_data(self) -> None:
        root = Path(self.hparams.catalog)
        if not (root / "manifest.json").is_file() and self.hparams.synthesize_preset:
            synthesize(self.hparams.synthesize_preset, seed=self.hparams.seed, out=root)

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        self.prepare_data()
        catalog = Catalog.open(self.hparams.catalog)
        ids = catalog.sample("grpo")
        overlap = sorted(set(ids) & set(catalog.sample("cqbench")))
        if overlap:
            raise CatalogError(
                f"{catalog.root}: GRPO and CQBench samples share {len(overlap)} items "
                f"(e.g. {overlap[0]!r}); they must be disjoint"
            )
        if self.hparams.categories:
            unknown = sorted(set(self.hparams.categories) - set(catalog.categories))
            if unknown:
                raise CatalogError(f"{catalog.root}: unknown categories {unknown}")
            keep = set(self.hparams.categories)
            ids = [i for i in ids if catalog.items.at[i, "category"] in keep]
        if self.hparams.max_items is not None and len(ids) > self.hparams.max_items:
            rng = np.random.default_rng(self.hparams.seed)
            ids = sorted(rng.choice(ids, size=self.hparams.max_items, replace=False).tolist())
        if not ids:
            raise CatalogError(f"{catalog.root}: the GRPO sample is empty")
        held = _held_out(ids, self.hparams.val_items, self.hparams.seed)
        train = [i for i in ids if i not in held]
        if len(train) < self.hparams.batch_size:
            raise CatalogError(
                f"{catalog.root}: {len(train)} GRPO items left for training after holding out "
                f"val_items={self.hparams.val_items}, fewer than batch_size "
                f"{self.hparams.batch_size}"
            )
        self.dataset = CatalogItems(catalog, train)
        self.val_dataset = CatalogItems(catalog, sorted(held)) if held else None

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        generator = torch.Generator().manual_seed(self.hparams.seed)
        return DataLoader(
            self.dataset,
            batch_size=self.hparams.batch_size,
            shuffle=True,
            generator=generator,
            collate_fn=_as_list,
            num_workers=self.hparams.num_workers,
        )

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """The held-out items (``val_items``) in order; no loader (no validation) without them."""
        self.setup("validate")
        if self.val_dataset is None:
            return []
        return DataLoader(
            self.val_dataset,
            batch_size=self.hparams.val_batch_size or len(self.val_dataset),
            shuffle=False,
            collate_fn=_as_list,
            num_workers=self.hparams.num_workers,
        )


def _held_out(ids: list[str], n: int, seed: int) -> set[str]:
    """``n`` of ``ids`` picked with a generator of its own (the training order is untouched)."""
    if n <= 0:
        return set()
    if n >= len(ids):
        raise CatalogError(f"val_items={n} leaves none of the {len(ids)} GRPO items to train on")
    rng = np.random.default_rng([seed, 1])
    return set(rng.choice(sorted(ids), size=n, replace=False).tolist())
