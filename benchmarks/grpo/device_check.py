"""Device check: a few GRPO steps (i2t) with a tiny random Qwen2.5-VL, 4-bit base on a GPU.

Prints the device, the per-step wall time (first step, which includes CUDA warm-up, reported
apart) and the peak GPU memory. The model is built from ``Qwen2_5_VLConfig`` by
:func:`mmpc.completion.tiny.save_tiny_qwen2_5_vl`: its outputs are noise, only the machinery
(4-bit loading, LoRA on vision + text layers, sampling, reference pass with the adapter disabled,
clipped updates) is exercised.

On the GPU machine (its own python3 has torch, lightning, transformers, peft; bitsandbytes is
brought as a wheel, ``pip download --no-deps bitsandbytes==0.50.2 -d wheels`` here)::

    python3 -m pip install --no-deps --no-index --target .site wheels/*.whl
    PYTHONPATH=.site:packages/metrics/src:packages/completion/src:packages/grpo/src \\
        python3 benchmarks/grpo/device_check.py --steps 4

On a CPU: ``uv run python benchmarks/grpo/device_check.py --quantization none --steps 2``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from PIL import Image

from mmpc.completion.tiny import save_tiny_qwen2_5_vl
from mmpc.grpo.module import GRPOModule
from mmpc.grpo.rewards import JsonFormatReward, Reward


class CharacterCount(Reward):
    """Completion length / 10: varies within a group, so every step has non-zero advantages."""

    def __call__(self, completions: Sequence[str], **columns: Any) -> list[float]:
        return [len(c) / 10 for c in completions]


class StepTimer(L.Callback):
    """Wall time of every training batch (a GRPO step: sampling, scoring and updates)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, *args: Any) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._start = time.perf_counter()

    def on_train_batch_end(self, *args: Any) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self._start)


def _items(n: int) -> list[dict[str, Any]]:
    gradient = torch.linspace(0, 255, 112).to(torch.uint8)
    out = []
    for i in range(n):
        rgb = torch.stack([gradient.roll(17 * i)] * 3, dim=-1).expand(112, 112, 3)
        out.append(
            {
                "item_id": f"item{i}",
                "title": f"product {i}",
                "image": Image.fromarray(rgb.contiguous().numpy()),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--quantization", choices=["auto", "none", "4bit"], default="auto")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=2, help="prompts per step")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args(argv)

    cuda = torch.cuda.is_available()
    quantization = (
        ("4bit" if cuda else "none") if args.quantization == "auto" else args.quantization
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_tiny_qwen2_5_vl(Path(tmp) / "tiny-qwen2.5-vl")
        module = GRPOModule(
            str(folder),
            rewards={"json_format": JsonFormatReward("title"), "length": CharacterCount()},
            task="i2t",
            quantization=quantization,
            dtype="bfloat16" if cuda else "float32",
            lora_r=16,
            group_size=args.group_size,
            micro_batch_size=4,
            max_new_tokens=args.max_new_tokens,
            beta=0.04,
            learning_rate=1e-4,
            adapter_dir=str(Path(tmp) / "adapter"),
        )
        timer = StepTimer()
        trainer = L.Trainer(
            accelerator="gpu" if cuda else "cpu",
            devices=1,
            max_steps=args.steps,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[timer],
        )
        data = torch.utils.data.DataLoader(
            _items(args.prompts * args.steps), batch_size=args.prompts, collate_fn=list
        )
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        trainer.fit(module, data)
        saved = (Path(tmp) / "adapter" / "adapter_config.json").is_file()

    device = torch.cuda.get_device_name() if cuda else "CPU"
    rest = timer.times[1:] or timer.times
    print(f"device: {device}; base quantization: {quantization}; LoRA r16 (vision + text)")
    print(
        f"steps: {len(timer.times)} × ({args.prompts} prompts × G={args.group_size}, "
        f"max_new_tokens={args.max_new_tokens})"
    )
    print(
        f"first step: {timer.times[0]:.2f} s; later steps: median {statistics.median(rest):.2f} s"
    )
    if cuda:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")
    print(f"adapter saved: {saved}")
    return 0 if saved and len(timer.times) == args.steps else 1


if __name__ == "__main__":
    raise SystemExit(main())
