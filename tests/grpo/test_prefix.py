"""Shared-prompt passes (mmpc.grpo.prefix) equal the plain full-sequence passes.

fp32, tiny random Llama, prompts of different lengths (left padding), a perturbed LoRA (so the
adapter changes the prompt's keys and values): log-probs within 1e-5 (absolute), the LoRA
gradient within 1e-5 relative L2, greedy generation's logits within 1e-5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.testing import assert_close

from mmpc.grpo.maths import completion_token_logps
from mmpc.grpo.module import GRPOModule
from mmpc.grpo.prefix import (
    full_sequence_logits,
    groups_of,
    shared_prefix_cache,
    shared_prefix_logits,
    split_common_prefix,
)
from mmpc.grpo.rewards import JsonFormatReward

ITEMS = [
    {"item_id": "i1", "title": "red ceramic mug on a white studio background"},
    {"item_id": "i2", "title": "blue lamp"},
]
G = 4


def _module(folder: Path, template: Path) -> GRPOModule:
    module = GRPOModule(
        str(folder),
        rewards={"json_format": JsonFormatReward("prompt")},
        task="t2i",
        template=str(template),
        group_size=G,
        max_new_tokens=6,
        lora_r=4,
        lora_alpha=8,
        temperature=0.7,
    )
    module.configure_model()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in module.policy_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return module


def _lora_grad(module: GRPOModule) -> torch.Tensor:
    params = [p for n, p in module.policy_model.named_parameters() if "lora_" in n]
    grad = torch.cat([p.grad.flatten() for p in params])
    for p in params:
        p.grad = None
    return grad


def test_groups_of() -> None:
    a, b = {"title": "a"}, {"title": "b"}
    assert groups_of([a, dict(a), b, b], 2)
    assert not groups_of([a, b, b, b], 2)
    assert not groups_of([a, a, a], 2)  # not whole groups
    assert not groups_of([a, a], 1)


def test_split_common_prefix_needs_two_prompts_and_a_common_start() -> None:
    def enc(*rows: list[int]) -> dict[str, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
        return {"input_ids": ids, "attention_mask": (ids != 0).long()}

    assert split_common_prefix(enc([5, 6, 7, 8]), keep=1) is None  # one prompt
    assert split_common_prefix(enc([5, 6, 7, 8], [9, 6, 7, 8]), keep=1) is None  # no common start
    common, own, mask = split_common_prefix(enc([5, 6, 7, 8, 9], [5, 6, 7, 3]), keep=1)
    assert common.tolist() == [[5, 6, 7]]
    assert own.tolist() == [[8, 9], [0, 3]] and mask.tolist() == [[1, 1], [0, 1]]
    common, own, _ = split_common_prefix(enc([5, 6, 7, 8, 9], [5, 6, 7, 8, 3]), keep=2)
    assert common.tolist() == [[5, 6, 7]]  # every prompt keeps two own tokens


def test_shared_prefix_logps_and_grad_equal_full_sequence(
    tiny_llama: Path, short_template: Path
) -> None:
    module = _module(tiny_llama, short_template)
    torch.manual_seed(0)
    roll = module.rollout(ITEMS)
    rows, ids, mask = roll.rows, roll.completion_ids, roll.mask
    enc = module.encode_prompts(rows)
    assert (enc["attention_mask"] == 0).any()  # left padding is exercised
    distinct = module.encode_prompts(rows[::G])
    common, own, own_mask = split_common_prefix(distinct, keep=1)  # the common-start path
    assert common.size(1) >= 2 and common.size(1) + own.size(1) == distinct["input_ids"].size(1)
    assert (own_mask == 0).any()  # own tokens of different lengths: padding in the middle
    model, temperature = module.policy_model, module.hparams.temperature
    module.policy_model.train()

    full = completion_token_logps(full_sequence_logits(model, enc, ids, mask), ids, temperature)
    (full * mask).sum().backward()
    grad_full = _lora_grad(module)
    shared = completion_token_logps(
        shared_prefix_logits(model, distinct, ids, mask, G), ids, temperature
    )
    (shared * mask).sum().backward()
    grad_shared = _lora_grad(module)
    # the module's own entry point takes the shared path for these rows
    assert module._group() == G and groups_of(rows, G)
    via_module = module.completion_logps(rows, ids, mask)

    assert_close(shared * mask, full * mask, atol=1e-5, rtol=0)
    assert_close(via_module.detach(), shared.detach(), atol=0, rtol=0)
    assert float((grad_shared - grad_full).norm() / grad_full.norm()) < 1e-5
    with torch.no_grad(), model.disable_adapter():  # the reference pass too
        ref_full = completion_token_logps(
            full_sequence_logits(model, enc, ids, mask), ids, temperature
        )
        ref_shared = module.completion_logps(rows, ids, mask)
    assert_close(ref_shared * mask, ref_full * mask, atol=1e-5, rtol=0)
    assert (ref_full - full.detach()).abs().max() > 1e-2  # the adapter matters here


def test_prefilled_generate_equals_plain_generate(tiny_llama: Path, short_template: Path) -> None:
    module = _module(tiny_llama, short_template)
    model = module.policy_model.eval()
    rows: list[dict[str, Any]] = [dict(item) for item in ITEMS for _ in range(G)]
    settings = {
        "do_sample": False,
        "max_new_tokens": 6,
        "min_new_tokens": 6,
        "output_logits": True,
        "return_dict_in_generate": True,
        "pad_token_id": module.policy.tokenizer.pad_token_id,
    }
    with torch.no_grad():
        plain = model.generate(**module.encode_prompts(rows), **settings)
        inputs, cache = shared_prefix_cache(model, module.encode_prompts(rows[::G]), G)
        shared = model.generate(**inputs, cache=cache, **settings)
    width = inputs["input_ids"].size(1)
    # the two items' prompts share their start: laid out common | padding | own, same width
    plain_inputs = module.encode_prompts(rows)
    assert width == plain_inputs["input_ids"].size(1)
    assert not torch.equal(inputs["input_ids"], plain_inputs["input_ids"])
    for row, mask, plain_row, plain_mask in zip(
        inputs["input_ids"], inputs["attention_mask"], *plain_inputs.values(), strict=True
    ):
        assert torch.equal(row[mask.bool()], plain_row[plain_mask.bool()])
    assert torch.equal(shared.sequences[:, width:], plain.sequences[:, width:])
    for a, b in zip(shared.logits, plain.logits, strict=True):
        assert_close(a, b, atol=1e-5, rtol=0)
