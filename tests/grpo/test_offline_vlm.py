"""GRPO of the offline stand-in I→T completer: LoRA on its language model, prompts shared with
``OfflineVisionLM``, and the adapter it saves loads into that completer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from mmpc.completion.backends import OfflineVisionLM
from mmpc.completion.backends.base import BackendContext, Request
from mmpc.completion.catalog import Catalog, synthesize
from mmpc.completion.prompts import build_messages, default_template
from mmpc.completion.tiny import save_tiny_causal_lm
from mmpc.grpo.data import GRPODataModule
from mmpc.grpo.module import GRPOModule
from mmpc.grpo.rewards import JsonFormatReward, Reward

SMALL = {"image_size": 64, "max_iter": 30}
PREFIX = '{"title": "'


class TitleLength(Reward):
    """Characters / 10: differs within every group, so every step has advantages."""

    def __call__(self, completions: Sequence[str], **columns: Any) -> list[float]:
        return [len(c) / 10 for c in completions]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama with a byte-level BPE tokenizer (it can spell any word)."""
    return save_tiny_causal_lm(tmp_path_factory.mktemp("models") / "llm")


@pytest.fixture(scope="module")
def catalog_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalog") / "tiny"
    synthesize("tiny", seed=0, out=root)
    return root


def test_grpo_trains_lora_of_the_stand_in_and_the_adapter_loads(
    tiny_lm: Path, catalog_root: Path, tmp_path: Path
) -> None:
    cache, adapter = tmp_path / "cache", tmp_path / "adapter"
    module = GRPOModule(
        str(tiny_lm),
        rewards={"json_format": JsonFormatReward("title"), "length": TitleLength()},
        task="i2t",
        perception=SMALL,
        cache_dir=str(cache),
        answer_prefix=PREFIX,
        group_size=4,
        max_new_tokens=6,
        lora_r=4,
        lora_alpha=8,
        micro_batch_size=8,
        learning_rate=3e-2,
        adapter_dir=str(adapter),
    )
    module.configure_model()
    before = {n: p.detach().clone() for n, p in module.policy_model.named_parameters()}
    torch.manual_seed(0)
    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=GRPODataModule(str(catalog_root), task="i2t", batch_size=2))
    after = dict(module.policy_model.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before if "lora_B" in n)
    for name, value in before.items():
        if "lora_" not in name:
            assert torch.equal(value, after[name]), f"frozen weight {name} changed"
    assert not set(module.prompts.probe.fitted_on) & set(trainer.datamodule.dataset.item_ids)

    catalog = Catalog.open(catalog_root)
    item = catalog.sample("cqbench")[0]
    image = catalog.load_image(item)
    request = Request(item, build_messages(default_template("i2t"), image=image), image=image)
    ctx = BackendContext(torch.device("cpu"), catalog=catalog)
    outputs, logits = [], []
    for folder in (None, adapter):
        vlm = OfflineVisionLM(
            str(tiny_lm),
            cache_dir=str(cache),
            adapter=None if folder is None else str(folder),
            answer_prefix=PREFIX,
            generation={"max_new_tokens": 6, "do_sample": False},
            perception=SMALL,
        )
        vlm.setup(ctx)
        [text] = module.prompts.texts([{"item_id": item, "image": image}])
        [caption] = vlm.probe.perceive([image])
        assert (
            text
            == vlm._tokenizer.apply_chat_template(
                [
                    {"role": m["role"], "content": m["content"]}
                    for m in [
                        {"role": "system", "content": default_template("i2t").system.strip()},
                        {
                            "role": "user",
                            "content": request.messages[1]["content"][1]["text"]
                            + "\n\n"
                            + caption.caption,
                        },
                    ]
                ],
                tokenize=False,
                add_generation_prompt=True,
            )
            + PREFIX
        )  # GRPO trains on exactly the completer's prompt
        enc = vlm._tokenizer([text], return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            logits.append(vlm._model(**enc).logits)
        outputs.append(vlm.generate([request])[0])
    assert not torch.allclose(logits[0], logits[1])  # the adapter changes the completer
    module.policy_model.eval()
    with torch.no_grad():
        trained = module.policy_model(**enc).logits
    torch.testing.assert_close(logits[1], trained)  # and it is the trained one
