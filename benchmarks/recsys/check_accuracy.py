"""Train a recommender to convergence and compare with MMRec's reference numbers.

    uv run python benchmarks/recsys/check_accuracy.py --data /tmp/mmrec_synth --model vbpr \
        --seeds 999 1000 1001 --threads 1

Evaluation is MMRec-compatible (validation items are NOT masked at test time); early stopping on
val/recall@20 with MMRec's stopping_step 20; the test numbers are those of the best validation
epoch. Prints one row per seed, the mean, and MMRec's numbers (seed 999, from
``../shared/RECSYS_REFERENCE.md``, measured by others on the default generated data) with the
relative differences. Writes the per-seed metrics.json files under ``--out``.

On other data, pass MMRec's numbers for that data with ``--reference-json PATH``: a JSON object
with the keys of ``REFERENCE`` (``epochs``, ``val/recall@20``, ..., ``test/ndcg@20``), either flat
(one MMRec run) or keyed by model name (``{"vbpr": {...}, "bm3": {...}}``); an optional
``"label"`` string names the MMRec row (default ``MMRec (reference JSON)``). ``--reuse`` prints
the comparison from the seeds already run under ``--out`` (their ``row.json``, else
``metrics.json`` without the timing) instead of training them again.
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


def load_reference(path: str, model: str) -> tuple[dict[str, float], str]:
    """MMRec's numbers from a JSON file (flat, or keyed by model name) and the row's label."""
    data = json.loads(Path(path).read_text())
    if model in data:
        data = data[model]
    missing = [c for c in COLUMNS if c not in data]
    if missing:
        raise SystemExit(f"{path}: no {', '.join(missing)} for {model}")
    return {c: float(data[c]) for c in COLUMNS}, str(data.get("label", "MMRec (reference JSON)"))


def metrics_row(metrics: dict) -> dict[str, float]:
    """The comparison row of a run's ``metrics.json``: epochs, best validation and test numbers."""
    return {"epochs": metrics["epochs_run"], **metrics["best_val"], **metrics["test"]}


def reused_row(out: Path) -> dict[str, float] | None:
    """The metrics row of a seed already run in ``out`` (None if it has not finished)."""
    if (out / "row.json").is_file():
        return json.loads((out / "row.json").read_text())
    if not (out / "metrics.json").is_file():
        return None
    row = metrics_row(json.loads((out / "metrics.json").read_text()))
    row["s/epoch"] = float("nan")  # not recorded by runs older than row.json
    return row


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, float]:
    """Fit one seed (weights and sampling) and return its metrics row."""
    out = Path(args.out) / args.model / f"seed{seed}"
    if args.reuse and (row := reused_row(out)) is not None:
        return row
    L.seed_everything(seed, verbose=False)
    dm = InteractionDataModule(args.data, seed=seed, mask_valid_at_test=False)
    cls = getattr(importlib.import_module("mmpc.recsys.models"), MODELS[args.model])
    model = cls(dm.num_users, dm.num_items, dm.feature_dims, **MODEL_KWARGS[args.model])
    module = RecommenderModule(model)
    trainer = L.Trainer(
        max_epochs=args.max_epochs, accelerator=args.accelerator, devices=1,
        precision=args.precision, default_root_dir=out,
        logger=L.pytorch.loggers.CSVLogger(out, name="", version=""),
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    seconds = time.perf_counter() - start
    trainer.test(module, datamodule=dm, ckpt_path="best", verbose=False)
    metrics = json.loads((out / "metrics.json").read_text())
    row = metrics_row(metrics)
    row["s/epoch"] = seconds / max(metrics["epochs_run"], 1)
    (out / "row.json").write_text(json.dumps(row, indent=1))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="MMRec-format folder")
    parser.add_argument("--model", choices=sorted(MODELS), default="vbpr")
    parser.add_argument("--seeds", type=int, nargs="+", default=[999])
    parser.add_argument("--out", default="runs/check_accuracy")
    parser.add_argument("--max_epochs", type=int, default=1000)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument(
        "--precision", default="32-true", help="Lightning precision, e.g. bf16-mixed (not MMRec's)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--reference-json", default=None,
        help="MMRec's numbers on this data (JSON, REFERENCE's keys); default: the built-in "
        "numbers of the default generated data",
    )  # fmt: skip
    parser.add_argument(
        "--reuse", action="store_true",
        help="take seeds already run under --out from their files instead of training again",
    )  # fmt: skip
    args = parser.parse_args()
    if args.reference_json:  # read before training so a bad file fails at once
        ref, ref_label = load_reference(args.reference_json, args.model)
    else:
        ref, ref_label = REFERENCE[args.model], "MMRec seed 999"
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = {seed: run_seed(args, seed) for seed in args.seeds}
    header = ["run", *COLUMNS, "s/epoch"]
    print(" | ".join(header))
    for seed, row in rows.items():
        print(" | ".join([f"seed {seed}", *(f"{row[c]:.4f}" for c in COLUMNS),
                          f"{row['s/epoch']:.2f}"]))  # fmt: skip
    mean = {c: float(np.mean([r[c] for r in rows.values()])) for c in [*COLUMNS, "s/epoch"]}
    print(" | ".join(["mean", *(f"{mean[c]:.4f}" for c in COLUMNS), f"{mean['s/epoch']:.2f}"]))
    print(" | ".join([ref_label, *(f"{ref[c]:.4f}" for c in COLUMNS), "-"]))
    rel = {c: (mean[c] - ref[c]) / ref[c] for c in COLUMNS}
    print(" | ".join(["rel. diff (mean)", *(f"{100 * rel[c]:+.1f}%" for c in COLUMNS), "-"]))


if __name__ == "__main__":
    main()
