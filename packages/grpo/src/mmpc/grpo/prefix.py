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

When the distinct prompts themselves start alike (the same system turn and instruction, items
differing only at the end, as the offline stand-in's prompts do), that common start runs once
too: a batch-1 pass whose cache is repeated over the prompts, then each prompt's own tokens laid
out as ``common | padding | own`` (the padding masked, positions counted from the attention
mask, as ``generate`` counts them), then the completions.

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
    "split_common_prefix",
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


def _positions(attention: torch.Tensor) -> torch.Tensor:
    """Rotary positions from a 2-D attention mask, as ``generate`` computes them (pads at 1)."""
    return (attention.long().cumsum(-1) - 1).masked_fill(attention == 0, 1)


def split_common_prefix(
    enc: Mapping[str, torch.Tensor], keep: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The tokens that every distinct prompt starts with, and each prompt's own rest.

    Args:
        enc: ``P`` left-padded prompts, ``input_ids`` / ``attention_mask`` ``(P, L)``.
        keep: own tokens every prompt keeps at least.

    Returns:
        ``(common (1, n), own (P, W), own_mask (P, W))`` with the own tokens left padded and
        ``n + W == L``; ``None`` for one prompt or fewer than two common tokens.
    """
    ids, attention = enc["input_ids"], enc["attention_mask"]
    if ids.size(0) < 2:
        return None
    rows = [row[mask.bool()] for row, mask in zip(ids, attention, strict=True)]
    limit = min(len(row) for row in rows) - keep
    if limit < 2:
        return None
    heads = torch.stack([row[:limit] for row in rows])  # (P, limit)
    same = (heads == heads[:1]).all(0)  # (limit,)
    n = int(same.long().cumprod(0).sum())
    if n < 2:
        return None
    pad = ids[attention == 0][:1]
    own = torch.full((len(rows), ids.size(1) - n), int(pad[0]) if len(pad) else 0).to(ids)
    own_mask = torch.zeros_like(attention[:, n:])
    for r, row in enumerate(rows):
        tail = row[n:]
        own[r, own.size(1) - len(tail) :] = tail
        own_mask[r, own.size(1) - len(tail) :] = 1
    return rows[0][:n].unsqueeze(0), own, own_mask


def _prompt_passes(
    model: torch.nn.Module, enc: Mapping[str, torch.Tensor], keep: int
) -> tuple[Any, Any, torch.Tensor, torch.Tensor]:
    """The distinct prompts through the model, less their last ``keep - 1`` tokens.

    Returns:
        ``(output of the last pass, its cache, input_ids (P, L), attention_mask (P, L))`` with
        ``input_ids`` laid out as ``common | padding | own`` where a common start exists (else
        ``enc`` as it is, left padded).
    """
    ids, attention = enc["input_ids"], enc["attention_mask"]
    cut = ids.size(1) - (keep - 1)
    split = split_common_prefix(enc, keep)
    if split is None:
        out = model(
            input_ids=ids[:, :cut],
            attention_mask=attention[:, :cut],
            position_ids=_positions(attention)[:, :cut],
            use_cache=True,
            logits_to_keep=1,
        )
        return out, out.cache, ids, attention
    common, own, own_mask = split
    n, prompts = common.size(1), own.size(0)
    first = model(
        input_ids=common, attention_mask=torch.ones_like(common), use_cache=True, logits_to_keep=1
    )  # positions 0 .. n - 1
    cache = first.cache
    cache.batch_repeat_interleave(prompts)  # autograd sees the repeat
    attention = torch.cat([own_mask.new_ones(prompts, n), own_mask], 1)
    ids = torch.cat([common.expand(prompts, n), own], 1)  # (P, L)
    out = model(
        input_ids=ids[:, n:cut],
        attention_mask=attention[:, :cut],
        position_ids=_positions(attention)[:, n:cut],
        cache=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    return out, out.cache, ids, attention


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
    head, cache, _, attention = _prompt_passes(model, enc, keep=1)
    cache.batch_repeat_interleave(group)  # (B, heads, L, d) per layer; autograd sees the repeat
    full = torch.cat([attention.repeat_interleave(group, 0), mask], dim=1)  # (B, L + K)
    tail = model(
        input_ids=completion_ids,
        attention_mask=full,
        position_ids=_positions(full)[:, -completion_ids.size(1) :],
        cache=cache,
        use_cache=True,
    )  # the same relative positions as the full-sequence forward
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
    _, cache, ids, attention = _prompt_passes(model, enc, keep=2)
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
