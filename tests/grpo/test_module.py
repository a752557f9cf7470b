"""GRPOModule with a tiny random Llama on CPU: KL at step 0, what changes, a toy reward."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.testing import assert_close
from torch.utils.data import DataLoader

from mmpc.grpo.module import GRPOModule
from mmpc.grpo.rewards import JsonFormatReward, Reward


class ContainsWord(Reward):
    """1 when the completion contains ``word`` as a separate token, else 0."""

    def __init__(self, word: str = "yes") -> None:
        self.word = word

    def __call__(self, completions: Sequence[str], **columns: Any) -> list[float]:
        return [1.0 if self.word in c.split() else 0.0 for c in completions]


class CharacterCount(Reward):
    """Completion length in characters / 10: a reward that differs within every group."""

    def __call__(self, completions: Sequence[str], **columns: Any) -> list[float]:
        return [len(c) / 10 for c in completions]


def _module(folder: Path, template: Path, **overrides: Any) -> GRPOModule:
    args: dict[str, Any] = {
        "group_size": 8,
        "max_new_tokens": 5,
        "lora_r": 4,
        "lora_alpha": 8,
        "micro_batch_size": 8,
        "beta": 0.04,
        "learning_rate": 3e-2,
        "template": str(template),
    }
    args.update(overrides)
    rewards = {"yes": ContainsWord(), "json_format": JsonFormatReward("prompt")}
    return GRPOModule(str(folder), rewards=rewards, task="t2i", **args)


def _fit(module: GRPOModule, items: list[dict[str, Any]], steps: int, root: Path) -> pd.DataFrame:
    torch.manual_seed(0)
    loader = DataLoader(items * steps, batch_size=len(items), collate_fn=list)
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=CSVLogger(root),
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, loader)
    return pd.read_csv(Path(trainer.logger.log_dir) / "metrics.csv")


def test_policy_equals_reference_at_step_zero(
    tiny_llama: Path, short_template: Path, items: list[dict[str, Any]], tmp_path: Path
) -> None:
    module = _module(tiny_llama, short_template)
    module.configure_model()
    torch.manual_seed(0)
    roll = module.rollout(items)
    assert roll.completion_ids.shape[0] == 2 * 8
    assert [r["item_id"] for r in roll.rows] == ["i1"] * 8 + ["i2"] * 8
    with torch.no_grad():
        logps = module.completion_logps(roll.rows, roll.completion_ids, roll.mask)
        with module.policy_model.disable_adapter():
            ref = module.completion_logps(roll.rows, roll.completion_ids, roll.mask)
    assert_close(logps, ref)
    metrics = _fit(module, items, steps=1, root=tmp_path)
    assert metrics["train/kl"].iloc[0] == pytest.approx(0.0, abs=1e-7)
    assert metrics["train/clip_fraction"].iloc[0] == 0.0
    for column in (
        "train/reward",
        "train/rewards/yes/mean",
        "train/rewards/json_format/std",
        "train/completion_length",
        "train/parse_failure_rate",
    ):
        assert column in metrics


def test_answer_prefix_is_prompt_not_completion(
    tiny_llama: Path, short_template: Path, items: list[dict[str, Any]]
) -> None:
    """The prefill ends every prompt, opens every scored text, and is never a sampled token."""
    prefix = '{"prompt": "'
    module = _module(tiny_llama, short_template, answer_prefix=prefix, group_size=2)
    plain = _module(tiny_llama, short_template, group_size=2)
    module.configure_model()
    plain.policy, plain.policy_model = module.policy, module.policy_model
    enc, enc_plain = module.encode_prompts(items), plain.encode_prompts(items)
    tokenizer = module.policy.tokenizer
    squeeze = "".join  # the tiny word-level tokenizer decodes with spaces between tokens
    for row, row_plain, m, m_plain in zip(
        enc["input_ids"],
        enc_plain["input_ids"],
        enc["attention_mask"],
        enc_plain["attention_mask"],
        strict=True,
    ):
        ids, ids_plain = row[m.bool()].tolist(), row_plain[m_plain.bool()].tolist()
        assert ids[: len(ids_plain)] == ids_plain  # the same prompt, then the prefill
        assert squeeze(tokenizer.decode(ids[len(ids_plain) :]).split()) == prefix.replace(" ", "")
    torch.manual_seed(0)
    roll = module.rollout(items)
    for text, ids, mask in zip(roll.texts, roll.completion_ids, roll.mask, strict=True):
        assert text.startswith(prefix)
        sampled = tokenizer.decode(ids[mask.bool()], skip_special_tokens=True)
        assert text == prefix + sampled  # the prefix is not among the scored tokens
    with torch.no_grad():
        logps = module.completion_logps(roll.rows, roll.completion_ids, roll.mask)
        with module.policy_model.disable_adapter():
            ref = module.completion_logps(roll.rows, roll.completion_ids, roll.mask)
    assert_close(logps, ref)


def test_only_lora_weights_change_and_adapter_reloads(
    tiny_llama: Path, short_template: Path, items: list[dict[str, Any]], tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    module = _module(
        tiny_llama, short_template, num_iterations=2, adapter_dir=str(tmp_path / "adapter")
    )
    module.configure_model()
    before = {n: p.detach().clone() for n, p in module.policy_model.named_parameters()}
    metrics = _fit(module, items, steps=4, root=tmp_path)  # 2 batches × 2 optimiser steps
    assert len(metrics) == 2
    assert metrics["train/kl"].iloc[-1] > 0  # the policy left the reference
    after = dict(module.policy_model.named_parameters())
    lora = [n for n in before if "lora_" in n]
    assert lora and all(after[n].requires_grad for n in lora)
    assert any(not torch.equal(before[n], after[n]) for n in lora if "lora_B" in n)
    for name, value in before.items():
        if "lora_" not in name:
            assert torch.equal(value, after[name]), f"frozen weight {name} changed"

    adapter = tmp_path / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    reloaded = PeftModel.from_pretrained(base, adapter).eval()
    ids = torch.tensor([[2, 10, 11, 12, 13]])
    module.policy_model.eval()
    with torch.no_grad():
        assert_close(reloaded(input_ids=ids).logits, module.policy_model(input_ids=ids).logits)


def test_toy_reward_rises(
    tiny_llama: Path, short_template: Path, items: list[dict[str, Any]], tmp_path: Path
) -> None:
    module = _module(tiny_llama, short_template, learning_rate=5e-2)
    metrics = _fit(module, items, steps=8, root=tmp_path)
    rewards = metrics["train/rewards/yes/mean"].to_numpy()
    first, last = rewards[:3].mean(), rewards[-3:].mean()
    assert last > first + 0.3, f"reward did not rise: {rewards.round(2).tolist()}"


def test_validation_scores_the_greedy_answers_of_held_out_items(
    tiny_llama: Path, short_template: Path, items: list[dict[str, Any]], tmp_path: Path
) -> None:
    module = _module(tiny_llama, short_template, learning_rate=5e-2)
    torch.manual_seed(0)
    trainer = L.Trainer(
        max_steps=8,
        accelerator="cpu",
        logger=CSVLogger(tmp_path),
        log_every_n_steps=1,
        val_check_interval=4,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    held_out = DataLoader(items, batch_size=len(items), collate_fn=list)
    trainer.validate(module, held_out, verbose=False)  # before any update
    train = DataLoader(items * 8, batch_size=len(items), collate_fn=list)
    trainer.fit(module, train, held_out)
    log = pd.read_csv(Path(trainer.logger.log_dir) / "metrics.csv")
    val = log.dropna(subset=["val/reward"])
    assert val["val/updates"].tolist() == [0, 4, 8]  # before training, after 4 and 8 updates
    yes = val["val/rewards/yes/mean"].tolist()
    assert yes[-1] > yes[0], f"greedy reward did not rise: {yes}"
    # what it scored: one greedy answer per item, the same on every call
    roll = module.rollout(items, greedy=True)
    assert len(roll.texts) == len(items) and roll.texts == module.rollout(items, greedy=True).texts
    total, _ = module.combiner(roll.texts)
    assert float(total.mean()) == pytest.approx(val["val/reward"].iloc[-1])


def test_bad_configuration_is_rejected(tiny_llama: Path, short_template: Path) -> None:
    with pytest.raises(ValueError, match="group_size"):
        _module(tiny_llama, short_template, group_size=1)
    module = GRPOModule(str(tiny_llama), rewards={"yes": ContainsWord()}, task="i2t")
    with pytest.raises(ValueError, match="vision-language"):
        module.configure_model()


@pytest.mark.slow
def test_vlm_i2t_trains_lora_in_vision_and_text_layers(tmp_path: Path) -> None:
    from PIL import Image
    from skimage import data as skdata

    from mmpc.completion.tiny import save_tiny_qwen2_5_vl

    folder = save_tiny_qwen2_5_vl(tmp_path / "qwen")
    module = GRPOModule(
        str(folder),
        rewards={"json_format": JsonFormatReward("title"), "length": CharacterCount()},
        task="i2t",
        group_size=4,
        max_new_tokens=4,
        lora_r=4,
        micro_batch_size=2,
        learning_rate=1e-2,
    )
    module.configure_model()
    visual = [
        n for n, _ in module.policy_model.named_parameters() if "visual" in n and "lora_B" in n
    ]
    assert visual, "LoRA did not reach the vision tower"
    before = {n: p.detach().clone() for n, p in module.policy_model.named_parameters()}
    photo = Image.fromarray(skdata.astronaut()).resize((64, 64))
    items = [{"item_id": "a", "title": "astronaut portrait", "image": photo}]
    roll = module.rollout(items)
    with torch.no_grad():
        logps = module.completion_logps(roll.rows, roll.completion_ids, roll.mask)
        with module.policy_model.disable_adapter():
            ref = module.completion_logps(roll.rows, roll.completion_ids, roll.mask)
    assert_close(logps, ref)
    _fit(module, items, steps=1, root=tmp_path / "logs")
    after = dict(module.policy_model.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in visual)
    for name, value in before.items():
        if "lora_" not in name:
            assert torch.equal(value, after[name]), f"frozen weight {name} changed"
