"""``mmpc recsys``: train / test the recommenders with LightningCLI, and summarise seeds.

    mmpc recsys fit  --config apps/configs/recsys/vbpr.yaml --data.root DIR   # fit, then test best
    mmpc recsys test --config apps/configs/recsys/vbpr.yaml --data.root DIR --ckpt_path CKPT
    mmpc recsys summarize RUN_DIR [RUN_DIR ...]      # mean ± std over metrics.json files

``fit`` tests the best-validation checkpoint right after training (MMRec reports that number) and
writes ``metrics.json`` in the run's log folder, under ``--trainer.default_root_dir`` when it is
given. The data module's ``num_users``, ``num_items`` and ``feature_dims`` are linked into the
model, so configs hold hyperparameters only. Bad input ends the command with one line on stderr
and exit code 2. ``--help`` is a short torch-free summary (:data:`mmpc.apps.cli.COMMANDS`);
``--help-all`` lists every option.
"""

from __future__ import annotations

import json
import sys

from lightning.pytorch.cli import LightningArgumentParser

from mmpc.apps.cli.errors import check_input_path, run_guarded
from mmpc.apps.cli.lightning import MMPCLightningCLI, run_lightning
from mmpc.metrics.errors import InputError

__all__ = ["RecsysCLI", "main", "summarize"]


class RecsysCLI(MMPCLightningCLI):
    """LightningCLI with data sizes linked into the recommender and test-after-fit."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for name in ("num_users", "num_items", "feature_dims"):
            parser.link_arguments(
                f"data.{name}", f"model.model.init_args.{name}", apply_on="instantiate"
            )
        parser.add_argument(
            "--test_after_fit", type=bool, default=True, help="test the best checkpoint after fit"
        )

    def after_fit(self) -> None:
        config = self.config.get(self.subcommand, self.config)
        if not config.get("test_after_fit", True) or self.trainer.fast_dev_run:
            if self.trainer.fast_dev_run:
                self.trainer.test(self.model, datamodule=self.datamodule)
            return
        ckpt = "best" if self.trainer.checkpoint_callback is not None else None
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt)


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
        return run_guarded("mmpc recsys", lambda: summarize(args[1:]))
    from mmpc.recsys.data import InteractionDataModule
    from mmpc.recsys.module import RecommenderModule

    return run_lightning(
        "recsys",
        RecsysCLI,
        args,
        model_class=RecommenderModule,
        datamodule_class=InteractionDataModule,
        subclass_mode_model=False,
        save_config_kwargs={"overwrite": True},
    )
