"""GPU: vLLM vs the in-process MLLMBackend on Qwen2.5-VL-7B-Instruct, I→T, equal greedy answers.

Goal: at least 5× the items/s of in-process ``generate`` at equal greedy answers. NOT runnable on
a CPU-only machine: it needs a CUDA GPU, the ``vllm`` package (``uv pip install vllm``) and the
weights as a local folder (or in the Hugging Face cache); it says which is missing and exits 3.

It starts ``vllm serve <weights>`` on 127.0.0.1 through the backend's own ``launch`` code, sends
the I→T requests of ``--items`` CQBench covers of a synthetic catalogue with ``max_concurrency``
``--concurrency``, then stops vLLM, loads the same weights in process (``MLLMBackend``,
unquantised bf16 so both sides run the same weights; ``--quantization nf4`` for the paper's 4-bit)
and answers the same requests in batches of ``--batch``. Prints both rates, the ratio and how many
answers are identical.

    uv run python benchmarks/completion/bench_served_vllm.py --weights /models/Qwen2.5-VL-7B
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from mmpc.completion.backends.base import BackendContext, Request
from mmpc.completion.backends.mllm import MLLMBackend
from mmpc.completion.backends.served import OpenAIChatBackend
from mmpc.completion.backends.served_launch import Launch
from mmpc.completion.catalog import synthesize
from mmpc.completion.prompts import build_messages, default_template


def _missing(weights: str) -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device: this benchmark needs a GPU"
    if importlib.util.find_spec("vllm") is None or shutil.which("vllm") is None:
        return "vLLM is not installed: `uv pip install vllm` (a CUDA build)"
    if not Path(weights).expanduser().is_dir():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(weights, "config.json"), str):
            return f"weights {weights!r} are not a local folder nor in the HF cache: pass --weights"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="Qwen/Qwen2.5-VL-7B-Instruct")
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--items", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--port", type=int, default=18301)
    parser.add_argument("--quantization", choices=["none", "nf4"], default="none")
    args = parser.parse_args(argv)
    if (reason := _missing(args.weights)) is not None:
        print(f"bench_served_vllm: {reason}", file=sys.stderr)
        return 3
    weights = str(Path(args.weights).expanduser()) if Path(args.weights).exists() else args.weights
    ctx = BackendContext(device=torch.device("cuda"))
    with tempfile.TemporaryDirectory() as tmp:
        catalog = synthesize(preset=args.preset, seed=0, out=Path(tmp) / "catalog")
        template = default_template("i2t")
        ids = catalog.sample("cqbench")[: args.items]
        requests = [
            Request(i, messages=build_messages(template, image=catalog.load_image(i))) for i in ids
        ]
        command = ["vllm", "serve", weights, "--host", "127.0.0.1", "--port", str(args.port)]
        command += ["--dtype", "bfloat16", "--max-model-len", "8192", "--seed", "0"]
        command += ["--limit-mm-per-prompt", '{"image": 1}', "--generation-config", "auto"]
        if args.quantization == "nf4":
            command += ["--quantization", "bitsandbytes"]
        served = OpenAIChatBackend(
            base_url=f"http://127.0.0.1:{args.port}/v1",
            model=weights,
            max_tokens=args.new_tokens,
            max_concurrency=args.concurrency,
            timeout_s=600,
            launch=Launch(command=command, startup_timeout_s=1800, log=f"{tmp}/vllm.log"),
        )
        served.setup(ctx)
        served.generate(requests[:2])  # warm-up (CUDA graphs, the image processor)
        start = time.perf_counter()
        served_answers = served.generate(requests)
        served_rate = len(requests) / (time.perf_counter() - start)
        served.teardown()
        local = MLLMBackend(
            model=weights,
            quantization=args.quantization,
            compute_dtype="bfloat16",
            generation={"max_new_tokens": args.new_tokens, "do_sample": False},
        )
        local.setup(ctx)
        local.generate(requests[:2])
        torch.cuda.synchronize()
        start = time.perf_counter()
        local_answers: list[str] = []
        for i in range(0, len(requests), args.batch):
            local_answers += local.generate(requests[i : i + args.batch])
        torch.cuda.synchronize()
        local_rate = len(requests) / (time.perf_counter() - start)
    n = len(requests)
    same = sum(a == b for a, b in zip(served_answers, local_answers, strict=True))
    print(f"{n} I→T items, {args.new_tokens} new tokens at most, {torch.cuda.get_device_name()}")
    print(f"vLLM (max_concurrency {args.concurrency}): {served_rate:8.3f} items/s")
    print(f"in-process MLLMBackend (batch {args.batch}): {local_rate:8.3f} items/s")
    print(f"ratio: {served_rate / local_rate:.2f}x (goal >= 5x); identical answers {same}/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
