"""Shared-prompt passes: each distinct prompt of a GRPO batch runs through the model once.

A GRPO batch holds G completions of every prompt, so a plain forward over ``prompt +
completion`` repeats each prompt G times (with long chat prompts and short answers, most of the
tokens of every pass). Here the distinct prompts run once with ``use_cache=True``, their key/value
cache is repeated G times along the batch, and only the completion tokens run on top of it:

* :func:`shared_prefix_logits` gives the logits that score the completions, equal (up to float
  rounding) to the full-sequence forward's last ``K + 1`` positions, with the gradient flowing
  back through the repeated cache into the prompt pass;
* :func:`shared_prefix_cache` pre-fills the cache that ``generate`` then continues, so sampling
  G completions costs one prompt pass, not G.

Only text-only inputs qualify (``input_ids`` and ``attention_mask``): a VLM's pixel inputs and
per-token modality ids keep the plain path. Positions follow the plain forward of each caller
(the full-sequence forward counts positions from the first, padded, column; ``generate`` counts
them from the attention mask), so both paths see the same rotary positions.

:func:`prompt_logits` and :func:`generation_inputs` are the entry points: they take the shared
path when the rows come in whole groups of equal rows and the prompts are text, else the plain one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

__all__ = [
    "full_sequence_logits",
    "generation_inputs",
    "groups_of",
    "prompt_logits",
    "shared_prefix_cache",
    "shared_prefix_logits",
    "text_only",
]

Rows = Sequence[Mapping[str, Any]]
Encoder = Callable[[Rows], dict[str, torch.Tensor]]


def groups_of(rows: Sequence[Mapping[str, Any]], group: int) -> bool:
    """Whether ``rows`` come in runs of ``group`` equal rows (so ``rows[::group]`` are the prompts).

    Args:
        rows: the batch rows, prompt-major.
        group: G, rows per prompt.
    """
    if group < 2 or not rows or len(rows) % group:
        return False
    return all(rows[i] == rows[i - i % group] for i in range(len(rows)))


def full_sequence_logits(
    model: torch.nn.Module,
    enc: Mapping[str, torch.Tensor],
    completion_ids: torch.Tensor,
    mask: torch.Tensor,
) -> torch.Tensor:
    """The plain pass (every row's prompt + completion), for any inputs: ``(B, K + 1, V)`` logits.

    Args:
        model: a causal LM or VLM (or a peft model around one).
        enc: the ``B`` rows' left-padded prompt tensors (pixel inputs included).
        completion_ids: ``(B, K)``.
        mask: ``(B, K)`` completion attention mask.
    """
    enc = dict(enc)
    input_ids = torch.cat([enc.pop("input_ids"), completion_ids], dim=1)  # (B, L + K)
    attention = torch.cat([enc.pop("attention_mask"), mask], dim=1)  # (B, L + K)
    k = completion_ids.size(1)
    for key in [key for key in enc if key.endswith("token_type_ids")]:
        # per-token modality ids (e.g. Qwen2.5-VL's mm_token_type_ids): completions are text (0)
        enc[key] = torch.nn.functional.pad(enc[key], (0, k), value=0)  # (B, L + K)
    out = model(input_ids=input_ids, attention_mask=attention, logits_to_keep=k + 1, **enc)
    return out.logits


def text_only(enc: Mapping[str, torch.Tensor]) -> bool:
    """Whether encoded prompts are plain text (no pixel inputs or modality ids to repeat)."""
    return set(enc) == {"input_ids", "attention_mask"}


def shared_prefix_logits(
    model: torch.nn.Module,
    enc: Mapping[str, torch.Tensor],
    completion_ids: torch.Tensor,
    mask: torch.Tensor,
    group: int,
) -> torch.Tensor:
    """Logits of the last prompt position and of every completion position, prompts run once.

    Args:
        model: a causal LM (or a peft model around one) that returns ``cache``.
        enc: the left-padded ``input_ids`` / ``attention_mask`` of the ``B / group`` distinct
            prompts, ``(B / group, L)``.
        completion_ids: ``(B, K)`` completions, ``group`` consecutive rows per prompt.
        mask: ``(B, K)`` completion attention mask.
        group: G.

    Returns:
        ``(B, K + 1, V)`` logits, as ``model(prompt + completion).logits[:, -K - 1:]``.
    """
    attention = enc["attention_mask"]
    head = model(
        input_ids=enc["input_ids"], attention_mask=attention, use_cache=True, logits_to_keep=1
    )
    cache = head.cache
    cache.batch_repeat_interleave(group)  # (B, heads, L, d) per layer; autograd sees the repeat
    tail = model(
        input_ids=completion_ids,
        attention_mask=torch.cat([attention.repeat_interleave(group, 0), mask], dim=1),
        cache=cache,
        use_cache=True,
    )  # positions L .. L + K - 1 (from the cache length), as in the full-sequence forward
    return torch.cat([head.logits.repeat_interleave(group, 0), tail.logits], dim=1)


def shared_prefix_cache(
    model: torch.nn.Module, enc: Mapping[str, torch.Tensor], group: int
) -> tuple[dict[str, torch.Tensor], Any]:
    """``generate`` inputs for ``group`` samples of each prompt, with the prompts pre-filled once.

    All but the last prompt token go through the model once per distinct prompt (``generate``
    needs one uncached token to start from); the cache is repeated ``group`` times.

    Args:
        model: a causal LM (or a peft model around one).
        enc: the left-padded ``input_ids`` / ``attention_mask`` of the distinct prompts,
            ``(P, L)`` with ``L >= 2``.
        group: G.

    Returns:
        ``({input_ids, attention_mask}`` repeated to ``(P · G, L)``, the cache covering ``L - 1``
        positions), to pass to ``generate`` as ``**inputs, cache=cache``.
    """
    ids, attention = enc["input_ids"], enc["attention_mask"]
    positions = (attention.long().cumsum(-1) - 1).masked_fill(attention == 0, 1)  # as generate
    head = model(
        input_ids=ids[:, :-1],
        attention_mask=attention[:, :-1],
        position_ids=positions[:, :-1],
        use_cache=True,
        logits_to_keep=1,
    )
    cache = head.cache
    cache.batch_repeat_interleave(group)
    inputs = {
        "input_ids": ids.repeat_interleave(group, 0),
        "attention_mask": attention.repeat_interleave(group, 0),
    }
    return inputs, cache


def prompt_logits(
    model: torch.nn.Module,
    encode: Encoder,
    rows: Rows,
    completion_ids: torch.Tensor,
    mask: torch.Tensor,
    group: int,
) -> torch.Tensor:
    """``(B, K + 1, V)`` logits that score ``completion_ids``: shared prompts where they qualify.

    Args:
        model: the policy.
        encode: rows → left-padded prompt tensors on the model's device.
        rows: the ``B`` rows, prompt-major.
        completion_ids: ``(B, K)``.
        mask: ``(B, K)``.
        group: rows per prompt that may share one prompt pass (1: never).
    """
    if groups_of(rows, group):
        enc = encode(rows[::group])
        if text_only(enc):
            return shared_prefix_logits(model, enc, completion_ids, mask, group)
    return full_sequence_logits(model, encode(rows), completion_ids, mask)


def generation_inputs(
    model: torch.nn.Module, encode: Encoder, rows: Rows, group: int
) -> tuple[dict[str, torch.Tensor], Any]:
    """``generate`` inputs of ``rows`` and a pre-filled cache (``None``: the plain prompts).

    Args:
        model: the policy.
        encode: rows → left-padded prompt tensors on the model's device.
        rows: the rows, prompt-major.
        group: rows per prompt that may share one prompt pass (1: never).
    """
    if groups_of(rows, group):
        enc = encode(rows[::group])
        if text_only(enc) and enc["input_ids"].size(1) > 1:
            return shared_prefix_cache(model, enc, group)
    return encode(rows), None
