"""TRL's ``GRPOTrainer`` set up like our ``GRPOModule``, and the first-step parity of the two.

Used by ``bench_vs_trl.py`` (and its test), before it times anything (``--skip-parity`` skips
it). **Parity**: the adapters' ``lora_B`` (zero at init, which would make KL trivially 0) are
set to the same seeded noise (std ``--perturb``) in both models; our ``rollout`` samples one
batch; TRL's ``_generate_and_score_completions`` runs on the same prompts with its generator
replaced by those exact token ids, so TRL tokenises, decodes, rewards, computes advantages and
reference log-probs itself; then TRL's ``compute_loss`` and our ``policy_loss`` (on
``completion_logps`` with the adapter on and off, as ``training_step`` does) are evaluated and
back-propagated. Compared: advantages, reference per-token log-probs, loss, mean k3 KL and the
LoRA gradient; each must satisfy ``|a - b| <= atol + rtol * |b|`` with ``atol = rtol = --tol``
(default 1e-4; float32 with a different log-softmax path: TRL's chunked fused LM head vs our
full logits), the gradient as a relative L2 difference ``<= --tol``. The adapters are restored
to their initial state afterwards.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from mmpc.grpo.maths import group_advantages, policy_loss
from mmpc.grpo.module import GRPOModule

PREFIX = '{"prompt": "'


def build_trl(
    args: argparse.Namespace, folder: str, prompts: list[str], out: str, ours: GRPOModule
):
    """TRL's trainer on the same base and settings; its LoRA weights are copied from ours."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    combiner = ours.combiner

    def reward(prompts: list[str], completions: list[str], **_: Any) -> list[float]:
        total, _ = combiner([PREFIX + c for c in completions])  # ours prepends the prefill too
        return total.tolist()

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    config = GRPOConfig(
        output_dir=out,
        use_cpu=True,
        bf16=False,
        fp16=False,
        seed=args.seed,
        max_steps=args.warmup + args.steps,
        per_device_train_batch_size=args.prompts * args.group_size,
        gradient_accumulation_steps=1,
        num_generations=args.group_size,
        max_completion_length=args.max_new_tokens,
        temperature=args.temperature,
        top_p=1.0,
        top_k=0,
        beta=args.beta,
        epsilon=args.epsilon,
        loss_type="grpo",
        scale_rewards="group",
        use_bias_correction_kl=False,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=1.0,
        disable_dropout=True,
        shuffle_dataset=False,
        report_to=[],
        logging_strategy="no",  # quiet; the metrics still accumulate in trainer._metrics
        disable_tqdm=True,
        save_strategy="no",
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
        reward_funcs=reward,
        args=config,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_dropout=0.0,
            target_modules=args.target_modules,
            task_type="CAUSAL_LM",
        ),
    )
    set_peft_model_state_dict(trainer.model, get_peft_model_state_dict(ours.policy_model))
    return trainer


def lora_params(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if "lora_" in n}


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol + tol * abs(b)


def parity(args: argparse.Namespace, ours: GRPOModule, trainer: Any, rows: list[dict]) -> bool:
    """First-step loss / KL / gradient of both implementations on one fixed batch (docstring)."""
    mine, theirs = lora_params(ours.policy_model), lora_params(trainer.model)
    assert mine.keys() == theirs.keys(), "LoRA parameter names differ"
    saved = {n: p.detach().clone() for n, p in mine.items()}
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for n, p in mine.items():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * args.perturb)
            theirs[n].copy_(p)
    torch.manual_seed(args.seed)
    roll = ours.rollout(rows)
    n = len(roll.rows)

    # ours: what training_step does for one micro-batch holding the whole batch
    total, _ = ours.combiner(roll.texts, title=[r["title"] for r in roll.rows])
    adv = group_advantages(total, args.group_size)
    k = int(roll.mask.sum(1).max())
    ids, mask = roll.completion_ids[:, :k], roll.mask[:, :k]
    ref = ours._no_grad_logps(roll, [slice(0, n)], reference=True)[:, :k]
    logps = ours.completion_logps(roll.rows, ids, mask)
    out = policy_loss(
        logps,
        logps.detach(),
        adv,
        mask,
        loss_type="grpo",
        epsilon_low=args.epsilon,
        beta=args.beta,
        ref_logps=ref,
        max_completion_length=args.max_new_tokens,
    )
    out.loss.backward()

    # TRL: its own pipeline, its generator replaced by our sampled token ids
    sampled = [
        row[m.bool()].tolist() for row, m in zip(roll.completion_ids, roll.mask, strict=True)
    ]
    trainer._generate_single_turn = lambda *a, **kw: (sampled, None)
    trainer.model.train()
    inputs = trainer._generate_and_score_completions(
        [{"prompt": p} for p in ours.prompts.texts(roll.rows)]
    )
    del trainer._generate_single_turn
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop, which has not run
    trl_loss = trainer.compute_loss(trainer.model, inputs)
    trl_loss.backward()
    trl_kl = trainer._metrics["train"]["kl"][-1]
    trl_ref = inputs["ref_per_token_logps"][:, :k]

    g_ours = torch.cat([p.grad.flatten() for p in mine.values()])
    g_trl = torch.cat([theirs[name].grad.flatten() for name in mine])
    checks = {
        "advantages (max |diff|)": (float((inputs["advantages"] - adv).abs().max()), 0.0),
        "ref log-probs (max |diff|)": (float(((trl_ref - ref) * mask).abs().max()), 0.0),
        "loss": (float(trl_loss.detach()), float(out.policy_loss)),
        "KL (k3, token mean)": (trl_kl, float(out.kl)),
        "grad (rel. L2 diff)": (
            float((g_trl - g_ours).norm() / g_ours.norm().clamp(min=1e-12)),
            0.0,
        ),
    }
    ok = True
    print(f"\nfirst-step parity on one fixed batch ({n} completions, tol {args.tol:g}):")
    for name, (a, b) in checks.items():
        good = _close(a, b, args.tol)
        ok &= good
        print(f"  {name:<28} TRL {a: .8f}   ours {b: .8f}   {'ok' if good else 'MISMATCH'}")
    with torch.no_grad():
        for name, p in mine.items():
            p.copy_(saved[name])
            theirs[name].copy_(saved[name])
            p.grad = theirs[name].grad = None
    trainer._metrics["train"].clear()
    return ok
