"""``mmpc grpo fit --config apps/configs/grpo/<name>.yaml [--key=value ...]``.

A LightningCLI with the single sub-command ``fit``: ``model`` is
:class:`~mmpc.grpo.module.GRPOModule` (policy, LoRA, rewards, GRPO settings), ``data`` is
:class:`~mmpc.grpo.data.GRPODataModule` (the catalogue's GRPO sample); ``data.task`` is linked into
``model.task``. Metrics go to a ``CSVLogger`` unless the config names another logger, one row per
step; after ``fit`` the reward curve is drawn next to ``metrics.csv`` as ``reward_curve.png`` and
the LoRA adapter is in ``<log_dir>/adapter`` (or ``model.adapter_dir``). Weights that cannot be
loaded here end the command with one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from mmpc.apps.lightning_cli import run_cli
from mmpc.grpo.data import GRPODataModule
from mmpc.grpo.module import GRPOModule
from mmpc.grpo.plotting import plot_reward_curve

__all__ = ["GRPOCLI", "main"]


class GRPOCLI(LightningCLI):
    """LightningCLI restricted to ``fit``, CSV logging every step, the reward curve at the end."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {"fit": {"model", "train_dataloaders", "datamodule"}}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.task", "model.task")
        parser.set_defaults(
            {
                "trainer.logger": {
                    "class_path": "lightning.pytorch.loggers.CSVLogger",
                    "init_args": {"save_dir": "runs/grpo", "name": "grpo"},
                },
                "trainer.log_every_n_steps": 1,
                "trainer.enable_model_summary": False,
            }
        )

    def after_fit(self) -> None:
        log_dir = self.trainer.log_dir
        metrics = Path(log_dir) / "metrics.csv" if log_dir else None
        if metrics is not None and metrics.is_file() and self.trainer.is_global_zero:
            png = plot_reward_curve(metrics, metrics.with_name("reward_curve.png"))
            print(f"mmpc grpo: reward curve {png}; adapter {self.model.adapter_path()}")


def main(argv: list[str] | None = None) -> int:
    """Run the GRPO CLI; returns the exit code (2 for missing weights or bad input)."""
    args: list[str] = list(sys.argv[1:] if argv is None else argv)
    kwargs: dict[str, Any] = {
        "model_class": GRPOModule,
        "datamodule_class": GRPODataModule,
        "seed_everything_default": 0,
        "save_config_kwargs": {"overwrite": True},
        "auto_configure_optimizers": False,
    }
    return run_cli("mmpc grpo", GRPOCLI, args, **kwargs)


if __name__ == "__main__":
    raise SystemExit(main())
