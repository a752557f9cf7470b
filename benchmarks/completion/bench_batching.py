"""Items per second: batched vs one-at-a-time MLLM generation, with identical greedy outputs.

Builds a tiny random Qwen2.5-VL (or Gemma-3) from its real config (``mmpc.completion.tiny``) and
the tiny synthetic catalogue in a temporary folder, then runs the i2t prompt for ``--items``
covers through :class:`~mmpc.completion.backends.mllm.MLLMBackend` twice: one request per
``generate`` call, and ``--batch`` requests per call (left padding). Every sequence is forced to
``--new-tokens`` tokens (``min_new_tokens``) so both runs do the same work. Prints both rates, the
ratio, and whether the decoded answers are identical.

    uv run python benchmarks/completion/bench_batching.py --model qwen --items 32 --batch 16
    uv run python benchmarks/completion/bench_batching.py --device cuda --quantization nf4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from mmpc.completion.backends.base import BackendContext, Request
from mmpc.completion.backends.mllm import MLLMBackend
from mmpc.completion.catalog import synthesize
from mmpc.completion.prompts import build_messages, default_template
from mmpc.completion.tiny import save_tiny_gemma3, save_tiny_qwen2_5_vl


def _rate(backend: MLLMBackend, requests: list[Request], batch: int) -> tuple[float, list[str]]:
    answers: list[str] = []
    if backend._device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(0, len(requests), batch):
        answers += backend.generate(requests[i : i + batch])
    if backend._device.type == "cuda":
        torch.cuda.synchronize()
    return len(requests) / (time.perf_counter() - start), answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["qwen", "gemma"], default="qwen")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quantization", choices=["none", "nf4"], default="none")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0: torch's default; 1 avoids thread contention on a shared box)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = (save_tiny_qwen2_5_vl if args.model == "qwen" else save_tiny_gemma3)(
            Path(tmp) / args.model
        )
        catalog = synthesize("tiny", 0, Path(tmp) / "catalog")
        dtype = "float32" if args.device == "cpu" else "float16"
        backend = MLLMBackend(
            str(folder),
            quantization=args.quantization,
            compute_dtype=dtype,
            generation={
                "max_new_tokens": args.new_tokens,
                "min_new_tokens": args.new_tokens,
                "do_sample": False,
            },
        )
        backend.setup(BackendContext(device=torch.device(args.device)))
        template = default_template("i2t")
        ids = sorted(catalog.items.index)
        ids = (ids * (args.items // len(ids) + 1))[: args.items]
        requests = []
        for item in ids:
            image = catalog.load_image(item)
            requests.append(Request(item, build_messages(template, image=image), image=image))
        backend.generate(requests[:2])  # warm-up
        single_rate, single = _rate(backend, requests, 1)
        batch_rate, batched = _rate(backend, requests, args.batch)
    same = single == batched
    print(
        f"tiny random {args.model} (TINY RANDOM MODEL: speed only), device {args.device}, "
        f"quantization {args.quantization}, {args.items} items, {args.new_tokens} new tokens"
    )
    print(f"one-at-a-time : {single_rate:8.2f} items/s")
    print(f"batch {args.batch:<8}: {batch_rate:8.2f} items/s")
    print(f"speed-up      : {batch_rate / single_rate:8.2f}x")
    print(
        f"identical greedy outputs: {same} "
        f"({sum(a == b for a, b in zip(single, batched, strict=True))}/{len(single)})"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
