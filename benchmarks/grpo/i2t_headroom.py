"""How far can the paper's i2t reward move the offline stand-in's TF-IDF cosine? (issue 22)

The offline stand-in (:class:`~mmpc.completion.backends.offline_vlm.OfflineVisionLM`) writes its
title only from the words its attribute probe names (product, colour, pattern, size, brand), so a
GRPO-trained adapter can change only *which* of those words it writes and *in which order*. This
script enumerates every such policy that a single adapter could learn for all items alike (each
ordered subset of the five attributes that keeps the product noun: 261 policies), scores each on
the CQBench sample with

* the paper's i2t reward (JSON format + 2 × MiniLM title cosine, :mod:`mmpc.grpo.rewards`), and
* CQBench's TF-IDF cosine (Table 7's metric; unigrams and bigrams, so order matters),

and prints the reward-maximising policies with their TF-IDF cosine next to the base completer's
greedy answers from a finished run, plus the per-item oracle (the best policy per item, which no
adapter can know) as the metric's ceiling. The gap between "what the reward prefers" and "what
TF-IDF prefers" bounds what GRPO with this reward can show on Table 7.

    uv run python benchmarks/grpo/i2t_headroom.py --run runs/demo
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from mmpc.completion.backends.offline_vlm import AttributeProbe, _word
from mmpc.completion.catalog import Catalog
from mmpc.grpo.rewards import TitleSimilarityReward
from mmpc.metrics.functional.text import tfidf_cosine_similarity

BASE = "offline-vlm-smollm2"


def base_answers(run: Path, ids: list[str], completer: str) -> list[str] | None:
    """The completer's parsed titles from ``run`` (``None`` if it has no records)."""
    rows = {}
    for path in sorted((run / "complete" / completer / "i2t").rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            rows[row["item_id"]] = row.get("output") or ""
    return [rows[i] for i in ids] if rows and all(i in rows for i in ids) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/demo", help="a finished `mmpc bench` run folder")
    parser.add_argument("--completer", default=BASE)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args(argv)
    run = Path(args.run)
    catalog = Catalog.open(run / "catalog" / "catalogue")
    ids = sorted(catalog.sample("cqbench"))
    truth = [str(catalog.items.at[i, "title"]) for i in ids]
    probe = AttributeProbe().fit(catalog)  # the demo's default probe (cached after the run)
    seen = probe.predict([catalog.load_image(i) for i in ids])
    words = [{a: _word(a, v) for a, v in attrs.items()} for attrs in seen]
    reward = TitleSimilarityReward()

    def score(titles: list[str]) -> tuple[np.ndarray, np.ndarray]:
        r = np.asarray(reward([json.dumps({"title": t}) for t in titles], title=truth))
        return r, tfidf_cosine_similarity(titles, truth, reduction="none").numpy()

    policies = [
        order
        for k in range(1, len(probe.attributes) + 1)
        for order in itertools.permutations(probe.attributes, k)
        if "product_type" in order
    ]
    table = []
    per_item_best = np.zeros(len(ids))
    for order in policies:
        r, t = score([" ".join(w[a] for a in order) for w in words])
        per_item_best = np.maximum(per_item_best, t)
        table.append((float(r.mean()), float(t.mean()), order))
    table.sort(key=lambda row: -row[0])
    answers = base_answers(run, ids, args.completer)
    base_r, base_t = score(answers) if answers else (np.array([np.nan]), np.array([np.nan]))
    ref = float(base_t.mean())
    print(f"{len(ids)} CQBench items of {run}; {len(policies)} word-order policies")
    print(
        f"base {args.completer} (greedy, from the run): reward {base_r.mean():.4f}, "
        f"TF-IDF cosine {ref:.4f}"
    )
    print("policies by mean reward (reward, TF-IDF cosine, relative to base):")
    for r, t, order in table[: args.top]:
        print(f"  {r:.4f}  {t:.4f}  {100 * (t / ref - 1):+6.1f}%  {' '.join(order)}")
    best = max(table, key=lambda row: row[1])
    print(
        f"highest TF-IDF policy: {best[1]:.4f} ({100 * (best[1] / ref - 1):+.1f}%), reward "
        f"{best[0]:.4f}, rank {table.index(best) + 1} of {len(table)} by reward: "
        f"{' '.join(best[2])}"
    )
    oracle = float(per_item_best.mean())
    print(
        f"per-item oracle (best policy per item, not learnable): {oracle:.4f} "
        f"({100 * (oracle / ref - 1):+.1f}%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
