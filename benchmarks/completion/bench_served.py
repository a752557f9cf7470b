"""Items per second through a served SmolLM2: ``max_concurrency`` 16 vs 1, and vs in-process.

Starts ``transformers serve --continuous-batching`` on SmolLM2-135M-Instruct (the packaged GGUF,
converted once into ``$MMPC_CACHE``) on 127.0.0.1, with the paged KV cache capped by
``--cb-num-blocks`` (else it reserves 60% of free memory), and writes the T→I prompts of the
catalogue's CQBench sample through :class:`~mmpc.completion.backends.served.OpenAIChatBackend`:
once with one request in flight, once with ``--concurrency`` in flight; then the same items
through the in-process :class:`~mmpc.completion.backends.textllm.TextLLMBackend` (batches of
``--batch``). Prints items/s, the ratio, and how many answers equal the sequential run's.

As root it re-runs itself in a private network namespace (loopback only) first.

    uv run python benchmarks/completion/bench_served.py --preset demo --items 32
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch

from mmpc.completion.backends.base import BackendContext, Request
from mmpc.completion.backends.served import OpenAIChatBackend
from mmpc.completion.backends.served_launch import Launch, ServerProcess
from mmpc.completion.backends.textllm import TextLLMBackend, convert_gguf, smollm2_gguf
from mmpc.completion.catalog import synthesize
from mmpc.completion.prompts import build_messages, build_text_messages, default_template

CPU = BackendContext(device=torch.device("cpu"))
_ISOLATED = "MMPC_BENCH_SERVED_NETNS"


def _isolate() -> None:
    """Re-exec under ``unshare -n`` (loopback only) when root and other interfaces exist."""
    if os.environ.get(_ISOLATED) or os.geteuid() != 0 or not shutil.which("unshare"):
        return
    if all(name == "lo" for _, name in socket.if_nameindex()):
        return
    os.environ[_ISOLATED] = "1"
    sys.stdout.flush()
    argv = [sys.executable, *sys.argv]
    os.execvp(
        "unshare", ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]
    )


def _served_rate(
    port: int, model: Path, requests: list[Request], tokens: int, concurrency: int
) -> tuple[float, list[str], int]:
    backend = OpenAIChatBackend(
        base_url=f"http://127.0.0.1:{port}/v1",
        model=str(model),
        max_tokens=tokens,
        max_concurrency=concurrency,
        timeout_s=600,
    )
    backend.setup(CPU)
    start = time.perf_counter()
    answers = backend.generate(requests)
    elapsed = time.perf_counter() - start
    retries = backend.totals["retries"]
    backend.teardown()
    return len(requests) / elapsed, answers, retries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16, help="in-process batch size")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--port", type=int, default=18201)
    parser.add_argument("--cb-num-blocks", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="the server's OpenMP threads")
    args = parser.parse_args(argv)
    _isolate()
    smol = convert_gguf(smollm2_gguf())
    with tempfile.TemporaryDirectory() as tmp:
        catalog = synthesize(preset=args.preset, seed=0, out=Path(tmp) / "catalog")
        ids = catalog.sample("cqbench")[: args.items]
        template = default_template("t2i")
        titles = [str(catalog.items.at[i, "title"]) for i in ids]
        chat = [
            Request(i, messages=build_messages(template, title=t))
            for i, t in zip(ids, titles, strict=True)
        ]
        text = [
            Request(i, messages=build_text_messages(template, title=t))
            for i, t in zip(ids, titles, strict=True)
        ]
        exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or "transformers"
        command = [exe, "serve", str(smol), "--host", "127.0.0.1", "--port", str(args.port)]
        command += ["--device", "cpu", "--dtype", "float32", "--continuous-batching"]
        command += ["--cb-num-blocks", str(args.cb_num_blocks)]
        server = ServerProcess(
            Launch(
                command=command,
                env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads)},
                log=f"{tmp}/server.log",
            ),
            f"http://127.0.0.1:{args.port}/v1",
        )
        try:
            print(f"server ready in {server.wait_ready():.1f} s (pid {server.pid})")
            # The first request fixes continuous batching's sampling settings: make it greedy.
            _served_rate(args.port, smol, chat[:1], args.new_tokens, 1)
            seq_rate, seq_answers, r1 = _served_rate(args.port, smol, chat, args.new_tokens, 1)
            par_rate, par_answers, r2 = _served_rate(
                args.port, smol, chat, args.new_tokens, args.concurrency
            )
        finally:
            server.stop()
    local = TextLLMBackend(
        model=str(smol), generation={"max_new_tokens": args.new_tokens, "do_sample": False}
    )
    local.setup(CPU)
    start = time.perf_counter()
    local_answers: list[str] = []
    for i in range(0, len(text), args.batch):
        local_answers += local.generate(text[i : i + args.batch])
    local_rate = len(text) / (time.perf_counter() - start)
    n = len(ids)
    same_par = sum(a == b for a, b in zip(seq_answers, par_answers, strict=True))
    same_local = sum(a == b for a, b in zip(seq_answers, local_answers, strict=True))
    print(f"{n} T→I items ({args.preset} CQBench sample), {args.new_tokens} new tokens at most")
    print(f"served, max_concurrency 1  : {seq_rate:7.3f} items/s  (retries {r1})")
    print(f"served, max_concurrency {args.concurrency:<2}: {par_rate:7.3f} items/s  (retries {r2})")
    print(f"in-process TextLLMBackend, batch {args.batch}: {local_rate:7.3f} items/s")
    print(f"ratio concurrency {args.concurrency} / 1: {par_rate / seq_rate:.2f}x")
    print(
        f"ratio served (concurrency {args.concurrency}) / in-process: {par_rate / local_rate:.2f}x"
    )
    print(
        f"answers equal to the sequential run: concurrency {same_par}/{n}, "
        f"in-process {same_local}/{n}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
