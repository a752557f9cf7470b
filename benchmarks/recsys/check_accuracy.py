"""Train a recommender to convergence and compare with MMRec's reference numbers.

    uv run python benchmarks/recsys/check_accuracy.py --data /tmp/mmrec_synth --model vbpr \
        --seeds 999 1000 1001 --threads 1

Evaluation is MMRec-compatible (validation items are NOT masked at test time); early stopping on
val/recall@20 with MMRec's stopping_step 20; the test numbers are those of the best validation
epoch. Prints one row per seed, the mean, and MMRec's numbers (seed 999, from
``../shared/RECSYS_REFERENCE.md``, measured by others on the default generated data) with the
relative differences. Writes the per-seed metrics.json files under ``--out``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from mmpc.recsys.data import InteractionDataModule
from mmpc.recsys.module import RecommenderModule

# MMRec (enoche/MMRec e775373) on gen_mmrec_synth.py defaults, seed 999 (RECSYS_REFERENCE.md).
REFERENCE: dict[str, dict[str, float]] = {
    "vbpr": {"epochs": 52, "val/recall@20": 0.0811, "val/ndcg@20": 0.0344,
             "test/recall@10": 0.0513, "test/recall@20": 0.0777,
             "test/ndcg@10": 0.0278, "test/ndcg@20": 0.0347},
    "bm3": {"epochs": 30, "val/recall@20": 0.0308, "val/ndcg@20": 0.0130,
            "test/recall@10": 0.0233, "test/recall@20": 0.0356,
            "test/ndcg@10": 0.0123, "test/ndcg@20": 0.0154},
    "freedom": {"epochs": 102, "val/recall@20": 0.0586, "val/ndcg@20": 0.0257,
                "test/recall@10": 0.0369, "test/recall@20": 0.0568,
                "test/ndcg@10": 0.0192, "test/ndcg@20": 0.0243},
}  # fmt: skip
MODELS = {"vbpr": "VBPR", "bm3": "BM3", "freedom": "FREEDOM"}
# MMRec's model-specific settings used for the reference runs.
MODEL_KWARGS: dict[str, dict] = {
    "vbpr": {"embedding_dim": 64, "reg_weight": 1e-4},
    "bm3": {"embedding_dim": 64, "n_layers": 1, "reg_weight": 0.1, "cl_weight": 2.0,
            "dropout": 0.5},
    "freedom": {"embedding_dim": 64, "knn_k": 10, "mm_image_weight": 0.1, "dropout": 0.8,
                "reg_weight": 1e-4},
}  # fmt: skip
COLUMNS = list(REFERENCE["vbpr"])


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, float]:
    """Fit one seed (weights and sampling) and return its metrics row."""
    L.seed_everything(seed, verbose=False)
    dm = InteractionDataModule(args.data, seed=seed, mask_valid_at_test=False)
    cls = getattr(importlib.import_module("mmpc.recsys.models"), MODELS[args.model])
    model = cls(dm.num_users, dm.num_items, dm.feature_dims, **MODEL_KWARGS[args.model])
    module = RecommenderModule(model)
    out = Path(args.out) / args.model / f"seed{seed}"
    trainer = L.Trainer(
        max_epochs=args.max_epochs, accelerator=args.accelerator, devices=1,
        default_root_dir=out, logger=L.pytorch.loggers.CSVLogger(out, name="", version=""),
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    seconds = time.perf_counter() - start
    trainer.test(module, datamodule=dm, ckpt_path="best", verbose=False)
    metrics = json.loads((out / "metrics.json").read_text())
    row = {"epochs": metrics["epochs_run"], **metrics["best_val"], **metrics["test"]}
    row["s/epoch"] = seconds / max(metrics["epochs_run"], 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="MMRec-format folder")
    parser.add_argument("--model", choices=sorted(MODELS), default="vbpr")
    parser.add_argument("--seeds", type=int, nargs="+", default=[999])
    parser.add_argument("--out", default="runs/check_accuracy")
    parser.add_argument("--max_epochs", type=int, default=1000)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = {seed: run_seed(args, seed) for seed in args.seeds}
    ref = REFERENCE[args.model]
    header = ["run", *COLUMNS, "s/epoch"]
    print(" | ".join(header))
    for seed, row in rows.items():
        print(" | ".join([f"seed {seed}", *(f"{row[c]:.4f}" for c in COLUMNS),
                          f"{row['s/epoch']:.2f}"]))  # fmt: skip
    mean = {c: float(np.mean([r[c] for r in rows.values()])) for c in [*COLUMNS, "s/epoch"]}
    print(" | ".join(["mean", *(f"{mean[c]:.4f}" for c in COLUMNS), f"{mean['s/epoch']:.2f}"]))
    print(" | ".join(["MMRec seed 999", *(f"{ref[c]:.4f}" for c in COLUMNS), "-"]))
    rel = {c: (mean[c] - ref[c]) / ref[c] for c in COLUMNS}
    print(" | ".join(["rel. diff (mean)", *(f"{100 * rel[c]:+.1f}%" for c in COLUMNS), "-"]))


if __name__ == "__main__":
    main()
