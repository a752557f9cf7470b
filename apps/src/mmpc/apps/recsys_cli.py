"""``mmpc recsys``: train / test the recommenders with LightningCLI, and summarise seeds.

    mmpc recsys fit  --config apps/configs/recsys/vbpr.yaml --data.root DIR   # fit, then test best
    mmpc recsys test --config apps/configs/recsys/vbpr.yaml --data.root DIR --ckpt_path CKPT
    mmpc recsys summarize RUN_DIR [RUN_DIR ...]      # mean ± std over metrics.json files

``fit`` tests the best-validation checkpoint right after training (MMRec reports that number) and
writes ``metrics.json`` in the run's log folder. The data module's ``num_users``, ``num_items``
and ``feature_dims`` are linked into the model, so configs hold hyperparameters only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lightning.pytorch.cli import LightningCLI

from mmpc.recsys.data import InteractionDataModule
from mmpc.recsys.module import RecommenderModule, summarize_runs


class RecsysCLI(LightningCLI):
    """LightningCLI with data sizes linked into the recommender and test-after-fit."""

    def add_arguments_to_parser(self, parser) -> None:
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
    files = sorted({p for arg in argv for p in Path(arg).rglob("metrics.json")})
    if not files:
        print(f"mmpc recsys summarize: no metrics.json under {argv}", file=sys.stderr)
        return 2
    print(json.dumps({"runs": [str(f) for f in files], "metrics": summarize_runs(files)}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mmpc recsys``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "summarize":
        return summarize(args[1:])
    RecsysCLI(
        RecommenderModule,
        InteractionDataModule,
        subclass_mode_model=False,
        save_config_kwargs={"overwrite": True},
        args=args,
        auto_configure_optimizers=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
