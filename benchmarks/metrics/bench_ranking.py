"""Full-ranking Recall/NDCG@{5,10,20,50} beside PyG's ``LinkPredMetricCollection``.

Run: ``uv run python benchmarks/metrics/bench_ranking.py [--users 7235 --items 3289]``
(default sizes: the synthetic MMRec-format data of ``RECSYS_REFERENCE.md``).

Both sides get the same score chunks (1,024 users each, training items at ``-inf``). Ours: one
``top_k_hits`` per chunk shared by ``RecallAtK`` and ``NDCGAtK``, every K read off cumulative
sums ("ours, shared"), and also each class doing its own ``topk`` ("ours, separate"). PyG's
collection does one ``topk`` and then matches indices against the COO held-out list per metric.
Values are checked to agree.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch_geometric.metrics import LinkPredMetricCollection, LinkPredNDCG, LinkPredRecall

from mmpc.metrics import NDCGAtK, RecallAtK
from mmpc.metrics.functional.ranking import top_k_hits

KS = (5, 10, 20, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=7235)
    parser.add_argument("--items", type=int, default=3289)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    chunks = []
    for start in range(0, args.users, args.chunk):
        u = min(args.chunk, args.users - start)
        scores = torch.rand(u, args.items, generator=g)
        target = torch.rand(u, args.items, generator=g) < 1.2 / 100
        train = (torch.rand(u, args.items, generator=g) < 7 / 100) & ~target
        scores[train] = -math.inf
        chunks.append((scores, target, target.nonzero().t()))

    def ours(shared: bool) -> dict[str, float]:
        recall, ndcg = RecallAtK(k=KS), NDCGAtK(k=KS)
        for scores, target, _ in chunks:
            if shared:
                hits = top_k_hits(scores, target, max(KS))
                recall.update(hits)
                ndcg.update(hits)
            else:
                recall.update(scores, target)
                ndcg.update(scores, target)
        r, n = recall.compute(), ndcg.compute()
        return {
            **{f"recall@{k}": r[k].item() for k in KS},
            **{f"ndcg@{k}": n[k].item() for k in KS},
        }

    def pyg() -> dict[str, float]:
        metrics = [LinkPredRecall(k) for k in KS] + [LinkPredNDCG(k) for k in KS]
        collection = LinkPredMetricCollection(metrics)
        for scores, _, label_index in chunks:
            collection.update(scores.topk(max(KS), dim=1).indices, label_index)
        out = collection.compute()
        return {
            name.replace("LinkPredRecall", "recall").replace("LinkPredNDCG", "ndcg"): v.item()
            for name, v in out.items()
        }

    runs = {
        "ours, shared": lambda: ours(True),
        "ours, separate": lambda: ours(False),
        "PyG collection": pyg,
    }
    best = dict.fromkeys(runs, math.inf)
    values: dict[str, dict[str, float]] = {}
    for _ in range(args.repeats):  # alternate, to share a noisy machine fairly
        for name, fn in runs.items():
            start = time.perf_counter()
            values[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    print(
        f"users {args.users} x items {args.items}, K {KS}, torch threads {torch.get_num_threads()}"
    )
    for name in runs:
        diff = max(abs(values[name][key] - values["PyG collection"][key]) for key in values[name])
        print(
            f"{name:<15} {args.users / best[name]:>8.0f} users/s   "
            f"vs PyG {best['PyG collection'] / best[name]:5.2f}x   max|diff| {diff:.1e}"
        )


if __name__ == "__main__":
    main()
