"""Interaction data for the recommenders: readers, CSR splits, BPR sampling, evaluation users.

Two on-disk formats are read:

* **MMRec**: a folder with one ``*.inter`` file (tab-separated, header with ``userID``,
  ``itemID`` and ``x_label`` = 0/1/2 for train/valid/test; integer ids, row i of a feature file =
  item i) and optional ``text_feat.npy`` / ``image_feat.npy``.
* **Catalogue** (``docs/CONTRACTS.md``): ``interactions.parquet`` with string ``user_id``,
  ``item_id`` and ``split`` columns, plus a feature folder with ``text_feat.npy`` /
  ``image_feat.npy`` and ``item_ids.txt`` (row order). Items are indexed in ``item_ids.txt`` order
  (sorted ids when there is no feature folder); users in sorted order.

``InteractionDataModule`` knows ``num_users``, ``num_items`` and ``feature_dims`` right after
construction (ids are counted and ``.npy`` headers read via ``mmap_mode="r"``), so LightningCLI can
link them into the model.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from mmpc.metrics.errors import InputError
from mmpc.recsys.types import CSR, MODALITIES, SPLITS, InteractionData


def sample_negatives(
    train: CSR, users: Tensor, pool: Tensor, generator: torch.Generator, max_rounds: int = 1000
) -> Tensor:
    """One negative item per user, uniform over ``pool`` minus the user's train items.

    Draw for everyone, then redraw only the collisions (vectorised), as MMRec's loop does one by
    one. ``pool`` is MMRec's candidate set: the items seen in training.

    Raises:
        ValueError: a user trained on every item of the pool (no negative exists).
    """
    full = train.degrees()[users] >= pool.numel()
    if bool(full.any()):
        bad = int(users[full][0])
        raise ValueError(f"user {bad} trained on all {pool.numel()} items: no negative to sample")
    neg = pool[torch.randint(pool.numel(), (users.numel(),), generator=generator)]
    todo = torch.nonzero(train.contains(users, neg)).flatten()
    for _ in range(max_rounds):
        if todo.numel() == 0:
            return neg
        neg[todo] = pool[torch.randint(pool.numel(), (todo.numel(),), generator=generator)]
        todo = todo[train.contains(users[todo], neg[todo])]
    raise RuntimeError(f"negative sampling did not converge in {max_rounds} rounds")


def _shard() -> tuple[int, int]:
    """(rank, world size) of this DDP process; (0, 1) when not distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class BPRBatches(IterableDataset):
    """Per-epoch shuffled train pairs with fresh negatives, as (users, pos, neg) batches.

    Epoch e uses ``torch.Generator().manual_seed(seed + e)``, identical on every DDP rank; rank r
    takes every world-th pair of the permutation. ``neg`` is absent when ``negatives`` is False.
    """

    def __init__(self, train: CSR, batch_size: int, seed: int, negatives: bool = True) -> None:
        super().__init__()
        self.train = train
        self.users = train.row_ids()
        self.items = train.indices
        self.pool = torch.unique(self.items)
        self.batch_size = batch_size
        self.seed = seed
        self.negatives = negatives
        self.epoch = 0

    def __len__(self) -> int:
        _, world = _shard()
        return math.ceil(math.ceil(self.items.numel() / world) / self.batch_size)

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        rank, world = _shard()
        perm = torch.randperm(self.items.numel(), generator=gen)
        users, pos = self.users[perm], self.items[perm]
        neg = sample_negatives(self.train, users, self.pool, gen) if self.negatives else None
        users, pos = users[rank::world], pos[rank::world]
        neg = neg[rank::world] if neg is not None else None
        for start in range(0, users.numel(), self.batch_size):
            sl = slice(start, start + self.batch_size)
            yield (users[sl], pos[sl], neg[sl]) if neg is not None else (users[sl], pos[sl])


