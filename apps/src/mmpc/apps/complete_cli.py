"""``mmpc complete predict --config apps/configs/completion/<name>.yaml [--key=value ...]``.

A LightningCLI with the single sub-command ``predict``: the config names the completer
(``model``: :class:`~mmpc.completion.module.CompletionModule` and its backends), the items
(``data``: :class:`~mmpc.completion.data.CompletionDataModule`) and the run folder (``writer``:
:class:`~mmpc.completion.writer.CompletionWriter`, always added to the trainer's callbacks).
``data.task`` is linked into ``model.task``. Bad input ends the command with one line on stderr
and exit code 2, weights that cannot be loaded here with exit code 3 (:mod:`mmpc.apps.errors`).
``--help`` is a short torch-free summary; ``--help-all`` lists every option.
"""

from __future__ import annotations

import sys

from mmpc.apps.console import configs_dir, lightning_help

__all__ = ["main"]

PROG = "mmpc complete"
SECTIONS = {
    "model": "the completer: name, generator backend, renderer (t2i), prompt, seed",
    "data": "the items: catalogue folder, task (i2t / t2i), sample, limit, batch size",
    "writer": "the run folder (run_dir) where records and images are written, resumably",
    "trainer": "Lightning Trainer options (accelerator, devices, strategy, ...)",
    "seed_everything": "global seed (default 0)",
}


def main(argv: list[str] | None = None) -> int:
    """Run the completion CLI; returns the exit code (2 bad input, 3 missing weights)."""
    args: list[str] = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        subcommands = {"predict": "complete the masked modality of each selected item"}
        print(lightning_help(PROG, subcommands, SECTIONS, configs_dir("completion")))
        return 0
    from mmpc.apps.clis.complete import CompletionCLI
    from mmpc.apps.lightning_cli import run_cli
    from mmpc.completion.data import CompletionDataModule
    from mmpc.completion.module import CompletionModule

    return run_cli(
        PROG,
        CompletionCLI,
        args,
        model_class=CompletionModule,
        datamodule_class=CompletionDataModule,
        seed_everything_default=0,
        save_config_callback=None,
        auto_configure_optimizers=False,
    )


if __name__ == "__main__":
    raise SystemExit(main())
