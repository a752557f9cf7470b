"""How far can the paper's i2t reward move the offline stand-in's TF-IDF cosine? (issue 22)

The offline stand-in (:class:`~mmpc.completion.backends.offline_vlm.OfflineVisionLM`) writes its
title only from the words its attribute probe names (product, colour, pattern, size, brand), so a
GRPO-trained adapter can change only *which* of those words it writes and *in which order*. This
script enumerates every such word-order policy (each ordered subset of the five attributes that
keeps the product noun: 261 policies), scores each on every CQBench item with

* the paper's i2t reward (JSON format + 2 × MiniLM title cosine, :mod:`mmpc.grpo.rewards`), and
* CQBench's TF-IDF cosine (Table 7's metric; unigrams and bigrams, so order matters),

and prints what a policy that maximises the reward would score on TF-IDF, against the base
completer's greedy answers from a finished run, at four levels of what the policy may know:

1. **uniform**: one policy for every item (what a single adapter applies regardless of the
   caption); the reward's best ones, and the best by TF-IDF with its rank by reward;
2. **conditional**: one policy per value of one probe word (e.g. a policy per named brand), the
   most an adapter could learn from which words the caption names; chosen on half of the items
   and scored on the other half (cross-validated, 20 random halvings), and in-sample as an upper
   bound; and the reward-best uniform policy that also drops every word the probe is less than
   30%, 50% or 70% sure of (the caption could say so);
3. **per item**: the reward's best policy for each item, which needs the true title (no adapter
   can know it): shows whether the reward and TF-IDF agree item by item;
4. ``--perfect``: uniform policies on the catalogue's TRUE attributes (a probe that never errs),
   against the mean of the orders that write all five words (what the base writes).

    uv run python benchmarks/grpo/i2t_headroom.py --run runs/demo [--perfect]

The reward is computed for 261 × 180 titles per level (about 4 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from mmpc.completion.backends.offline_vlm import ATTRIBUTES, AttributeProbe, _word
from mmpc.completion.catalog import Catalog
from mmpc.grpo.rewards import TitleSimilarityReward
from mmpc.metrics.functional.text import tfidf_cosine_similarity

BASE = "offline-vlm-smollm2"
Policy = tuple[str, ...]


def base_answers(run: Path, ids: list[str], completer: str) -> list[str] | None:
    """The completer's parsed titles from ``run`` (``None`` if it has no records)."""
    rows = {}
    for path in sorted((run / "complete" / completer / "i2t").rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            rows[row["item_id"]] = row.get("output") or ""
    return [rows[i] for i in ids] if rows and all(i in rows for i in ids) else None


class Scorer:
    """The reward and TF-IDF cosine of titles against the items' true titles, per item."""

    def __init__(self, truth: list[str]) -> None:
        self.truth = truth
        self.reward = TitleSimilarityReward()

    def __call__(self, titles: list[str]) -> tuple[np.ndarray, np.ndarray]:
        r = np.asarray(self.reward([json.dumps({"title": t}) for t in titles], title=self.truth))
        return r, tfidf_cosine_similarity(titles, self.truth, reduction="none").numpy()

    def policies(
        self, words: list[dict[str, str]], policies: list[Policy]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(P, N)`` reward and TF-IDF of every policy on every item."""
        scores = [self([" ".join(w[a] for a in order) for w in words]) for order in policies]
        return np.stack([r for r, _ in scores]), np.stack([t for _, t in scores])


def conditional(
    reward: np.ndarray, tfidf: np.ndarray, keys: list[str], fit: np.ndarray, score: np.ndarray
) -> tuple[float, float]:
    """Mean reward and TF-IDF on items ``score`` of the reward-best policy per key, chosen on
    items ``fit`` (a key unseen there gets the reward-best policy over all of ``fit``)."""
    fallback = int(reward[:, fit].mean(1).argmax())
    chosen = {}
    for key in {keys[i] for i in fit}:
        group = [i for i in fit if keys[i] == key]
        chosen[key] = int(reward[:, group].mean(1).argmax())
    picks = np.array([chosen.get(keys[i], fallback) for i in score])
    return float(reward[picks, score].mean()), float(tfidf[picks, score].mean())


def relative(value: float, ref: float) -> str:
    return f"{value:.4f} ({100 * (value / ref - 1):+.1f}%)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/demo", help="a finished `mmpc bench` run folder")
    parser.add_argument("--completer", default=BASE)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--halvings", type=int, default=20)
    parser.add_argument("--perfect", action="store_true", help="also score the true attributes")
    args = parser.parse_args(argv)
    run = Path(args.run)
    catalog = Catalog.open(run / "catalog" / "catalogue")
    ids = sorted(catalog.sample("cqbench"))
    score = Scorer([str(catalog.items.at[i, "title"]) for i in ids])
    probe = AttributeProbe().fit(catalog)  # the demo's default probe (cached after the run)
    probs = probe.probabilities([catalog.load_image(i) for i in ids])
    confidence = {a: p.max(1).values.numpy() for a, p in probs.items()}
    words = [
        {a: _word(a, probe.vocab[a][int(p[n].argmax())]) for a, p in probs.items()}
        for n in range(len(ids))
    ]
    policies = [
        order
        for k in range(1, len(ATTRIBUTES) + 1)
        for order in itertools.permutations(ATTRIBUTES, k)
        if "product_type" in order
    ]
    reward, tfidf = score.policies(words, policies)
    answers = base_answers(run, ids, args.completer)
    base_r, base_t = score(answers) if answers else (np.array([np.nan]), np.array([np.nan]))
    ref = float(base_t.mean())
    print(f"{len(ids)} CQBench items of {run}; {len(policies)} word-order policies")
    print(
        f"base {args.completer} (greedy, from the run): reward {base_r.mean():.4f}, "
        f"TF-IDF cosine {ref:.4f}"
    )

    print("1. uniform policies by mean reward (reward, TF-IDF cosine, relative to base):")
    by_reward = np.argsort(-reward.mean(1), kind="stable")
    for j in by_reward[: args.top]:
        named = " ".join(policies[j])
        print(f"  {reward[j].mean():.4f}  {relative(tfidf[j].mean(), ref)}  {named}")
    best = int(tfidf.mean(1).argmax())
    rank = int(np.where(by_reward == best)[0][0]) + 1
    print(
        f"  highest TF-IDF: {relative(tfidf[best].mean(), ref)}, reward {reward[best].mean():.4f},"
        f" rank {rank} of {len(policies)} by reward: {' '.join(policies[best])}"
    )

    print("2. one reward-best policy per value of one probe word (reward, TF-IDF):")
    rng = np.random.default_rng(0)
    everyone = np.arange(len(ids))
    for attribute in ATTRIBUTES:
        keys = [w[attribute] for w in words]
        held = []
        for _ in range(args.halvings):
            order = rng.permutation(len(ids))
            a, b = order[: len(ids) // 2], order[len(ids) // 2 :]
            held += [conditional(reward, tfidf, keys, a, b), conditional(reward, tfidf, keys, b, a)]
        r_cv, t_cv = np.mean(held, axis=0)
        r_in, t_in = conditional(reward, tfidf, keys, everyone, everyone)
        print(
            f"  per {attribute:<12} ({len(set(keys)):>2} values): cross-validated {r_cv:.4f}, "
            f"{relative(t_cv, ref)}; in-sample {r_in:.4f}, {relative(t_in, ref)}"
        )

    top = policies[int(by_reward[0])]
    for level in (0.3, 0.5, 0.7):
        titles = [
            " ".join(w[a] for a in top if a == "product_type" or confidence[a][n] >= level)
            for n, w in enumerate(words)
        ]
        r, t = score(titles)
        print(
            f"  {' '.join(top)}, dropping words the probe is < {level:.0%} sure of: "
            f"{r.mean():.4f}, {relative(float(t.mean()), ref)}"
        )

    pick = reward.argmax(0)
    r_item, t_item = reward[pick, everyone].mean(), tfidf[pick, everyone].mean()
    print(
        "3. per-item reward-best policy (needs the true title): reward "
        f"{r_item:.4f}, TF-IDF {relative(t_item, ref)};"
        f" per-item TF-IDF oracle {relative(tfidf.max(0).mean(), ref)}"
    )

    if args.perfect:
        truth = [{a: _word(a, str(catalog.items.at[i, a])) for a in ATTRIBUTES} for i in ids]
        reward, tfidf = score.policies(truth, policies)
        full = [j for j, order in enumerate(policies) if len(order) == len(ATTRIBUTES)]
        base_like = float(tfidf[full].mean())
        j = int(reward.mean(1).argmax())
        print(
            "4. true attributes: the reward-best uniform policy "
            f"{' '.join(policies[j])} scores reward {reward[j].mean():.4f}, TF-IDF "
            f"{relative(tfidf[j].mean(), base_like)} against {base_like:.4f}, the mean of the "
            f"{len(full)} orders of all five words (best of them "
            f"{relative(float(tfidf[full].mean(1).max()), base_like)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
