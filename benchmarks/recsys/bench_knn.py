"""Time and peak memory of FREEDOM's chunked kNN item graph (vs MMRec's dense n×n construction).

Each configuration runs in its own subprocess so its peak resident memory (``ru_maxrss``) is its
own. The features are random (n × d float32, generated inside the subprocess, so they count in
the peak). MMRec's dense construction (full ``n × n`` similarity, then ``topk``) is run only
where it fits (``--dense-max``); above that its similarity matrix alone needs ``4 n²`` bytes
(printed, not measured).

    uv run python benchmarks/recsys/bench_knn.py                       # 63,000 × {384, 4096}
    uv run python benchmarks/recsys/bench_knn.py --items 8000 --dims 384 4096 --dense-max 8000
    uv run python benchmarks/recsys/bench_knn.py --dims 4096 --max-chunks 2   # 2 of 62 blocks

With ``--max-chunks`` only the first blocks of query rows are computed (against all items): the
peak memory is the full build's (same features, same block size); the full time is extrapolated
linearly and labelled as such.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def run_one(
    items: int, dim: int, k: int, chunk: int, method: str, threads: int, max_chunks: int
) -> dict:
    import torch

    from mmpc.recsys.graph import knn_graph, knn_neighbours

    torch.set_num_threads(threads)
    features = torch.rand(items, dim, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    rows = min(items, max_chunks * chunk) if max_chunks else items
    if method == "chunked" and rows < items:  # first rows only: same blocks, same peak
        nnz = knn_neighbours(features, k, chunk, progress=True, rows=(0, rows)).numel()
    elif method == "chunked":
        indices, _ = knn_graph(features, k, chunk_size=chunk, progress=True)
        nnz = indices.shape[1]
    else:  # MMRec: normalise, full n × n similarity, topk
        normed = features / features.norm(dim=-1, keepdim=True)
        sim = normed @ normed.T
        nnz = sim.topk(k, dim=-1).indices.numel()
    seconds = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    out = {"method": method, "items": items, "dim": dim, "k": k, "chunk": chunk,
           "threads": threads, "query_rows": rows, "seconds": round(seconds, 1),
           "peak_rss_gib": round(peak_gib, 2), "features_gib": round(items * dim * 4 / 2**30, 2),
           "edges": nnz}  # fmt: skip
    if rows < items:
        out["seconds_all_rows_extrapolated"] = round(seconds * items / rows, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=63000)
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 4096])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dense-max", type=int, default=0, help="run MMRec's dense way up to n")
    parser.add_argument(
        "--max-chunks", type=int, default=0, help="time only this many row blocks (0 = all)"
    )
    parser.add_argument("--one", nargs=2, metavar=("DIM", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        dim, method = int(args.one[0]), args.one[1]
        row = run_one(args.items, dim, args.k, args.chunk, method, args.threads, args.max_chunks)
        print(json.dumps(row))
        return
    for dim in args.dims:
        methods = ["chunked"] + (["dense"] if args.items <= args.dense_max else [])
        for method in methods:
            cmd = [sys.executable, __file__, "--items", str(args.items), "--k", str(args.k),
                   "--chunk", str(args.chunk), "--threads", str(args.threads),
                   "--max-chunks", str(args.max_chunks), "--one", str(dim), method]  # fmt: skip
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            print(out.strip().splitlines()[-1], flush=True)
        if args.items > args.dense_max:
            gib = 4 * args.items**2 / 2**30
            print(json.dumps({"method": "dense (MMRec, not run)", "items": args.items,
                              "dim": dim, "similarity_matrix_gib": round(gib, 1)}))  # fmt: skip


if __name__ == "__main__":
    main()
