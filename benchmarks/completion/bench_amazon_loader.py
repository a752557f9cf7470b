"""Benchmark: the Amazon Reviews 2023 loader on a generated 1,000,000-line review file.

Generates, in a temporary folder, ``Video_Games.jsonl`` (``--lines`` reviews in the exact
Amazon schema, with review text), ``meta_Video_Games.jsonl`` (``--items`` items) and one small
JPEG cover per item, then runs ``load_amazon`` in a fresh child process and prints its wall time
and peak resident memory (``ru_maxrss`` of that process only) next to the targets.

    uv run python benchmarks/completion/bench_amazon_loader.py [--lines 1000000] [--gz]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

CHILD = """
import json, resource, sys, time
from mmpc.completion.catalog import load_amazon
t = time.perf_counter()
cat = load_amazon("Video_Games", sys.argv[1], sys.argv[1] + "/images", sys.argv[2])
seconds = time.perf_counter() - t
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mib": peak_mib, "counts": cat.manifest["counts"],
                  "dropped": cat.manifest["dropped"]}))
"""
WORDS = [
    "great", "fun", "works", "well", "controller", "battery", "graphics", "story", "fast",
    "shipping", "love", "broke", "after", "week", "kids", "enjoy", "price", "worth", "it",
]  # fmt: skip


def generate(root: Path, lines: int, n_items: int, gz: bool, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True)
    items = [f"B0{j:08d}" for j in range(n_items)]
    for j, item in enumerate(items):
        Image.new("RGB", (32, 32), (j % 256, (7 * j) % 256, 90)).save(images / f"{item}.jpg")
    opener = gzip.open if gz else open
    suffix = ".jsonl.gz" if gz else ".jsonl"
    with opener(root / f"meta_Video_Games{suffix}", "wt", encoding="utf-8") as fh:
        for item in items:
            url = f"https://m.media-amazon.com/images/I/{item}.jpg"
            fh.write(
                json.dumps(
                    {
                        "main_category": "Video Games",
                        "title": f"Game accessory {item}",
                        "average_rating": 4.2,
                        "rating_number": 31,
                        "features": ["Wireless"],
                        "description": ["A generated product."],
                        "price": 19.99,
                        "images": [{"thumb": url, "large": url, "variant": "MAIN", "hi_res": url}],
                        "videos": [],
                        "store": "Bench",
                        "categories": ["Video Games"],
                        "details": {"Brand": "Bench"},
                        "parent_asin": item,
                        "bought_together": None,
                    }
                )
                + "\n"
            )
    pop = rng.lognormal(0.0, 1.0, size=n_items)
    pop /= pop.sum()
    n_users = lines // 6
    user_of = rng.integers(0, n_users, size=lines)
    item_of = rng.choice(n_items, size=lines, p=pop)
    stamps = rng.integers(1_500_000_000_000, 1_690_000_000_000, size=lines)
    ratings = rng.integers(1, 6, size=lines)
    with opener(root / f"Video_Games{suffix}", "wt", encoding="utf-8") as fh:
        for k in range(lines):
            text = " ".join(WORDS[w] for w in rng.integers(0, len(WORDS), size=40))
            item = items[item_of[k]]
            fh.write(
                json.dumps(
                    {
                        "rating": float(ratings[k]),
                        "title": "Review title",
                        "text": text,
                        "images": [],
                        "asin": item,
                        "parent_asin": item,
                        "user_id": f"AG{user_of[k]:010d}",
                        "timestamp": int(stamps[k]),
                        "helpful_vote": 0,
                        "verified_purchase": True,
                    }
                )
                + "\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=4000)
    parser.add_argument("--gz", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "raw"
        t = time.perf_counter()
        generate(root, args.lines, args.items, args.gz)
        gen_s = time.perf_counter() - t
        size_mib = sum(p.stat().st_size for p in root.glob("*.jsonl*")) / 2**20
        run = subprocess.run(
            [sys.executable, "-c", CHILD, str(root), str(Path(tmp) / "out")],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode:
            sys.exit(f"loader failed:\n{run.stderr[-3000:]}")
        res = json.loads(run.stdout.strip().splitlines()[-1])
    parent_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"review lines        {args.lines:>12,}   ({'gzip' if args.gz else 'plain'} jsonl, "
        f"{size_mib:,.0f} MiB raw incl. metadata; generated in {gen_s:.1f} s, "
        f"generator peak {parent_mib:.0f} MiB)"
    )
    print(f"loader wall time    {res['seconds']:>12.1f} s    target < 60 s")
    print(f"loader peak RSS     {res['peak_mib']:>12.0f} MiB  target < 1024 MiB")
    c = res["counts"]
    print(
        f"kept                items {c['items']:,}  users {c['users']:,}  "
        f"interactions {c['interactions']:,}"
    )
    print("dropped             " + ", ".join(f"{k}={v:,}" for k, v in res["dropped"].items()))


if __name__ == "__main__":
    main()
