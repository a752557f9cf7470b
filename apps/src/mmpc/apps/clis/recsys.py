"""The LightningCLI of ``mmpc recsys fit / test`` (see :mod:`mmpc.apps.recsys_cli`)."""

from __future__ import annotations

from lightning.pytorch.cli import LightningArgumentParser

from mmpc.apps.lightning_cli import MMPCLightningCLI

__all__ = ["RecsysCLI"]


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
