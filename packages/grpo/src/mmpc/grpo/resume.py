"""Exact resume for GRPO training: a killed run continues with the very samples it would have drawn.

Nothing may carry hidden state between steps, so that ``trainer.fit(ckpt_path=last)`` continues a
killed run exactly where the uninterrupted run would be:

* :class:`StepwiseGRPODataModule` runs one Lightning epoch per GRPO step and its
  :class:`StepSampler` makes the step's batch a pure function of ``(data seed, step)``;
* :class:`StepSeed` re-seeds the global RNGs (``random``, numpy, torch) from ``(seed, step)``
  before every step, so the sampled completions do not depend on what ran before;
* :class:`AtomicCheckpointIO` writes each checkpoint aside and renames it into place, so a kill
  never leaves half a ``last.ckpt``; :func:`checkpoint_step` reads the step a checkpoint holds.

Use them together (what ``mmpc bench`` does; see ``docs/grpo.md``)::

    trainer = L.Trainer(
        max_steps=S, max_epochs=-1,
        callbacks=[StepSeed(seed), ModelCheckpoint(dirpath=d, save_last=True, save_top_k=0,
                                                   every_n_train_steps=k)],
        plugins=[AtomicCheckpointIO()],
    )
    trainer.fit(module, datamodule=StepwiseGRPODataModule(..., seed=seed),
                ckpt_path=d / "last.ckpt" if it exists else None)
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch.utils.data import DataLoader, Sampler

from mmpc.grpo.data import GRPODataModule, _as_list
from mmpc.metrics.files import atomic_path

__all__ = [
    "AtomicCheckpointIO",
    "StepSampler",
    "StepSeed",
    "StepwiseGRPODataModule",
    "checkpoint_step",
    "step_seed",
]


def step_seed(seed: int, step: int) -> int:
    """The RNG seed of ``step``: distinct per step and per data seed, within 32 bits."""
    return (seed * 1_000_003 + step) % (2**32)


class StepSampler(Sampler[int]):
    """The item indices of one GRPO step: the batch of the step set by :meth:`set_epoch`.

    Lightning calls ``set_epoch(epoch)`` at the start of every epoch and training runs one step
    per epoch, so the batch of step ``s`` is batch ``s mod B`` of pass ``s div B`` over the sample
    (``B = n // batch_size`` batches per pass; each pass a permutation seeded by ``(seed, pass)``).
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if n < batch_size:
            raise ValueError(f"GRPO sample has {n} items, fewer than batch_size {batch_size}")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.per_pass = n // batch_size
        self.step = 0

    def set_epoch(self, epoch: int) -> None:
        self.step = epoch

    def indices(self, step: int) -> list[int]:
        """The item indices of ``step``."""
        pass_, j = divmod(step, self.per_pass)
        gen = torch.Generator().manual_seed(step_seed(self.seed, pass_))
        perm = torch.randperm(self.n, generator=gen)
        return perm[j * self.batch_size : (j + 1) * self.batch_size].tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices(self.step))

    def __len__(self) -> int:
        return self.batch_size


class StepwiseGRPODataModule(GRPODataModule):
    """``GRPODataModule`` yielding one step's batch per epoch (:class:`StepSampler`)."""

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        sampler = StepSampler(len(self.dataset), self.hparams.batch_size, self.hparams.seed)
        return DataLoader(
            self.dataset,
            batch_size=self.hparams.batch_size,
            sampler=sampler,
            collate_fn=_as_list,
            num_workers=self.hparams.num_workers,
        )


class StepSeed(L.Callback):
    """Re-seed the global RNGs from ``(seed, step)`` before every step (exact resumes).

    Args:
        seed: the run's seed (``mmpc bench`` uses the data seed).
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        value = step_seed(self.seed, trainer.global_step)
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, written to a temporary file and renamed into place."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


def checkpoint_step(path: str | Path) -> int:
    """``global_step`` of a Lightning checkpoint (read memory-mapped, weights only)."""
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return int(state["global_step"])
