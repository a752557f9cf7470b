"""``mmpc grpo fit --config apps/configs/grpo/<name>.yaml [--key=value ...]``.

A LightningCLI with the single sub-command ``fit``: ``model`` is
:class:`~mmpc.grpo.module.GRPOModule` (policy, LoRA, rewards, GRPO settings), ``data`` is
:class:`~mmpc.grpo.resume.StepwiseGRPODataModule` (the catalogue's GRPO sample); ``data.task`` is
linked into ``model.task``. Metrics go to a ``CSVLogger`` unless the config names another logger,
one row per step, under ``--trainer.default_root_dir`` when it is given; after ``fit`` the reward
curve is drawn next to ``metrics.csv`` as ``reward_curve.png`` and the LoRA adapter is in
``<log_dir>/adapter`` (or ``model.adapter_dir``). Bad input (a value the module rejects too, e.g.
``--model.group_size=0``) ends the command with one line on stderr and exit code 2, weights that
cannot be loaded here with exit code 3.

Training resumes exactly, as the bench's GRPO stage does (:mod:`mmpc.grpo.resume`): ``data`` is the
step-wise GRPO sample (one Lightning epoch per step, the step's batch a pure function of
``(data.seed, step)``), the ``StepSeed`` callback re-seeds every step from ``data.seed`` and
checkpoints are written aside and renamed into place; so a run killed after a checkpoint
(``ModelCheckpoint(save_last=True)`` in ``trainer.callbacks``) and started again with ``--ckpt_path
<dir>/last.ckpt`` ends with the weights of the uninterrupted run. ``--help`` is a short torch-free
summary (:data:`mmpc.apps.cli.COMMANDS`); ``--help-all`` lists every option.
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.cli import LightningArgumentParser

from mmpc.apps.cli.errors import check_catalog_dir, check_output_dir
from mmpc.apps.cli.lightning import MMPCLightningCLI, run_lightning
from mmpc.grpo.resume import StepSeed

__all__ = ["GRPOCLI", "main"]


class GRPOCLI(MMPCLightningCLI):
    """LightningCLI restricted to ``fit``, CSV logging every step, the reward curve at the end.

    The catalogue is checked and the policy's weights are loaded before ``fit`` starts, so a run
    refused for either writes nothing into its log folder.
    """

    output_keys = ("model.adapter_dir",)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {"fit": {"model", "train_dataloaders", "datamodule"}}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.task", "model.task")
        parser.add_lightning_class_args(StepSeed, "step_seed")
        parser.link_arguments("data.seed", "step_seed.seed")
        parser.set_defaults(
            {
                "trainer.max_epochs": -1,  # one epoch is one step: max_steps bounds the run
                "trainer.plugins": [{"class_path": "mmpc.grpo.resume.AtomicCheckpointIO"}],
                "trainer.logger": {
                    "class_path": "lightning.pytorch.loggers.CSVLogger",
                    "init_args": {"save_dir": "runs/grpo", "name": "grpo"},
                },
                "trainer.log_every_n_steps": 1,
                "trainer.enable_model_summary": False,
            }
        )

    def before_instantiate_classes(self) -> None:
        super().before_instantiate_classes()
        cfg = self._section()
        root = Path(cfg.get("data.catalog"))
        if (root / "manifest.json").is_file():
            return
        if cfg.get("data.synthesize_preset") and not root.exists():
            check_output_dir(root, "--data.catalog")
            return
        check_catalog_dir(root, "--data.catalog")

    def before_fit(self) -> None:
        self.model.trainer = self.trainer  # configure_model places 4-bit weights on its device
        self.model.configure_model()
        if not self.datamodule.hparams.val_items:  # nothing held out: no validation loop at all
            self.trainer.limit_val_batches = 0

    def after_fit(self) -> None:
        from mmpc.grpo.plotting import plot_reward_curve

        log_dir = self.trainer.log_dir
        metrics = Path(log_dir) / "metrics.csv" if log_dir else None
        if metrics is not None and metrics.is_file() and self.trainer.is_global_zero:
            png = plot_reward_curve(metrics, metrics.with_name("reward_curve.png"))
            print(f"mmpc grpo: reward curve {png}; adapter {self.model.adapter_path()}")


def main(argv: list[str] | None = None) -> int:
    """Run the GRPO CLI; returns the exit code (2 bad input, 3 missing weights)."""
    from mmpc.grpo.module import GRPOModule
    from mmpc.grpo.resume import StepwiseGRPODataModule

    return run_lightning(
        "grpo",
        GRPOCLI,
        argv,
        model_class=GRPOModule,
        datamodule_class=StepwiseGRPODataModule,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
    )
