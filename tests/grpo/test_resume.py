"""Exact resume (``mmpc.grpo.resume``): a run killed after a checkpoint and resumed ends with the
very LoRA weights of the uninterrupted run."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from mmpc.completion.catalog import CatalogError, synthesize
from mmpc.grpo.module import GRPOModule
from mmpc.grpo.resume import (
    AtomicCheckpointIO,
    StepSampler,
    StepSeed,
    StepwiseGRPODataModule,
    checkpoint_step,
    step_seed,
)
from mmpc.grpo.rewards import Reward


class CharacterCount(Reward):
    """Completion length / 10: differs within every group, so every step moves the weights."""

    def __call__(self, completions: Sequence[str], **columns: Any) -> list[float]:
        return [len(c) / 10 for c in completions]


def test_step_sampler_is_a_pure_function_of_seed_and_step() -> None:
    sampler = StepSampler(n=10, batch_size=3, seed=7)
    passes = [[i for s in range(p * 3, p * 3 + 3) for i in sampler.indices(s)] for p in (0, 1)]
    assert all(len(set(p)) == 9 for p in passes)  # no repeats within a pass over the sample
    sampler.set_epoch(4)
    assert list(sampler) == StepSampler(10, 3, 7).indices(4)  # a fresh sampler agrees
    assert len(sampler) == 3
    assert StepSampler(10, 3, 8).indices(0) != sampler.indices(0)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        StepSampler(2, 3, 0)


def test_step_seed_reseeds_every_generator() -> None:
    class Trainer:
        global_step = 5

    StepSeed(3).on_train_batch_start(Trainer())
    drawn = (random.random(), np.random.rand(), torch.rand(1).item())
    value = step_seed(3, 5)
    random.seed(value), np.random.seed(value), torch.manual_seed(value)
    assert drawn == (random.random(), np.random.rand(), torch.rand(1).item())


def _trainer(steps: int, ckpt_dir: Path, validate: bool = False) -> L.Trainer:
    return L.Trainer(
        max_steps=steps,
        max_epochs=-1,
        check_val_every_n_epoch=1,
        limit_val_batches=1.0 if validate else 0,
        num_sanity_val_steps=0,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[
            StepSeed(0),
            ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0, every_n_train_steps=1),
        ],
        plugins=[AtomicCheckpointIO()],
    )


def test_held_out_items_are_fixed_and_never_trained_on(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    synthesize("tiny", seed=0, out=catalog)
    dm = StepwiseGRPODataModule(str(catalog), batch_size=2, seed=0, val_items=4)
    dm.setup("fit")
    held, train = dm.val_dataset.item_ids, dm.dataset.item_ids
    assert len(held) == 4 and not set(held) & set(train)
    assert sorted(held + train) == sorted(dm.dataset.catalog.sample("grpo"))
    again = StepwiseGRPODataModule(str(catalog), batch_size=2, seed=0, val_items=4)
    again.setup("fit")
    assert again.val_dataset.item_ids == held  # the same items for every run with this seed
    [batch] = list(dm.val_dataloader())
    assert [r["item_id"] for r in batch] == held
    none = StepwiseGRPODataModule(str(catalog), batch_size=2, seed=0)
    assert none.val_dataloader() == [] and none.val_dataset is None
    with pytest.raises(CatalogError, match="fewer than batch_size"):
        StepwiseGRPODataModule(str(catalog), batch_size=15, val_items=1).setup("fit")
    with pytest.raises(CatalogError, match="leaves none"):
        StepwiseGRPODataModule(str(catalog), batch_size=1, val_items=99).setup("fit")


@pytest.mark.parametrize("validate", [False, True], ids=["plain", "validating"])
def test_resumed_run_ends_with_the_uninterrupted_weights(
    tiny_llama: Path, short_template: Path, tmp_path: Path, validate: bool
) -> None:
    catalog = tmp_path / "catalog"
    synthesize("tiny", seed=0, out=catalog)

    def module() -> GRPOModule:
        return GRPOModule(
            str(tiny_llama),
            rewards={"length": CharacterCount()},
            template=str(short_template),
            group_size=2,
            max_new_tokens=4,
            lora_r=4,
            lora_alpha=8,
            micro_batch_size=4,
            learning_rate=3e-2,
            adapter_dir=str(tmp_path / "adapter"),
        )

    def data() -> StepwiseGRPODataModule:
        held = 2 if validate else 0  # greedy answers of 2 held-out items after every step
        return StepwiseGRPODataModule(
            str(catalog), batch_size=2, max_items=8 if validate else 6, seed=0, val_items=held
        )

    def lora(m: GRPOModule) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in m.policy_model.named_parameters() if "lora_" in n}

    torch.manual_seed(0)  # the LoRA initialisation of both runs
    whole = module()
    _trainer(3, tmp_path / "whole", validate).fit(whole, datamodule=data())

    torch.manual_seed(0)
    first = module()
    _trainer(2, tmp_path / "parts", validate).fit(first, datamodule=data())  # "killed" at 2
    last = tmp_path / "parts" / "last.ckpt"
    assert checkpoint_step(last) == 2
    assert [p.name for p in last.parent.iterdir() if p.name.startswith(".")] == []  # no temp
    resumed = module()
    _trainer(3, tmp_path / "parts", validate).fit(resumed, datamodule=data(), ckpt_path=str(last))

    expected, got = lora(whole), lora(resumed)
    assert expected.keys() == got.keys() and expected
    assert not all(torch.equal(v, lora(first)[n]) for n, v in got.items())  # step 3 trained
    for name, value in expected.items():
        assert torch.equal(value, got[name]), name
