"""BM3 / FREEDOM: our training step and evaluation pass vs MMRec's way, side by side, one run.

"MMRec's way" is the same maths computed as MMRec's code does it: every batch projects and
predicts *all* items (then indexes the batch), Adam is torch's default (non-fused) one, and the
evaluation propagates the graph again for every chunk of users. Both use the same model object,
graphs and batches, so the ratio isolates the implementation choices. ``ours`` uses a fused Adam
(same update rule); ``ours_default_adam`` is what ``RecommenderModule`` does today.

    uv run python benchmarks/recsys/bench_graph_models.py --root /tmp/mmrec_synth --threads 1
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from mmpc.recsys.data import BPRBatches, InteractionDataModule
from mmpc.recsys.models.bm3 import BM3
from mmpc.recsys.models.freedom import FREEDOM, bpr_loss


def mmrec_bm3_loss(m: BM3, users, items, _neg):
    u_ori, i_ori = m.propagate()
    feats = {mod: m.projections[mod](m.table(mod)) for mod in m.projections}  # all items
    with torch.no_grad():
        u_t, i_t = F.dropout(u_ori, m.dropout), F.dropout(i_ori, m.dropout)
        f_t = {mod: F.dropout(f, m.dropout) for mod, f in feats.items()}
    u_on, i_on = m.predictor(u_ori)[users], m.predictor(i_ori)[items]  # all users / items
    u_t, i_t = u_t[users], i_t[items]
    loss = 2 - F.cosine_similarity(u_on, i_t).mean() - F.cosine_similarity(i_on, u_t).mean()
    loss = loss + m.reg_weight * (u_ori.norm() + i_ori.norm()) / m.num_items
    for mod, f in feats.items():
        on = m.predictor(f)[items]
        cl = (
            2
            - F.cosine_similarity(on, i_t).mean()
            - F.cosine_similarity(on, f_t[mod][items]).mean()
        )
        loss = loss + m.cl_weight * cl
    return loss


def mmrec_freedom_loss(m: FREEDOM, users, pos, neg):
    u_all, i_all = m.propagate(m.pruned_indices, m.pruned_values)
    loss = bpr_loss(u_all[users], i_all[pos], i_all[neg])
    for mod, proj in m.projections.items():
        f = proj(m.table(mod))  # all items
        loss = loss + m.reg_weight * bpr_loss(u_all[users], f[pos], f[neg])
    return loss


def time_train(model, loss_fn, batches, fused: bool) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    times = []
    for b in batches:
        start = time.perf_counter()
        opt.zero_grad()
        loss_fn(*b).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def time_eval(model, users: torch.Tensor, cached: bool, chunk: int = 4096) -> float:
    start = time.perf_counter()
    if cached:
        model.prepare_eval()
    for part in users.split(chunk):
        model.full_scores(part).topk(50, dim=-1)
    model.end_eval()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dm = InteractionDataModule(args.root)
    data = dm.load()
    users = data.eval_users("valid")
    for cls, mmrec_loss in ((BM3, mmrec_bm3_loss), (FREEDOM, mmrec_freedom_loss)):
        torch.manual_seed(0)
        model = cls(data.num_users, data.num_items, dm.feature_dims)
        model.setup_data(data)
        model.on_train_epoch_start(0)
        batches = list(BPRBatches(data.train, 2048, 0, cls.uses_negatives))[: args.batches]
        batches = [b if len(b) == 3 else (*b, None) for b in batches]
        row = {"model": cls.__name__, "threads": args.threads, "batches": len(batches)}
        ours = lambda *b, m=model: m.loss(*b)["loss"]  # noqa: E731
        theirs = lambda *b, m=model, f=mmrec_loss: f(m, *b)  # noqa: E731
        row["train_step_s_ours"] = round(time_train(model, ours, batches, True), 4)
        row["train_step_s_ours_default_adam"] = round(time_train(model, ours, batches, False), 4)
        row["train_step_s_mmrec_way"] = round(time_train(model, theirs, batches, False), 4)
        row["eval_pass_s_ours"] = round(time_eval(model, users, cached=True), 3)
        row["eval_pass_s_mmrec_way"] = round(time_eval(model, users, cached=False, chunk=4096), 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
