"""The maths of GRPO as pure tensor functions (no Lightning, no model).

Definitions follow TRL's ``GRPOTrainer`` (trl 1.16, token-level importance sampling) so that the
numbers logged here mean what they mean there:

* group advantage ``A_i = (r_i - mean_g(r)) / (std_g(r) + 1e-4)`` with the unbiased (Bessel) group
  standard deviation, over the G completions of one prompt;
* ratio ``ρ_t = exp(logp_t - logp_old_t)``, per-token loss
  ``ℓ_t = -min(ρ_t A, clip(ρ_t, 1-ε_low, 1+ε_high) A) + β KL_t``;
* k3 estimator ``KL_t = exp(ref_t - logp_t) - (ref_t - logp_t) - 1`` (≥ 0, unbiased for
  ``KL(π || π_ref)`` under samples from π);
* aggregation by ``loss_type`` (mask ``m``: completion tokens up to and including the first EOS):

  - ``grpo``: mean over sequences of the per-sequence token mean ``Σ_t ℓ m / Σ_t m``;
  - ``bnpo``: token mean over the micro-batch ``Σ ℓ m / Σ m``;
  - ``dr_grpo``: ``Σ ℓ m / (B · max_completion_length)``;
  - ``dapo``: ``Σ ℓ m / num_items_in_batch`` where ``num_items_in_batch`` is the number of
    completion tokens in the whole generation batch (all micro-batches), so the micro-batch sums
    add up to the batch token mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

__all__ = [
    "LOSS_TYPES",
    "PolicyLossOutput",
    "completion_mask",
    "completion_token_logps",
    "group_advantages",
    "k3_kl",
    "policy_loss",
    "selective_log_softmax",
]

LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo"]
LOSS_TYPES: tuple[str, ...] = ("grpo", "bnpo", "dr_grpo", "dapo")


def group_advantages(
    rewards: torch.Tensor, group_size: int, *, scale: bool = True, eps: float = 1e-4
) -> torch.Tensor:
    """Group-relative advantages.

    ``A_i = (r_i - mean_g) / (std_g + eps)`` where ``g`` is the group of ``group_size``
    consecutive rewards that share one prompt and ``std_g`` is the unbiased standard deviation
    (as ``torch.std`` and TRL's ``nanstd``). With ``scale=False`` only the mean is removed
    (Dr. GRPO's advice). A group of one has no spread: its advantage is 0.

    Args:
        rewards: ``(N,)`` total rewards, prompt-major (``N = num_prompts * group_size``).
        group_size: G, completions per prompt.
        scale: divide by the group standard deviation.
        eps: added to the standard deviation.

    Returns:
        ``(N,)`` advantages, same dtype as ``rewards``.
    """
    if rewards.ndim != 1 or group_size < 1 or rewards.numel() % group_size:
        raise ValueError(
            f"rewards of shape {tuple(rewards.shape)} do not split into groups of {group_size}"
        )
    grouped = rewards.view(-1, group_size)  # (P, G)
    centred = grouped - grouped.mean(dim=1, keepdim=True)  # (P, G)
    if scale:
        if group_size == 1:
            return torch.zeros_like(rewards)
        centred = centred / (grouped.std(dim=1, keepdim=True) + eps)
    return centred.reshape(-1)


def completion_mask(completion_ids: torch.Tensor, eos_token_ids: list[int]) -> torch.Tensor:
    """1 for completion tokens up to and including the first EOS, 0 after it.

    Args:
        completion_ids: ``(B, T)`` generated token ids (padding after EOS is whatever the
            generator wrote, usually the pad id).
        eos_token_ids: ids that end a completion.

    Returns:
        ``(B, T)`` int64 mask; rows without an EOS are all ones.
    """
    eos = torch.tensor(eos_token_ids, device=completion_ids.device)
    is_eos = torch.isin(completion_ids, eos)  # (B, T)
    length = completion_ids.size(1)
    first = torch.full((completion_ids.size(0),), length, device=completion_ids.device)
    has_eos = is_eos.any(dim=1)
    first[has_eos] = is_eos.int().argmax(dim=1)[has_eos]
    positions = torch.arange(length, device=completion_ids.device).expand_as(completion_ids)
    return (positions <= first.unsqueeze(1)).long()  # (B, T)


def selective_log_softmax(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits)[..., index]`` without materialising the full log-softmax.

    ``log p(index) = logits[index] - logsumexp(logits)``, computed one row of the batch at a time
    so peak memory stays at one ``(T, V)`` slice.

    Args:
        logits: ``(B, T, V)``.
        index: ``(B, T)`` token ids.

    Returns:
        ``(B, T)`` log-probabilities in ``logits.dtype``.
    """
    rows = []
    for row_logits, row_index in zip(logits, index, strict=True):
        picked = row_logits.gather(-1, row_index.unsqueeze(-1)).squeeze(-1)  # (T,)
        rows.append(picked - torch.logsumexp(row_logits.float(), dim=-1).to(row_logits.dtype))
    return torch.stack(rows)  # (B, T)


def completion_token_logps(
    logits: torch.Tensor, completion_ids: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Per-token log-probabilities of the completion tokens under the logits of the full sequence.

    The logit at position ``i`` predicts token ``i + 1``, so with ``K`` completion tokens the
    logits used are ``logits[:, -K-1:-1]``; they are divided by the sampling ``temperature`` first
    (the distribution the tokens were sampled from). Masking (after the first EOS) is the caller's
    job with :func:`completion_mask`.

    Args:
        logits: ``(B, P + K, V)`` model logits over prompt + completion.
        completion_ids: ``(B, K)``.
        temperature: sampling temperature, > 0.

    Returns:
        ``(B, K)`` log-probabilities.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    k = completion_ids.size(1)
    if logits.size(1) <= k:
        raise ValueError(f"logits cover {logits.size(1)} positions, need more than {k}")
    scored = logits[:, -k - 1 : -1, :] / temperature  # (B, K, V)
    return selective_log_softmax(scored, completion_ids)


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """k3 estimator of ``KL(π || π_ref)`` per token: ``exp(ref - logp) - (ref - logp) - 1``."""
    delta = ref_logps - logps
    return torch.exp(delta) - delta - 1


@dataclass(frozen=True)
class PolicyLossOutput:
    """Result of :func:`policy_loss`.

    Attributes:
        loss: scalar to back-propagate (already divided by ``accumulation_steps``).
        policy_loss: the same loss before that division, detached, for logging.
        kl: masked token mean of the k3 KL (0 when no reference log-probs were given), detached.
        clip_fraction: masked token mean of "region clipped" tokens (ratio below 1-ε_low with
            A < 0, or above 1+ε_high with A > 0: the tokens whose gradient the clip removed).
        ratio_mean: masked token mean of ρ, detached.
    """

    loss: torch.Tensor
    policy_loss: torch.Tensor
    kl: torch.Tensor
    clip_fraction: torch.Tensor
    ratio_mean: torch.Tensor


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def policy_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    loss_type: LossType = "grpo",
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    ref_logps: torch.Tensor | None = None,
    max_completion_length: int | None = None,
    num_items_in_batch: float | torch.Tensor | None = None,
    accumulation_steps: int = 1,
) -> PolicyLossOutput:
    """The clipped GRPO surrogate with an optional k3 KL penalty (see the module docstring).

    Args:
        logps: ``(B, T)`` current policy log-probs (with gradient).
        old_logps: ``(B, T)`` log-probs of the policy that sampled (detached); equal to ``logps``
            on the first iteration over a batch.
        advantages: ``(B,)`` one advantage per completion.
        mask: ``(B, T)`` completion mask.
        loss_type: ``grpo`` | ``bnpo`` | ``dr_grpo`` | ``dapo``.
        epsilon_low: lower clip range ε_low.
        epsilon_high: upper clip range (defaults to ``epsilon_low``; DAPO uses a larger one).
        beta: KL coefficient; needs ``ref_logps`` when > 0.
        ref_logps: ``(B, T)`` reference log-probs (detached).
        max_completion_length: the generation limit; required for ``dr_grpo``.
        num_items_in_batch: completion tokens in the whole generation batch, for ``dapo``
            (defaults to this micro-batch's ``mask.sum()``).
        accumulation_steps: micro-batches per optimiser step; ``grpo``/``bnpo``/``dr_grpo`` losses
            are divided by it (``dapo`` already is, through ``num_items_in_batch``).

    Returns:
        A :class:`PolicyLossOutput`.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    if beta > 0 and ref_logps is None:
        raise ValueError("beta > 0 needs ref_logps")
    eps_high = epsilon_low if epsilon_high is None else epsilon_high
    mask = mask.to(logps.dtype)
    adv = advantages.unsqueeze(1)  # (B, 1)
    ratio = torch.exp(logps - old_logps)  # (B, T)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + eps_high)  # (B, T)
    per_token = -torch.min(ratio * adv, clipped * adv)  # (B, T)
    if ref_logps is not None:
        kl_tokens = k3_kl(logps, ref_logps)  # (B, T)
        if beta > 0:
            per_token = per_token + beta * kl_tokens
        kl = _masked_mean(kl_tokens.detach(), mask)
    else:
        kl = torch.zeros((), dtype=logps.dtype, device=logps.device)

    if loss_type == "grpo":
        per_seq = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)  # (B,)
        loss = per_seq.mean()
    elif loss_type == "bnpo":
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    elif loss_type == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("loss_type 'dr_grpo' needs max_completion_length")
        loss = (per_token * mask).sum() / (per_token.size(0) * max_completion_length)
    else:
        total = mask.sum() if num_items_in_batch is None else num_items_in_batch
        total = torch.as_tensor(total, dtype=logps.dtype, device=logps.device).clamp(min=1.0)
        loss = (per_token * mask).sum() / total
    scaled = loss if loss_type == "dapo" else loss / accumulation_steps

    region = ((ratio < 1 - epsilon_low) & (adv < 0)) | ((ratio > 1 + eps_high) & (adv > 0))
    return PolicyLossOutput(
        loss=scaled,
        policy_loss=loss.detach(),
        kl=kl,
        clip_fraction=_masked_mean(region.to(logps.dtype), mask).detach(),
        ratio_mean=_masked_mean(ratio.detach(), mask),
    )
