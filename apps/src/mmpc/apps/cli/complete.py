"""``mmpc complete predict --config apps/configs/completion/<name>.yaml [--key=value ...]``.

A LightningCLI with the single sub-command ``predict``: the config names the completer
(``model``: :class:`~mmpc.completion.module.CompletionModule` and its backends), the items
(``data``: :class:`~mmpc.completion.data.CompletionDataModule`) and the run folder (``writer``:
:class:`~mmpc.completion.writer.CompletionWriter`, always added to the trainer's callbacks).
``data.task`` is linked into ``model.task``. Bad input ends the command with one line on stderr
and exit code 2, weights that cannot be loaded here with exit code 3 (:mod:`mmpc.apps.cli.errors`).
``--help`` is a short torch-free summary (:data:`mmpc.apps.cli.COMMANDS`); ``--help-all`` lists
every option.
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.cli import LightningArgumentParser

from mmpc.apps.cli.errors import check_catalog_dir
from mmpc.apps.cli.lightning import MMPCLightningCLI, run_lightning

__all__ = ["CompletionCLI", "main"]


class CompletionCLI(MMPCLightningCLI):
    """LightningCLI restricted to ``predict``, with the completion writer and task link."""

    output_keys = ("writer.run_dir",)
    output_label = "outputs"

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {"predict": {"model", "dataloaders", "datamodule"}}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        from mmpc.completion.writer import CompletionWriter

        parser.add_lightning_class_args(CompletionWriter, "writer")
        parser.link_arguments("data.task", "model.task")
        parser.set_defaults(
            {
                "trainer.logger": False,
                "trainer.enable_checkpointing": False,
                "trainer.enable_model_summary": False,
            }
        )

    def before_instantiate_classes(self) -> None:
        super().before_instantiate_classes()
        check_catalog_dir(self._section().get("data.catalog"), "--data.catalog")

    def output_location(self) -> str | None:
        return str(Path(self._section().get("writer.run_dir")))


def main(argv: list[str] | None = None) -> int:
    """Run the completion CLI; returns the exit code (2 bad input, 3 missing weights)."""
    from mmpc.completion.data import CompletionDataModule
    from mmpc.completion.module import CompletionModule

    return run_lightning(
        "complete",
        CompletionCLI,
        argv,
        model_class=CompletionModule,
        datamodule_class=CompletionDataModule,
        seed_everything_default=0,
        save_config_callback=None,
    )
