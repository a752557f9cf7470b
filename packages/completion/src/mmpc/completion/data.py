"""``CompletionDataModule``: the items to complete, holding only their unmasked modality.

For ``i2t`` a batch is ``{"item_id": [str], "image": [PIL.Image]}`` (the title is masked); for
``t2i`` it is ``{"item_id": [str], "title": [str]}`` (the image is masked). Items come from a
catalogue folder (:class:`mmpc.completion.catalog.Catalog`), by default its CQBench sample, in
sorted id order; items that already have a record (reported by the prediction writer through
:meth:`CompletionDataModule.skip_items`) are left out, so a restarted run only does the rest.
Under DDP, Lightning shards the dataset without repeating items (predict uses an unrepeated
distributed sampler).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from mmpc.completion.catalog import Catalog

__all__ = ["CompletionDataModule", "ItemDataset", "collate_items"]

Task = Literal["i2t", "t2i"]


class ItemDataset(Dataset):
    """One catalogue item per index, with only the unmasked modality (covers read lazily)."""

    def __init__(self, catalog: Catalog, item_ids: list[str], task: Task) -> None:
        self.catalog, self.item_ids, self.task = catalog, item_ids, task

    def __len__(self) -> int:
        return len(self.item_ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item_id = self.item_ids[index]
        if self.task == "i2t":
            return {"item_id": item_id, "image": self.catalog.load_image(item_id)}
        return {"item_id": item_id, "title": str(self.catalog.items.at[item_id, "title"])}


def collate_items(items: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Dict of lists (PIL images and strings stay Python objects)."""
    return {key: [item[key] for item in items] for key in items[0]} if items else {}


class CompletionDataModule(LightningDataModule):
    """Batches of items whose other modality is to be completed.

    Args:
        catalog: the catalogue folder.
        task: ``"i2t"`` (image → title) or ``"t2i"`` (title → image).
        sample: the catalogue sample to complete (``"cqbench"`` or ``"grpo"``); ignored when
            ``item_ids`` is given.
        category: only items of this category.
        item_ids: an explicit list of items instead of a sample.
        limit: only the first ``limit`` items (in sorted id order) of the selection.
        batch_size: items per batch.
        num_workers: DataLoader workers (covers are decoded in the workers).
        shard / num_shards: complete only the batches ``b`` with ``b % num_shards == shard``,
            batches counted over the whole selection, so every shard's batches are those of an
            unsharded run and the shards together cover the selection once.
    """

    def __init__(
        self,
        catalog: str,
        task: Task = "i2t",
        sample: str = "cqbench",
        category: str | None = None,
        item_ids: list[str] | None = None,
        limit: int | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
        shard: int = 0,
        num_shards: int = 1,
    ) -> None:
        super().__init__()
        if task not in ("i2t", "t2i"):
            raise ValueError(f"unknown task {task!r}: expected 'i2t' or 't2i'")
        if batch_size < 1 or (limit is not None and limit < 0):
            raise ValueError(f"batch_size must be >= 1 and limit >= 0 (got {batch_size}, {limit})")
        if not 0 <= shard < num_shards:
            raise ValueError(f"shard {shard} is not in [0, num_shards={num_shards})")
        self.catalog_root = catalog
        self.task = task
        self.sample = sample
        self.category = category
        self.item_ids = list(item_ids) if item_ids is not None else None
        self.limit = limit
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.shard, self.num_shards = shard, num_shards
        self.catalog: Catalog | None = None
        self.sample_ids: list[str] = []
        self._skip: set[str] = set()

    def setup(self, stage: str | None = None) -> None:
        if self.catalog is not None:
            return
        catalog = Catalog.open(self.catalog_root)
        if self.item_ids is not None:
            unknown = [i for i in self.item_ids if i not in catalog.items.index]
            if unknown:
                raise ValueError(f"{self.catalog_root}: unknown item ids {unknown[:5]}")
            ids = sorted(set(self.item_ids))
            if self.category is not None:
                ids = [i for i in ids if catalog.items.at[i, "category"] == self.category]
        else:
            ids = catalog.sample(self.sample, self.category)
        if self.limit is not None:
            ids = ids[: self.limit]
        self.catalog, self.sample_ids = catalog, ids

    def skip_items(self, done: Iterable[str]) -> list[str]:
        """Leave out items already done; returns those of the selection that will be skipped."""
        self._skip = set(done)
        return [i for i in self.sample_ids if i in self._skip]

    @property
    def pending_ids(self) -> list[str]:
        """This shard's part of the selection minus the skipped items, in order."""
        return [
            item
            for k, item in enumerate(self.sample_ids)
            if (k // self.batch_size) % self.num_shards == self.shard and item not in self._skip
        ]

    def predict_dataloader(self) -> DataLoader:
        if self.catalog is None:
            self.setup("predict")
        dataset = ItemDataset(self.catalog, self.pending_ids, self.task)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate_items,
            persistent_workers=False,
        )
