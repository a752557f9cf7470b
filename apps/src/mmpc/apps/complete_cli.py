"""``mmpc complete predict --config apps/configs/completion/<name>.yaml [--key=value ...]``.

A LightningCLI with the single sub-command ``predict``: the config names the completer
(``model``: :class:`~mmpc.completion.module.CompletionModule` and its backends), the items
(``data``: :class:`~mmpc.completion.data.CompletionDataModule`) and the run folder (``writer``:
:class:`~mmpc.completion.writer.CompletionWriter`, always added to the trainer's callbacks).
``data.task`` is linked into ``model.task``. Weights that cannot be loaded here end the command
with one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from mmpc.apps.lightning_cli import run_cli
from mmpc.completion.data import CompletionDataModule
from mmpc.completion.module import CompletionModule
from mmpc.completion.writer import CompletionWriter

__all__ = ["CompletionCLI", "main"]


class CompletionCLI(LightningCLI):
    """LightningCLI restricted to ``predict``, with the completion writer and task link."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {"predict": {"model", "dataloaders", "datamodule"}}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(CompletionWriter, "writer")
        parser.link_arguments("data.task", "model.task")
        parser.set_defaults(
            {
                "trainer.logger": False,
                "trainer.enable_checkpointing": False,
                "trainer.enable_model_summary": False,
            }
        )


def main(argv: list[str] | None = None) -> int:
    """Run the completion CLI; returns the exit code (2 for missing weights or bad input)."""
    args: list[str] = list(sys.argv[1:] if argv is None else argv)
    kwargs: dict[str, Any] = {
        "model_class": CompletionModule,
        "datamodule_class": CompletionDataModule,
        "seed_everything_default": 0,
        "save_config_callback": None,
        "auto_configure_optimizers": False,
    }
    return run_cli("mmpc complete", CompletionCLI, args, **kwargs)


if __name__ == "__main__":
    raise SystemExit(main())
