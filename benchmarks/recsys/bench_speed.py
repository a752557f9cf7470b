"""Seconds per epoch (train + one validation pass) and peak memory of VBPR / BM3 / FREEDOM.

    uv run python benchmarks/recsys/bench_speed.py --data default=/tmp/mmrec_synth \
        --data baby=/tmp/mmrec_baby --epochs 4 --threads 2 [--accelerator gpu]

Each (model, dataset) runs in its own process, so the peak memory is that run's: peak resident
set size on CPU (``ru_maxrss``, includes the Python + torch baseline of ~0.4-0.6 GB), peak
``torch.cuda.max_memory_allocated`` on GPU. The first epoch is a warm-up and is not counted;
the table gives the median (min) over the others. "setup" is data loading plus graph building.
"cpu-s" is the process CPU time of a whole epoch (all threads): on a shared, oversubscribed
machine the wall-clock figures are inflated by waiting for a core, while with ``--threads 1`` the
CPU time is what the epoch costs on one free core.
MMRec's numbers (``../shared/RECSYS_REFERENCE.md``) were measured by others on the same machine
kinds (CPU with 2 threads; one H200); they are printed beside ours for comparison.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import statistics
import subprocess
import sys
import time

import lightning as L
import torch

# MMRec seconds per epoch: (train min, one evaluation pass typical); an MMRec epoch also runs a
# second evaluation pass (test) that ours does not need, which is left out here to be fair.
MMREC = {
    ("cpu", "default"): {"vbpr": (0.91, 0.70), "bm3": (3.05, 0.70), "freedom": (2.98, 0.70)},
    ("cpu", "baby"): {"vbpr": (4.41, 2.2), "bm3": (17.09, 2.2), "freedom": (16.66, 2.2)},
    ("gpu", "default"): {"vbpr": (0.17, 0.56), "bm3": (0.15, 0.56), "freedom": (0.28, 0.56)},
    ("gpu", "baby"): {"vbpr": (0.38, 1.5), "bm3": (0.42, 1.5), "freedom": (0.81, 1.5)},
}
MODELS = {"vbpr": "VBPR", "bm3": "BM3", "freedom": "FREEDOM"}


class EpochTimer(L.Callback):
    """Wall-clock time of each epoch's training part and its validation pass."""

    def __init__(self, sync: bool) -> None:
        self.sync = sync
        self.train: list[float] = []
        self.eval: list[float] = []
        self.cpu: list[float] = []
        self.first_epoch_at: float | None = None

    def _now(self) -> float:
        if self.sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_epoch_start(self, trainer, module) -> None:
        self._start = self._now()
        self._cpu_start = time.process_time()
        if self.first_epoch_at is None:
            self.first_epoch_at = self._start

    def on_validation_epoch_start(self, trainer, module) -> None:
        self._val_start = self._now()
        self.train.append(self._val_start - self._start)

    def on_validation_epoch_end(self, trainer, module) -> None:
        self.eval.append(self._now() - self._val_start)
        self.cpu.append(time.process_time() - self._cpu_start)


def run_one(
    model_name: str, data: str, epochs: int, accelerator: str, precision: str = "32-true"
) -> dict:
    """Fit ``epochs`` epochs (validation every epoch) and return timings and peak memory."""
    from mmpc.recsys.data import InteractionDataModule
    from mmpc.recsys.module import RecommenderModule

    L.seed_everything(999, verbose=False)
    start = time.perf_counter()
    dm = InteractionDataModule(data, mask_valid_at_test=False)
    cls = getattr(importlib.import_module("mmpc.recsys.models"), MODELS[model_name])
    module = RecommenderModule(cls(dm.num_users, dm.num_items, dm.feature_dims))
    timer = EpochTimer(sync=accelerator == "gpu")
    trainer = L.Trainer(
        accelerator=accelerator, devices=1, max_epochs=epochs, logger=False, precision=precision,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, callbacks=[timer],
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    setup = timer.first_epoch_at - start
    if accelerator == "gpu":
        peak_gb = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {
        "train": timer.train[1:], "eval": timer.eval[1:], "cpu": timer.cpu[1:], "setup": setup,
        "peak_gb": peak_gb,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", required=True, help="NAME=FOLDER (MMRec)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument(
        "--precision", default="32-true", help="Lightning precision (bf16-mixed: not MMRec's)"
    )
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        result = run_one(args.one[0], args.one[1], args.epochs, args.accelerator, args.precision)
        print(json.dumps(result))
        return
    rows = []
    for spec in args.data:
        name, folder = spec.split("=", 1)
        for model in args.models:
            cmd = [sys.executable, __file__, "--one", model, folder, "--epochs", str(args.epochs),
                   "--threads", str(args.threads), "--accelerator", args.accelerator,
                   "--precision", args.precision,
                   "--data", spec]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            train, ev = result["train"], result["eval"]
            ours = statistics.median(t + e for t, e in zip(train, ev, strict=True))
            mm_train, mm_eval = MMREC[(args.accelerator, name)][model]
            row = (
                f"{name:8s} {model:8s} train {statistics.median(train):6.3f} "
                f"(min {min(train):6.3f})  eval {statistics.median(ev):6.3f}  "
                f"epoch {ours:6.3f}  cpu-s {statistics.median(result['cpu']):6.3f}  "
                f"setup {result['setup']:6.2f}  peak {result['peak_gb']:5.2f} GB"
                f" | MMRec train {mm_train:5.2f} + eval {mm_eval:4.2f} = {mm_train + mm_eval:5.2f}"
                f"  speed-up x{(mm_train + mm_eval) / ours:4.1f}"
            )
            print(row, flush=True)
            rows.append(row)
    print(f"device: {args.accelerator}, torch threads: {args.threads}, epochs timed: "
          f"{args.epochs - 1} (first is warm-up)")  # fmt: skip


if __name__ == "__main__":
    main()