class EvalUsers(IterableDataset):
    """Chunks of evaluation users (users with items in the split), sharded over DDP ranks."""

    def __init__(self, users: Tensor, batch_size: int) -> None:
        super().__init__()
        self.users = users
        self.batch_size = batch_size

    def __len__(self) -> int:
        _, world = _shard()
        return math.ceil(math.ceil(self.users.numel() / world) / self.batch_size)

    def __iter__(self):
        rank, world = _shard()
        mine = self.users[rank::world]
        for start in range(0, mine.numel(), self.batch_size):
            yield mine[start : start + self.batch_size]


def _check_inside(folder: Path, name: str) -> Path:
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise InputError(f"{folder}: file name {name!r} leaves the folder")
    return path


def _read_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """A feature matrix file; a corrupt one is the user's input error naming the file."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise InputError("corrupt feature file (not a NumPy .npy array)", path) from None


def _npy_shape(path: Path) -> tuple[int, ...]:
    return tuple(_read_npy(path, mmap=True).shape)


class InteractionDataModule(L.LightningDataModule):
    """Interactions + item features for VBPR / BM3 / FREEDOM.

    Args:
        root: MMRec folder (one ``*.inter``) or catalogue folder (``interactions.parquet``).
        feature_dir: folder with ``text_feat.npy`` / ``image_feat.npy`` (+ ``item_ids.txt`` for
            the catalogue format). Default: ``root`` for MMRec, ``root/features`` for catalogues
            (if it exists).
        modalities: which feature files to use (a subset of ``("text", "image")``).
        batch_size: training pairs per batch (MMRec: 2048).
        eval_batch_size: users per evaluation chunk.
        seed: seed of the per-epoch shuffling and negative sampling.
        mask_valid_at_test: mask each user's validation items when ranking for test (default).
            MMRec does not (``False`` = MMRec-compatible evaluation).
    """

    def __init__(
        self,
        root: str | Path,
        feature_dir: str | Path | None = None,
        modalities: tuple[str, ...] | list[str] = MODALITIES,
        batch_size: int = 2048,
        eval_batch_size: int = 4096,
        seed: int = 999,
        mask_valid_at_test: bool = True,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.mask_valid_at_test = mask_valid_at_test
        self.negatives = True
        bad = set(modalities) - set(MODALITIES)
        if bad:
            raise InputError(f"unknown modalities {sorted(bad)}; use a subset of {MODALITIES}")
        self.modalities = tuple(modalities)
        if not self.root.exists():
            raise InputError("interaction folder does not exist", self.root)
        if not self.root.is_dir():
            raise InputError("interaction folder is a file, not a folder", self.root)
        inter = sorted(self.root.glob("*.inter"))
        parquet = self.root / "interactions.parquet"
        if parquet.is_file():
            self.format = "catalogue"
            self._path = parquet
            default_features = self.root / "features"
        elif len(inter) == 1:
            self.format = "mmrec"
            self._path = inter[0]
            default_features = self.root
        else:
            found = [p.name for p in inter]
            raise InputError(
                f"not an MMRec or catalogue folder: expected interactions.parquet or exactly one "
                f"*.inter file, found {found}",
                self.root,
            )
        self.feature_dir = Path(feature_dir) if feature_dir is not None else default_features
        self._frame = self._read_ids()
        self._index_ids()
        self.feature_dims: dict[str, int] = {}
        for modality in self.modalities:
            path = self.feature_dir / f"{modality}_feat.npy"
            if path.is_file():
                shape = _npy_shape(path)
                if len(shape) != 2 or shape[0] != self.num_items:
                    raise InputError(f"{path}: expected shape ({self.num_items}, d), got {shape}")
                self.feature_dims[modality] = int(shape[1])
        self.data: InteractionData | None = None

    def _read_ids(self) -> pd.DataFrame:
        try:
            return self._read_id_table()
        except InputError:
            raise
        except (ValueError, OSError) as err:  # pandas / pyarrow: malformed table
            reason = " ".join(str(err).split())
            raise InputError(f"unreadable table ({reason})", self._path) from None

    def _read_id_table(self) -> pd.DataFrame:
        if self.format == "mmrec":
            header = pd.read_csv(self._path, sep="\t", nrows=0).columns
            missing = sorted({"userID", "itemID", "x_label"} - set(header))
            if missing:
                raise InputError(f"{self._path}: missing column(s) {missing}")
            frame = pd.read_csv(self._path, sep="\t", usecols=["userID", "itemID", "x_label"])
            frame.columns = ["user", "item", "split"]
            if not frame["split"].isin([0, 1, 2]).all():
                raise InputError(f"{self._path}: x_label must be 0, 1 or 2")
            if (frame[["user", "item"]] < 0).any().any():
                raise InputError(f"{self._path}: negative user or item id")
            return frame
        names = set(pq.read_schema(self._path).names)
        missing = sorted({"user_id", "item_id", "split"} - names)
        if missing:
            raise InputError(f"{self._path}: missing column(s) {missing}")
        frame = pd.read_parquet(self._path, columns=["user_id", "item_id", "split"])
        frame.columns = ["user", "item", "split"]
        unknown = set(frame["split"].unique()) - set(SPLITS)
        if unknown:
            raise InputError(f"{self._path}: unknown split values {sorted(unknown)}")
        frame["split"] = frame["split"].map({s: i for i, s in enumerate(SPLITS)})
        return frame

    def _index_ids(self) -> None:
        frame = self._frame
        if self.format == "mmrec":
            self.user_ids = self.item_ids = None
            self.num_users = int(frame["user"].max()) + 1
            self.num_items = int(frame["item"].max()) + 1
            feat_rows = [
                _npy_shape(self.feature_dir / f"{m}_feat.npy")[0]
                for m in self.modalities
                if (self.feature_dir / f"{m}_feat.npy").is_file()
            ]
            self.num_items = max([self.num_items, *feat_rows])
            self._users = frame["user"].to_numpy(np.int64)
            self._items = frame["item"].to_numpy(np.int64)
            return
        ids_file = self.feature_dir / "item_ids.txt"
        if ids_file.is_file():
            item_ids = ids_file.read_text(encoding="utf-8").splitlines()
            if len(set(item_ids)) != len(item_ids):
                raise InputError(f"{ids_file}: duplicate item ids")
        else:
            item_ids = sorted(frame["item"].astype(str).unique())
        index = pd.Index(item_ids)
        items = index.get_indexer(frame["item"].astype(str))
        if (items < 0).any():
            missing = frame["item"][items < 0].iloc[0]
            raise InputError(f"{ids_file}: item {missing!r} of {self._path} has no feature row")
        users = pd.Index(sorted(frame["user"].astype(str).unique()))
        self.user_ids, self.item_ids = list(users), item_ids
        self.num_users, self.num_items = len(users), len(item_ids)
        self._users = users.get_indexer(frame["user"].astype(str)).astype(np.int64)
        self._items = items.astype(np.int64)

    def load(self) -> InteractionData:
        """Read features and build the split CSRs (cached on the instance)."""
        if self.data is not None:
            return self.data
        split = torch.tensor(self._frame["split"].to_numpy(np.int64))
        users, items = torch.tensor(self._users), torch.tensor(self._items)
        splits = {}
        for code, name in enumerate(SPLITS):
            keep = split == code
            splits[name] = CSR.from_pairs(users[keep], items[keep], self.num_users, self.num_items)
        features = {}
        for modality in self.feature_dims:
            path = _check_inside(self.feature_dir, f"{modality}_feat.npy")
            array = _read_npy(path).astype(np.float32, copy=False)
            if not np.isfinite(array).all():
                raise InputError(f"{path}: features contain NaN or infinite values")
            features[modality] = torch.from_numpy(np.ascontiguousarray(array))
        self.data = InteractionData(
            self.num_users, self.num_items, splits, features, self.user_ids, self.item_ids
        )
        return self.data

    def setup(self, stage: str | None = None) -> None:
        self.load()

    def train_dataloader(self) -> DataLoader:
        data = self.load()
        batches = BPRBatches(data.train, self.batch_size, self.seed, self.negatives)
        # Sampling is vectorised and runs in the main process: the epoch counter must persist.
        return DataLoader(batches, batch_size=None)

    def _eval_loader(self, split: str) -> DataLoader:
        users = EvalUsers(self.load().eval_users(split), self.eval_batch_size)
        return DataLoader(users, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("valid")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
