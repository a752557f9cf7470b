"""The LightningCLI of ``mmpc complete predict`` (see :mod:`mmpc.apps.complete_cli`)."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.cli import LightningArgumentParser

from mmpc.apps.errors import check_catalog_dir
from mmpc.apps.lightning_cli import MMPCLightningCLI
from mmpc.completion.writer import CompletionWriter

__all__ = ["CompletionCLI"]


class CompletionCLI(MMPCLightningCLI):
    """LightningCLI restricted to ``predict``, with the completion writer and task link."""

    output_keys = ("writer.run_dir",)
    output_label = "outputs"

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

    def before_instantiate_classes(self) -> None:
        super().before_instantiate_classes()
        check_catalog_dir(self._section().get("data.catalog"), "--data.catalog")

    def output_location(self) -> str | None:
        return str(Path(self._section().get("writer.run_dir")))
