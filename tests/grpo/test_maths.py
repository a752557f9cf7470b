"""GRPO maths: hand-computed values and parity with TRL's own implementation."""

from __future__ import annotations

from collections import defaultdict
from contextlib import nullcontext
from types import SimpleNamespace

import pytest
import torch
from torch.testing import assert_close
from trl.trainer.grpo_trainer import GRPOTrainer
from trl.trainer.utils import nanstd
from trl.trainer.utils import selective_log_softmax as trl_selective_log_softmax

from mmpc.grpo.maths import (
    LOSS_TYPES,
    completion_mask,
    completion_token_logps,
    group_advantages,
    k3_kl,
    policy_loss,
    selective_log_softmax,
)


def test_group_advantages_hand_computed() -> None:
    rewards = torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0])
    adv = group_advantages(rewards, 3)
    # group 1: mean 2, unbiased std 1 -> (-1, 0, 1) / 1.0001; group 2: no spread -> 0
    expected = torch.tensor([-1 / 1.0001, 0.0, 1 / 1.0001, 0.0, 0.0, 0.0])
    assert_close(adv, expected)
    assert_close(group_advantages(rewards, 3, scale=False), torch.tensor([-1.0, 0, 1, 0, 0, 0]))
    with pytest.raises(ValueError, match="groups of 4"):
        group_advantages(rewards, 4)


def test_group_advantages_match_trl_formula() -> None:
    g = torch.Generator().manual_seed(0)
    rewards = torch.rand(4 * 8, generator=g) * 3
    grouped = rewards.view(-1, 8)
    mean = torch.nanmean(grouped, dim=1).repeat_interleave(8)
    std = nanstd(grouped, dim=1).repeat_interleave(8)
    assert_close(group_advantages(rewards, 8), (rewards - mean) / (std + 1e-4))


def test_completion_mask_stops_after_first_eos() -> None:
    ids = torch.tensor([[5, 6, 2, 7, 2], [5, 6, 7, 8, 9], [2, 0, 0, 0, 0], [4, 3, 1, 0, 0]])
    mask = completion_mask(ids, [2, 3])
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]])
    assert torch.equal(mask, expected)


def test_selective_log_softmax_matches_trl_and_naive() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 5, 11, generator=g)
    index = torch.randint(0, 11, (3, 5), generator=g)
    ours = selective_log_softmax(logits, index)
    naive = logits.log_softmax(-1).gather(-1, index.unsqueeze(-1)).squeeze(-1)
    assert_close(ours, naive)
    assert_close(ours, trl_selective_log_softmax(logits, index))


def test_completion_token_logps_shift_and_temperature() -> None:
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 7, 13, generator=g)  # prompt 4 + completion 3
    completion = torch.randint(0, 13, (2, 3), generator=g)
    ours = completion_token_logps(logits, completion, temperature=0.7)
    ref = trl_selective_log_softmax(logits[:, 3:6], completion, temperature=0.7)
    assert_close(ours, ref)
    # position 4 (first completion token) is predicted by the logit at position 3
    by_hand = (logits[0, 3] / 0.7).log_softmax(-1)[completion[0, 0]]
    assert_close(ours[0, 0], by_hand)


def test_k3_kl_hand_computed() -> None:
    logp = torch.tensor([-1.0, -2.0, -0.5])
    ref = torch.tensor([-1.0, -1.0, -1.5])
    d = ref - logp
    assert_close(k3_kl(logp, ref), torch.exp(d) - d - 1)
    assert k3_kl(logp, ref)[0].item() == 0.0
    assert (k3_kl(logp, ref) >= 0).all()


def test_policy_loss_hand_computed_clip() -> None:
    # one sequence of 2 tokens, A = +1: ratio 1.5 is clipped at 1.2, ratio 0.5 is not
    logps = torch.log(torch.tensor([[1.5, 0.5]]))
    old = torch.zeros(1, 2)
    out = policy_loss(logps, old, torch.tensor([1.0]), torch.ones(1, 2), epsilon_low=0.2)
    assert_close(out.policy_loss, torch.tensor(-(1.2 + 0.5) / 2))
    assert_close(out.clip_fraction, torch.tensor(0.5))
    # with A = -1 the first token keeps its ratio (min picks -1.5), the second is clipped at 0.8
    out = policy_loss(logps, old, torch.tensor([-1.0]), torch.ones(1, 2), epsilon_low=0.2)
    assert_close(out.policy_loss, torch.tensor((1.5 + 0.8) / 2))
    assert_close(out.clip_fraction, torch.tensor(0.5))


