"""Before / after GRPO on held-out items: the base model against base + the trained LoRA adapter.

    uv run python benchmarks/grpo/before_after.py --catalog runs/demo/catalog \
        --adapter runs/demo/grpo/demo_t2i/version_0/adapter --answer-prefix '{"prompt": "'

Both sides are :class:`mmpc.completion.backends.textllm.TextLLMBackend` (what ``mmpc complete``
runs), with greedy decoding (or ``--temperature T`` sampling, as in training, same seed) and the
same prompt, on the catalogue's CQBench sample (disjoint from
the GRPO sample the adapter was trained on). Answers are scored with the demo's training rewards:
the JSON-format reward and the image-similarity reward (retrieval renderer BASELINE, offline
ST-LPIPS AlexNet features, scale 4; the reference items exclude the evaluated sample). Prints
parse rate, mean image similarity over all items (0 for an unparsed answer) and over parsed
answers only, the mean prompt length, and a paired bootstrap CI of the per-item reward change.
This is the offline stand-in for the paper's before/after tables (7-9), not their metrics.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

import numpy as np
import torch

from mmpc.completion.backends.base import BackendContext, Request
from mmpc.completion.backends.retrieval import RetrievalRenderer
from mmpc.completion.backends.textllm import TextLLMBackend
from mmpc.completion.catalog import Catalog
from mmpc.completion.parsing import parse_answer
from mmpc.completion.prompts import build_text_messages, default_template
from mmpc.grpo.rewards import ImageSimilarityReward, JsonFormatReward


def run_side(
    name: str,
    adapter: str | None,
    args: argparse.Namespace,
    requests: list[Request],
    ctx: BackendContext,
) -> tuple[list[str], float]:
    generation: dict[str, Any] = {"max_new_tokens": args.max_new_tokens, "do_sample": False}
    if args.temperature > 0:  # sampled as in training, the same seed for both sides
        generation.update(do_sample=True, temperature=args.temperature, top_p=1.0, top_k=0)
        torch.manual_seed(args.seed)
    backend = TextLLMBackend(
        args.model,
        generation=generation,
        adapter=adapter,
        answer_prefix=args.answer_prefix,
    )
    backend.setup(ctx)
    start = time.perf_counter()
    answers: list[str] = []
    for lo in range(0, len(requests), args.batch_size):
        answers += backend.generate(requests[lo : lo + args.batch_size])
        print(f"{name}: {len(answers)}/{len(requests)}", end="\r", flush=True)
    return answers, time.perf_counter() - start


def bootstrap_ci(diff: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(n, len(diff)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--adapter", required=True, help="the folder `mmpc grpo fit` printed")
    parser.add_argument("--model", default=None, help="base model (default: packaged SmolLM2)")
    parser.add_argument("--answer-prefix", default="", help="the prefill used in training")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--temperature", type=float, default=0.0, help="0: greedy; > 0: sample as in training"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="first N sample items (0: all)")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    catalog = Catalog.open(args.catalog, verify_hashes=False)
    sample = catalog.sample("cqbench")
    items = sample[: args.limit] if args.limit else sample
    template = default_template("t2i")
    titles = [str(catalog.items.at[i, "title"]) for i in items]
    requests = [
        Request(i, build_text_messages(template, title=t), title=t)
        for i, t in zip(items, titles, strict=True)
    ]
    ctx = BackendContext(device=torch.device("cpu"), catalog=catalog, sample_ids=frozenset(sample))
    similarity = ImageSimilarityReward(
        RetrievalRenderer(exclude="sample"), encoder="stlpips", scale=4.0, renders=1
    )
    similarity.setup(ctx)
    fmt = JsonFormatReward(template.key)
    columns: dict[str, Any] = {
        "item_id": items,
        "image": [catalog.load_image(i) for i in items],
    }

    rows, per_item = [], {}
    for name, adapter in (("base", None), ("base + adapter", args.adapter)):
        answers, seconds = run_side(name, adapter, args, requests, ctx)
        parsed = [parse_answer(a, template.key) for a in answers]
        sims = similarity(answers, **columns)
        formats = fmt(answers, **columns)
        ok = [s for s, p in zip(sims, parsed, strict=True) if p.ok]
        lengths = [len(p.value.split()) for p in parsed if p.ok]
        per_item[name] = np.array(formats) + np.array(sims)
        rows.append(
            (
                name,
                sum(p.ok for p in parsed) / len(parsed),
                statistics.fmean(sims),
                statistics.fmean(ok) if ok else float("nan"),
                statistics.fmean(lengths) if lengths else float("nan"),
                float(per_item[name].mean()),
                seconds,
            )
        )
        example = random.Random(0).choice(
            [a for a, p in zip(answers, parsed, strict=True) if p.ok] or answers
        )
        print(f"{name}: example answer: {example[:160]!r}")

    decoding = f"temperature {args.temperature}" if args.temperature > 0 else "greedy"
    print(
        f"\n{len(items)} held-out CQBench items, {decoding}, max_new_tokens {args.max_new_tokens}, "
        f"answer prefix {args.answer_prefix!r}; similarity: {similarity.label} (scale 4)"
    )
    print(
        f"{'model':<16}{'parsed':>8}{'sim (all)':>11}{'sim (parsed)':>14}{'words':>7}"
        f"{'reward':>8}{'gen s':>8}"
    )
    for name, rate, sim_all, sim_ok, words, reward, seconds in rows:
        print(
            f"{name:<16}{rate:>8.1%}{sim_all:>11.3f}{sim_ok:>14.3f}{words:>7.1f}"
            f"{reward:>8.3f}{seconds:>8.1f}"
        )
    diff = per_item["base + adapter"] - per_item["base"]
    low, high = bootstrap_ci(diff)
    print(
        f"reward change per item: {diff.mean():+.3f} (95% paired bootstrap CI {low:+.3f} .. ",
        end="",
    )
    print(f"{high:+.3f})")


if __name__ == "__main__":
    main()
