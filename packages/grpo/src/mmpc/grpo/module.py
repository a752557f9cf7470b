"""``GRPOModule``: Group Relative Policy Optimization of a completion model, as a LightningModule.

One training step = one batch of P prompts (catalogue items):

1. sample G completions per prompt without gradients (same prompt template and parser as
   :mod:`mmpc.completion`), with the LoRA policy in eval mode;
2. score them with the configured rewards (:mod:`mmpc.grpo.rewards`), summed with weights;
3. group advantages ``A = (r - mean_g) / (std_g + 1e-4)`` (:mod:`mmpc.grpo.maths`);
4. log-probs of the sampling policy (when ``num_iterations > 1``) and of the reference policy
   (the base model with the LoRA adapter disabled, when ``beta > 0``), without gradients;
5. ``num_iterations`` optimiser steps, each accumulating the clipped loss
   (:func:`~mmpc.grpo.maths.policy_loss`) over micro-batches of completions, then clipping the
   gradient norm to ``max_grad_norm``.

Only the LoRA weights train; checkpoints keep only them, and the adapter is saved with peft's
``save_pretrained`` at the end of training and on every checkpoint (``adapter_dir``, default
``<log_dir>/adapter``) so that ``mmpc complete`` can load base + adapter.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule

from mmpc.completion.backends.base import BackendContext
from mmpc.completion.backends.prompting import PromptBuilder, prompt_builder
from mmpc.completion.prompts import PromptTemplate, default_template
from mmpc.grpo.maths import completion_mask, completion_token_logps, group_advantages, policy_loss
from mmpc.grpo.policy import LoRASpec, Policy, load_policy
from mmpc.grpo.prefix import generation_inputs, prompt_logits
from mmpc.grpo.rewards import Reward, RewardCombiner
from mmpc.grpo.rollout import Rollout, reward_means, step_metrics
from mmpc.metrics.files import atomic_dir

__all__ = ["GRPOModule", "Rollout"]


class GRPOModule(LightningModule):
    """GRPO with a LoRA adapter on a Hugging Face causal LM or VLM (manual optimisation).

    Args:
        model: base model folder, hub id, or ``package:<pkg>`` (see :mod:`mmpc.grpo.policy`).
        rewards: name → reward (e.g. ``json_format``, ``title_similarity``).
        task: ``i2t`` (image → title; a VLM, or a text-only model with ``perception``) or
            ``t2i`` (title → image prompt).
        reward_weights: name → weight of each reward in the total (default 1 each).
        template: a prompt template YAML; default the packaged template of ``task``.
        answer_prefix: text that opens every answer (an assistant "prefill", e.g.
            ``'{"prompt": "'``): appended to the chat-templated prompt, so it is part of the
            prompt, never sampled or trained on, and prepended to each completion before it is
            parsed and rewarded. Default ``""`` (the paper's setting: none).
        gguf_file: GGUF file inside ``model`` (converted once, cached in ``cache_dir``).
        cache_dir: where converted GGUF folders are kept.
        quantization: ``none`` or ``4bit`` (nf4, double quantisation: QLoRA).
        dtype: base weights / compute dtype: ``float32``, ``bfloat16`` or ``float16``.
        lora_r: LoRA rank (paper: 16).
        lora_alpha: LoRA alpha.
        lora_dropout: LoRA dropout.
        target_modules: LoRA target module names or ``all-linear``.
        gradient_checkpointing: trade compute for memory in the policy forward.
        group_size: G, completions per prompt (paper: 16).
        num_iterations: optimiser steps per generation batch (μ in the GRPO paper).
        micro_batch_size: completions per forward/backward pass.
        generation_batch_size: rows per ``generate`` call (default: all ``P · G``).
        max_new_tokens: generation limit (128 for titles, 256 for prompts in the paper).
        temperature: sampling temperature (also divides the logits when scoring).
        top_p: nucleus sampling.
        top_k: top-k sampling (0 disables).
        loss_type: ``grpo``, ``bnpo``, ``dr_grpo`` or ``dapo``.
        epsilon: lower clip range ε.
        epsilon_high: upper clip range (default ε).
        beta: KL coefficient β (reference = adapter disabled).
        scale_rewards: divide advantages by the group std.
        learning_rate: AdamW learning rate (paper: 1e-5).
        weight_decay: AdamW weight decay.
        max_grad_norm: gradient-norm clip.
        adapter_dir: where the adapter is saved (default ``<log_dir>/adapter``).
        perception: i2t with a text-only model: train the OFFLINE STAND-IN
            :class:`~mmpc.completion.backends.offline_vlm.OfflineVisionLM` (``{}`` for its default
            attribute probe, else the probe's arguments, as in that completer's config). The
            probe is fitted on the datamodule catalogue's training items; prompts, the decoding
            lexicon and the prefill are built by the completer's own code.
    """

    def __init__(
        self,
        model: str,
        rewards: Mapping[str, Reward],
        task: Literal["i2t", "t2i"] = "t2i",
        reward_weights: dict[str, float] | None = None,
        template: str | None = None,
        answer_prefix: str = "",
        gguf_file: str | None = None,
        cache_dir: str | None = None,
        quantization: Literal["none", "4bit"] = "none",
        dtype: Literal["float32", "bfloat16", "float16"] = "float32",
        lora_r: int = 16,
        lora_alpha: int = 32,
        lora_dropout: float = 0.0,
        target_modules: list[str] | str = "all-linear",
        gradient_checkpointing: bool = False,
        group_size: int = 16,
        num_iterations: int = 1,
        micro_batch_size: int = 4,
        generation_batch_size: int | None = None,
        max_new_tokens: int = 256,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = "grpo",
        epsilon: float = 0.2,
        epsilon_high: float | None = None,
        beta: float = 0.04,
        scale_rewards: bool = True,
        learning_rate: float = 1e-5,
        weight_decay: float = 0.0,
        max_grad_norm: float = 1.0,
        adapter_dir: str | None = None,
        perception: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if task not in ("i2t", "t2i"):
            raise ValueError(f"task must be 'i2t' or 't2i', got {task!r}")
        if group_size < 2:
            raise ValueError(f"group_size must be >= 2 (advantages are relative), got {group_size}")
        self.save_hyperparameters(ignore=["rewards"])
        self.automatic_optimization = False
        self.strict_loading = False  # checkpoints hold only the LoRA weights
        self.combiner = RewardCombiner(rewards, reward_weights)
        self.template = PromptTemplate.from_yaml(template) if template else default_template(task)
        self.task = task
        self.policy: Policy | None = None
        self.policy_model: torch.nn.Module | None = None
        self._prompts: PromptBuilder | None = None

    # ----------------------------------------------------------------------------- setup
    def configure_model(self) -> None:
        """Load base + LoRA once (Lightning calls this before the optimiser is built)."""
        if self.policy is not None:
            return
        hp = self.hparams
        device_map = None
        if hp.quantization == "4bit" and self._trainer is not None:
            device_map = {"": self.trainer.strategy.root_device}
        self.policy = load_policy(
            hp.model,
            gguf_file=hp.gguf_file,
            cache_dir=hp.cache_dir,
            quantization=hp.quantization,
            dtype=hp.dtype,
            lora=LoRASpec(hp.lora_r, hp.lora_alpha, hp.lora_dropout, hp.target_modules),
            gradient_checkpointing=hp.gradient_checkpointing,
            device_map=device_map,
        )
        self.policy_model = self.policy.model
        self._prompts = None
        _ = self.prompts  # a task the model cannot do fails here, before any training

    @property
    def prompts(self) -> PromptBuilder:
        """How this policy is prompted, exactly as its completer (:mod:`mmpc.completion`)."""
        if self._prompts is None:
            hp = self.hparams
            self._prompts = prompt_builder(
                self.policy.processor,
                self.template,
                self.task,
                is_vlm=self.policy.is_vlm,
                answer_prefix=hp.answer_prefix,
                perception=hp.perception,
                cache_dir=hp.cache_dir,
                model_name=hp.model,
                config_key="model.perception",
            )
        return self._prompts

    def setup(self, stage: str) -> None:
        """Set up the rewards (renderers, encoders) with the datamodule's catalogue, if any.

        The context's ``sample_ids`` is the catalogue's whole GRPO sample, so retrieval
        baselines never answer with a training item.
        """
        dataset = getattr(self.trainer.datamodule, "dataset", None) if self._trainer else None
        catalog = getattr(dataset, "catalog", None)
        sample = frozenset(catalog.sample("grpo")) if catalog is not None else frozenset()
        self.configure_model()
        self.prompts.setup(catalog)
        for name, reward in self.combiner.rewards.items():
            if hasattr(reward, "setup"):
                reward.setup(
                    BackendContext(
                        device=self.device,
                        catalog=catalog,
                        sample_ids=sample,
                        config_key=f"model.rewards.{name}",
                    )
                )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        self.configure_model()
        params = [p for p in self.policy_model.parameters() if p.requires_grad]
        return torch.optim.AdamW(
            params, lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )

    # ----------------------------------------------------------------------------- prompts
    def encode_prompts(self, rows: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        """Chat-templated, left-padded prompt tensors (plus pixel inputs for i2t) on the device."""
        return {k: v.to(self.device) for k, v in self.prompts.encode(rows).items()}

    # ----------------------------------------------------------------------------- sampling
    def _eos_ids(self) -> list[int]:
        eos = self.policy_model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        return [e for e in eos if e is not None] or [self.policy.tokenizer.eos_token_id]

    def _placeholder_ids(self) -> list[int]:
        """Image/video placeholder ids: a sampled one would be read as an image slot when the
        completion is scored, so generation never emits them."""
        names = ("image_token_id", "video_token_id")
        ids = [getattr(self.policy.processor, n, None) for n in names]
        return [int(i) for i in ids if isinstance(i, int)]

    @torch.no_grad()
    def rollout(self, items: list[Mapping[str, Any]], *, greedy: bool = False) -> Rollout:
        """Sample G completions per item (prompt-major), with the policy in eval mode.

        ``greedy``: one greedy answer per item instead (what the completer writes; validation).
        """
        hp = self.hparams
        group = 1 if greedy else hp.group_size
        rows = [dict(item) for item in items for _ in range(group)]
        decoding: dict[str, Any] = (
            {"do_sample": False}
            if greedy
            else {
                "do_sample": True,
                "temperature": hp.temperature,
                "top_p": hp.top_p,
                "top_k": hp.top_k,
            }
        )
        chunk = hp.generation_batch_size or len(rows)
        pad_id = self.policy.tokenizer.pad_token_id
        pieces, lengths = [], []
        was_training = self.policy_model.training
        self.policy_model.eval()
        try:
            for start in range(0, len(rows), chunk):
                part = rows[start : start + chunk]
                enc, cache = generation_inputs(
                    self.policy_model, self.encode_prompts, part, 1 if greedy else self._group()
                )
                # how the completer ends (and, for the stand-in, constrains) its answers
                stop = self.prompts.generate_kwargs(part, enc["input_ids"].size(1), self._eos_ids())
                out = self.policy_model.generate(
                    **enc,
                    cache=cache,
                    **decoding,
                    max_new_tokens=hp.max_new_tokens,
                    pad_token_id=pad_id,
                    suppress_tokens=self._placeholder_ids() or None,
                    **stop,
                )
                generated = out[:, enc["input_ids"].size(1) :]  # (n, k)
                pieces.append(generated)
                lengths += [generated.size(1)] * generated.size(0)
        finally:
            self.policy_model.train(was_training)
        width = max(p.size(1) for p in pieces)
        ids = torch.cat(
            [torch.nn.functional.pad(p, (0, width - p.size(1)), value=pad_id) for p in pieces]
        )  # (N, K)
        produced = torch.arange(width, device=ids.device) < torch.tensor(
            lengths, device=ids.device
        ).unsqueeze(1)  # (N, K): positions the generator actually wrote
        mask = completion_mask(ids, stop["eos_token_id"]) * produced.long()  # (N, K)
        prefix = self.hparams.answer_prefix
        texts = [
            prefix + self.policy.tokenizer.decode(row[m.bool()], skip_special_tokens=True)
            for row, m in zip(ids, mask, strict=True)
        ]  # what the parser and the rewards read: the prefill plus the sampled completion
        return Rollout(rows, ids, mask, texts)

    def _group(self) -> int:
        """G where one prompt pass may serve a group of rows (:mod:`mmpc.grpo.prefix`), else 1.

        Gradient checkpointing turns the model's cache off in training mode; VLM prompts carry
        pixel inputs.
        """
        hp = self.hparams
        return 1 if hp.gradient_checkpointing or self.policy.is_vlm else hp.group_size

    def completion_logps(
        self, rows: list[Mapping[str, Any]], completion_ids: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """``(B, K)`` log-probs of the completions under the current model (adapter as set)."""
        model, encode = self.policy_model, self.encode_prompts
        logits = prompt_logits(model, encode, rows, completion_ids, mask, self._group())
        return completion_token_logps(logits.float(), completion_ids, self.hparams.temperature)

    def _no_grad_logps(self, roll: Rollout, spans: list[slice], *, reference: bool) -> torch.Tensor:
        parts = []
        adapter = self.policy_model.disable_adapter() if reference else contextlib.nullcontext()
        with torch.no_grad(), adapter:
            for s in spans:
                k = int(roll.mask[s].sum(1).max().clamp(min=1))
                lp = self.completion_logps(
                    roll.rows[s], roll.completion_ids[s, :k], roll.mask[s, :k]
                )
                parts.append(torch.nn.functional.pad(lp, (0, roll.mask.size(1) - k)))
        return torch.cat(parts)  # (N, K)

    # ----------------------------------------------------------------------------- training
    def training_step(self, batch: list[Mapping[str, Any]], batch_idx: int) -> None:
        hp = self.hparams
        opt = self.optimizers()
        roll = self.rollout(batch)
        total, components = self.combiner(roll.texts, **roll.columns())
        advantages = group_advantages(total, hp.group_size, scale=hp.scale_rewards).to(self.device)
        n = len(roll.rows)
        step = hp.micro_batch_size
        spans = [slice(s, min(s + step, n)) for s in range(0, n, step)]
        old = self._no_grad_logps(roll, spans, reference=False) if hp.num_iterations > 1 else None
        ref = self._no_grad_logps(roll, spans, reference=True) if hp.beta > 0 else None
        num_items = roll.mask.sum()
        sums = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0}
        for _ in range(hp.num_iterations):
            for s in spans:
                k = int(roll.mask[s].sum(1).max().clamp(min=1))
                ids, mask = roll.completion_ids[s, :k], roll.mask[s, :k]
                logps = self.completion_logps(roll.rows[s], ids, mask)  # (B, k)
                out = policy_loss(
                    logps,
                    logps.detach() if old is None else old[s, :k],
                    advantages[s],
                    mask,
                    loss_type=hp.loss_type,
                    epsilon_low=hp.epsilon,
                    epsilon_high=hp.epsilon_high,
                    beta=hp.beta,
                    ref_logps=None if ref is None else ref[s, :k],
                    max_completion_length=hp.max_new_tokens,
                    num_items_in_batch=num_items,
                    accumulation_steps=len(spans),
                )
                self.manual_backward(out.loss)
                tokens = float(mask.sum())
                sums["loss"] += float(out.policy_loss) / len(spans)
                sums["kl"] += float(out.kl) * tokens
                sums["clip_fraction"] += float(out.clip_fraction) * tokens
            self.clip_gradients(
                opt, gradient_clip_val=hp.max_grad_norm, gradient_clip_algorithm="norm"
            )
            opt.step()
            opt.zero_grad()
        denominator = max(float(num_items), 1.0) * hp.num_iterations
        self.log_dict(
            step_metrics(
                roll,
                total,
                components,
                sums,
                denominator,
                group_size=hp.group_size,
                num_iterations=hp.num_iterations,
                beta=hp.beta,
                key=self.template.key,
            ),
            on_step=True,
            on_epoch=False,
            batch_size=len(batch),
        )

    def validation_step(self, batch: list[Mapping[str, Any]], batch_idx: int) -> None:
        """The reward of the policy's greedy answers to held-out items (``val/reward``), and
        the optimiser steps taken so far (``val/updates``).

        The sampled training reward per step mixes the policy's progress with which items the
        step drew; the same held-out items answered greedily after every few steps show the
        progress alone (the data module's ``val_items``).
        """
        roll = self.rollout(batch, greedy=True)
        total, components = self.combiner(roll.texts, **roll.columns())
        # the logger's step of a validation row lags by one inside an epoch: say which policy
        values = {**reward_means("val", total, components), "val/updates": float(self.global_step)}
        self.log_dict(values, on_step=False, on_epoch=True, batch_size=len(batch))

    # ----------------------------------------------------------------------------- artefacts
    def adapter_path(self) -> Path:
        """``adapter_dir``, or ``<log_dir>/adapter`` (``./adapter`` without a trainer)."""
        if self.hparams.adapter_dir:
            return Path(self.hparams.adapter_dir)
        log_dir = self._trainer.log_dir if self._trainer is not None else None
        return Path(log_dir or ".") / "adapter"

    def save_adapter(self, path: str | Path | None = None) -> Path:
        """Save the LoRA adapter with peft ``save_pretrained`` (written aside, then renamed)."""
        target = Path(path) if path is not None else self.adapter_path()
        with atomic_dir(target) as tmp:
            self.policy_model.save_pretrained(tmp)
        return target

    def on_train_end(self) -> None:
        if self.trainer.is_global_zero:
            self.save_adapter()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trainable = {n for n, p in self.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if k in trainable
        }
        if self._trainer is not None and self.trainer.is_global_zero:
            self.save_adapter()