def _trl_loss(
    loss_type: str,
    logps: torch.Tensor,
    inputs: dict[str, torch.Tensor],
    *,
    beta: float,
    eps_low: float,
    eps_high: float,
    max_len: int,
    accum: int,
) -> tuple[torch.Tensor, dict[str, list[float]]]:
    """Run TRL's own ``GRPOTrainer._compute_loss`` on given log-probs (model forward stubbed)."""
    metrics: defaultdict = defaultdict(lambda: defaultdict(list))
    accelerator = SimpleNamespace(
        gather=lambda x: x,
        gather_for_metrics=lambda x: x,
        reduce=lambda x, reduction="sum": x,
        num_processes=1,
        sync_gradients=True,
        autocast=nullcontext,
    )
    fake = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logps, torch.zeros_like(logps), None),
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level="token",
        beta=beta,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=accum),
        loss_type=loss_type,
        epsilon_low=eps_low,
        epsilon_high=eps_high,
        use_vllm=False,
        model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=accum,
        max_completion_length=max_len,
        accelerator=accelerator,
        _entropy_bonus_enabled=False,
        aux_loss_enabled=False,
        _metrics=metrics,
    )
    loss = GRPOTrainer._compute_loss(fake, None, inputs)
    return loss, metrics["train"]


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_policy_loss_matches_trl(loss_type: str) -> None:
    g = torch.Generator().manual_seed(3)
    b, t, max_len, accum, beta = 6, 5, 8, 2, 0.04
    old = -torch.rand(b, t, generator=g) * 3
    logps = (old + 0.4 * torch.randn(b, t, generator=g)).requires_grad_()
    ref = old + 0.3 * torch.randn(b, t, generator=g)
    adv = torch.randn(b, generator=g)
    ids = torch.randint(3, 9, (b, t), generator=g)
    ids[0, 2] = 2
    ids[3, 0] = 2
    mask = completion_mask(ids, [2])
    num_items = mask.sum() * 2  # pretend another micro-batch of the same size
    inputs = {
        "prompt_ids": torch.zeros(b, 1, dtype=torch.long),
        "prompt_mask": torch.ones(b, 1, dtype=torch.long),
        "completion_ids": ids,
        "completion_mask": mask,
        "advantages": adv,
        "old_per_token_logps": old,
        "ref_per_token_logps": ref,
        "num_items_in_batch": num_items,
    }
    trl_loss, trl_metrics = _trl_loss(
        loss_type,
        logps,
        inputs,
        beta=beta,
        eps_low=0.2,
        eps_high=0.28,
        max_len=max_len,
        accum=accum,
    )
    out = policy_loss(
        logps,
        old,
        adv,
        mask,
        loss_type=loss_type,
        epsilon_low=0.2,
        epsilon_high=0.28,
        beta=beta,
        ref_logps=ref,
        max_completion_length=max_len,
        num_items_in_batch=num_items,
        accumulation_steps=accum,
    )
    assert_close(out.loss, trl_loss)
    assert_close(out.kl.item(), trl_metrics["kl"][0])
    assert_close(out.clip_fraction.item(), trl_metrics["clip_ratio/region_mean"][0])
    (grad_ours,) = torch.autograd.grad(out.loss, logps, retain_graph=True)
    (grad_trl,) = torch.autograd.grad(trl_loss, logps)
    assert_close(grad_ours, grad_trl)


def test_policy_loss_at_first_iteration_is_minus_advantage_mean() -> None:
    # ratio = 1 everywhere: the grpo loss is -mean(A) and the gradient is -A / len per token
    logps = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, -0.5]], requires_grad=True)
    adv = torch.tensor([2.0, -1.0])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    out = policy_loss(logps, logps.detach(), adv, mask)
    assert_close(out.loss, torch.tensor(-0.5))
    out.loss.backward()
    expected = torch.tensor([[-1.0 / 2, -1.0 / 2, 0.0], [1 / 6, 1 / 6, 1 / 6]])
    assert_close(logps.grad, expected)


def test_policy_loss_rejects_bad_arguments() -> None:
    x = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="loss_type"):
        policy_loss(x, x, torch.zeros(1), x, loss_type="ppo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ref_logps"):
        policy_loss(x, x, torch.zeros(1), x, beta=0.1)
    with pytest.raises(ValueError, match="max_completion_length"):
        policy_loss(x, x, torch.zeros(1), x, loss_type="dr_grpo")
