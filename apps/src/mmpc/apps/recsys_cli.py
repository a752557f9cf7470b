"""``mmpc recsys``: train / test the recommenders with LightningCLI, and summarise seeds.

    mmpc recsys fit  --config apps/configs/recsys/vbpr.yaml --data.root DIR   # fit, then test best
    mmpc recsys test --config apps/configs/recsys/vbpr.yaml --data.root DIR --ckpt_path CKPT
    mmpc recsys summarize RUN_DIR [RUN_DIR ...]      # mean ± std over metrics.json files

``fit`` tests the best-validation checkpoint right after training (MMRec reports that number) and
writes ``metrics.json`` in the run's log folder, under ``--trainer.default_root_dir`` when it is
given. The data module's ``num_users``, ``num_items`` and ``feature_dims`` are linked into the
model, so configs hold hyperparameters only. Bad input ends the command with one line on stderr
and exit code 2. ``--help`` is a short torch-free summary; ``--help-all`` lists every option.
"""

from __future__ import annotations

import json
import sys

from mmpc.apps.console import configs_dir, lightning_help
from mmpc.apps.errors import check_input_path, run_guarded
from mmpc.metrics.errors import InputError

__all__ = ["main", "summarize"]

PROG = "mmpc recsys"
SUBCOMMANDS = {
    "fit": "train, then test the best-validation checkpoint; writes metrics.json",
    "test": "test a checkpoint (--ckpt_path); writes metrics.json",
    "summarize": "RUN_DIR ...: mean ± std over the metrics.json files below the folders",
}
SECTIONS = {
    "model": "RecommenderModule: model (VBPR / BM3 / FREEDOM + init_args), lr, ks, monitor",
    "data": "InteractionDataModule: root (MMRec or catalogue folder), feature_dir, batch sizes",
    "trainer": "Lightning Trainer options; default_root_dir re-roots the logs and checkpoints",
    "seed_everything": "global seed",
    "ckpt_path": "checkpoint to test (test) or resume from (fit)",
    "test_after_fit": "test the best checkpoint after fit (default true)",
}


def summarize(argv: list[str]) -> int:
    """Print mean ± std over the ``metrics.json`` files under the given folders (JSON to stdout)."""
    from mmpc.recsys.module import summarize_runs

    folders = [check_input_path(arg, "run folder") for arg in argv]
    files = sorted({p for folder in folders for p in folder.rglob("metrics.json")})
    if not files:
        raise InputError("no metrics.json below the run folder(s)", " ".join(argv) or "none given")
    print(json.dumps({"runs": [str(f) for f in files], "metrics": summarize_runs(files)}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mmpc recsys``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "summarize":
        return run_guarded(PROG, lambda: summarize(args[1:]))
    if "-h" in args or "--help" in args:
        print(lightning_help(PROG, SUBCOMMANDS, SECTIONS, configs_dir("recsys")))
        return 0
    from mmpc.apps.clis.recsys import RecsysCLI
    from mmpc.apps.lightning_cli import run_cli
    from mmpc.recsys.data import InteractionDataModule
    from mmpc.recsys.module import RecommenderModule

    return run_cli(
        PROG,
        RecsysCLI,
        args,
        model_class=RecommenderModule,
        datamodule_class=InteractionDataModule,
        subclass_mode_model=False,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )


if __name__ == "__main__":
    raise SystemExit(main())
