"""Train BM3 / FREEDOM through the shared RecommenderModule and report test metrics and timings.

Usage (MMRec-compatible evaluation: validation items not masked at test)::

    uv run python benchmarks/recsys/check_graph_models.py --model freedom --root /tmp/mmrec_synth

Prints one JSON line per run: best validation epoch, epochs run, test Recall/NDCG@{10,20}, mean
seconds per epoch (training + one validation pass) and the machine's thread count. Compare with
``../shared/RECSYS_REFERENCE.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from mmpc.recsys.data import InteractionDataModule
from mmpc.recsys.models.bm3 import BM3
from mmpc.recsys.models.freedom import FREEDOM
from mmpc.recsys.module import RecommenderModule

MODELS = {"bm3": BM3, "freedom": FREEDOM}


class EpochTimer(Callback):
    """Wall time of each epoch, training start to the end of its validation pass."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.times.append(time.perf_counter() - self._start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--root", required=True, help="MMRec-format data folder")
    parser.add_argument("--seed", type=int, default=999)
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="/tmp/mmpc_graph_runs")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--set", nargs="*", default=[], help="model overrides, e.g. dropout=0.9")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    L.seed_everything(args.seed, verbose=False)
    data = InteractionDataModule(args.root, seed=args.seed, mask_valid_at_test=False)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    model = MODELS[args.model](data.num_users, data.num_items, data.feature_dims, **overrides)
    module = RecommenderModule(model)
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=args.max_epochs,
        accelerator=args.accelerator,
        devices=1,
        callbacks=[timer],
        default_root_dir=str(Path(args.out) / f"{args.model}-{args.seed}"),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        logger=L.pytorch.loggers.CSVLogger(Path(args.out), name=f"{args.model}-{args.seed}"),
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    fit_s = time.perf_counter() - start
    test = trainer.test(module, datamodule=data, ckpt_path="best", verbose=False)[0]
    times = sorted(timer.times)
    print(
        json.dumps(
            {
                "model": args.model,
                "seed": args.seed,
                "overrides": overrides,
                "epochs_run": len(times),
                "best_epoch": module.best_epoch,
                "best_val_recall@20": module.best_val.get("val/recall@20"),
                **{k: round(v, 4) for k, v in test.items() if k.endswith(("@10", "@20"))},
                "epoch_s_median": round(times[len(times) // 2], 3) if times else None,
                "epoch_s_min": round(times[0], 3) if times else None,
                "fit_s": round(fit_s, 1),
                "threads": args.threads,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
