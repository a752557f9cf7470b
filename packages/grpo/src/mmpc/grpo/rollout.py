"""What one GRPO batch produced (:class:`Rollout`) and what a step logs of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mmpc.completion.parsing import parse_answer

__all__ = ["Rollout", "reward_means", "step_metrics"]


@dataclass
class Rollout:
    """The sampled completions of one batch, prompt-major (``N = P · G`` rows)."""

    rows: list[dict[str, Any]]
    completion_ids: torch.Tensor  # (N, K)
    mask: torch.Tensor  # (N, K)
    texts: list[str]

    def columns(self) -> dict[str, list[Any]]:
        """The rows' fields as columns (``title``, ``image``...), what the rewards read."""
        keys = set().union(*(r.keys() for r in self.rows))
        return {k: [r.get(k) for r in self.rows] for k in sorted(keys)}


def reward_means(
    prefix: str, total: torch.Tensor, components: dict[str, torch.Tensor]
) -> dict[str, float]:
    """``<prefix>/reward`` and ``<prefix>/rewards/<name>/mean``: the batch's mean rewards."""
    out = {f"{prefix}/reward": float(total.mean())}
    out.update({f"{prefix}/rewards/{k}/mean": float(v.mean()) for k, v in components.items()})
    return out


def step_metrics(
    roll: Rollout,
    total: torch.Tensor,
    components: dict[str, torch.Tensor],
    sums: dict[str, float],
    denominator: float,
    *,
    group_size: int,
    num_iterations: int,
    beta: float,
    key: str,
) -> dict[str, float]:
    """The ``train/`` values a training step logs.

    Args:
        roll: the step's completions.
        total: ``(N,)`` summed rewards; ``components``: each reward's ``(N,)`` values.
        sums: the step's summed ``loss`` (over micro-batches), and token-weighted ``kl`` and
            ``clip_fraction``; ``denominator``: the tokens (times the iterations) they sum over.
        group_size: G; num_iterations: optimiser steps per batch; beta: KL coefficient (``kl``
            is logged only when > 0); key: the answer's JSON key (parse failures).
    """
    failures = sum(not parse_answer(t, key).ok for t in roll.texts) / len(roll.texts)
    lengths = roll.mask.sum(1).float()
    truncated = (roll.mask.sum(1) == roll.mask.size(1)) & (roll.mask[:, -1] > 0)
    metrics = {
        **reward_means("train", total, components),
        "train/reward_std": float(total.std()) if total.numel() > 1 else 0.0,
        "train/reward_group_std": float(total.view(-1, group_size).std(1).mean()),
        "train/loss": sums["loss"] / num_iterations,
        "train/clip_fraction": sums["clip_fraction"] / denominator,
        "train/completion_length": float(lengths.mean()),
        "train/truncated_fraction": float(truncated.float().mean()),
        "train/parse_failure_rate": failures,
    }
    if beta > 0:
        metrics["train/kl"] = sums["kl"] / denominator
    for name, values in components.items():
        metrics[f"train/rewards/{name}/std"] = float(values.std()) if values.numel() > 1 else 0.0
    return metrics
