"""Running a LightningCLI as an ``mmpc`` sub-command: the error contract, a quiet console, and
logs under ``--trainer.default_root_dir``.

:class:`MMPCLightningCLI` is the base of ``mmpc recsys``, ``mmpc complete`` and ``mmpc grpo``, and
:func:`run_lightning` their one ``main``:

* argument errors (unknown key, bad value, unreadable ``--config``) are raised, not printed with
  the usage, so :func:`~mmpc.apps.cli.errors.run_guarded` reports them in one line naming the key;
* a value that a module's constructor rejects (a ``ValueError`` whose message names the key, e.g.
  ``group_size must be >= 2``) is the user's input too: one line naming ``--model.group_size``;
* output folders (``trainer.default_root_dir``, the logger's ``save_dir``, :attr:`output_keys`)
  are checked before any class is built, so a refused run writes nothing;
* when ``--trainer.default_root_dir`` is given, loggers write under it unless ``save_dir`` is
  also given on the command line (the configs' ``save_dir`` is only the default location);
* one line says which accelerator runs and where the logs go.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from mmpc.apps.cli import command_help, wants_help
from mmpc.apps.cli.errors import check_output_dir, rejected_option, run_guarded
from mmpc.apps.console import quiet_libraries
from mmpc.metrics.errors import InputError

__all__ = ["MMPCLightningCLI", "run_lightning"]


def _loggers(value: Any) -> list[Namespace]:
    """The class-path namespaces in a parsed ``trainer.logger`` value (bool, one, or a list)."""
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, Namespace) and "init_args" in v]


class MMPCLightningCLI(LightningCLI):
    """LightningCLI with ``mmpc``'s error contract, output checks, re-rooted logs and one status
    line (see the module docstring).

    Args:
        cli_args: passed to LightningCLI.
        prog: the command in messages, e.g. ``"mmpc recsys"``.
        args: the command's argv slice.
        kwargs: passed to LightningCLI.

    Attributes:
        output_keys: extra config keys naming output folders, checked before anything is built.
        output_label: what :meth:`output_location` holds, in the status line.
    """

    output_keys: tuple[str, ...] = ()
    output_label = "logs"

    def __init__(
        self, *cli_args: Any, prog: str = "mmpc", args: list[str] | None = None, **kwargs: Any
    ) -> None:
        self.prog = prog
        self._argv = list(args or [])
        super().__init__(*cli_args, args=args, **kwargs)

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        kwargs.setdefault("exit_on_error", False)
        return super().init_parser(**kwargs)

    def _section(self) -> Namespace:
        return self.config[self.subcommand] if self.subcommand else self.config

    def _given(self, key: str) -> bool:
        """Whether ``--<...key...>`` appears on the command line (not only in a config file)."""
        return any(a.startswith("--trainer.logger") and key in a.split("=")[0] for a in self._argv)

    def before_instantiate_classes(self) -> None:
        cfg = self._section()
        root = cfg.get("trainer.default_root_dir")
        if root is not None:
            check_output_dir(root, "--trainer.default_root_dir")
        for logger in _loggers(cfg.get("trainer.logger")):
            init = logger.init_args
            if "save_dir" not in init:
                continue
            if root is not None and not self._given("save_dir"):
                init.save_dir = str(root)
            if init.save_dir is not None:
                check_output_dir(init.save_dir, "logger save_dir")
        for key in self.output_keys:
            value = cfg.get(key)
            if value is not None:
                check_output_dir(value, f"--{key}")

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except InputError:
            raise
        except ValueError as err:  # a module's own validation of the user's value
            key = rejected_option(str(err), self._section().keys())
            if key is None:
                raise
            raise InputError(str(err), f"--{key}") from err

    def output_location(self) -> str | None:
        """Where this run's logs / outputs go, for the status line."""
        trainer = self.trainer
        return trainer.log_dir if trainer.loggers else None

    def after_instantiate_classes(self) -> None:
        trainer = self.trainer
        if not trainer.is_global_zero:
            return
        name = type(trainer.accelerator).__name__.removesuffix("Accelerator").lower()
        devices = f"{trainer.num_devices} device{'s' if trainer.num_devices > 1 else ''}"
        where = self.output_location()
        logs = f"; {self.output_label} in {Path(where)}" if where else ""
        print(f"{self.prog} {self.subcommand}: {name} ({devices}){logs}", file=sys.stderr)


def run_lightning(
    name: str,
    cli_class: type[MMPCLightningCLI],
    argv: list[str] | None,
    model_class: type,
    datamodule_class: type,
    **kwargs: Any,
) -> int:
    """``main`` of a LightningCLI command: its short help, or ``cli_class`` under the contract.

    Args:
        name: the command, e.g. ``"complete"`` (a key of :data:`mmpc.apps.cli.COMMANDS`).
        cli_class: the :class:`MMPCLightningCLI` subclass to run.
        argv: the command's own arguments (None: ``sys.argv[1:]``); ``--help-all`` is
            LightningCLI's ``--help``.
        model_class: the LightningModule class.
        datamodule_class: the LightningDataModule class.
        kwargs: passed to ``cli_class`` (``auto_configure_optimizers=False`` unless given).

    Returns:
        0 on success, 2 for the user's input (one line ``mmpc <name>: message``), 3 for missing
        weights, or the code of ``--help``.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if wants_help(args):
        print(command_help(name))
        return 0
    args = ["--help" if a == "--help-all" else a for a in args]
    prog = f"mmpc {name}"
    kwargs.setdefault("auto_configure_optimizers", False)

    def body() -> None:
        with quiet_libraries(), warnings.catch_warnings():
            # `mmpc <command> ...` passes its own argv slice on purpose.
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
            cli_class(
                model_class=model_class,
                datamodule_class=datamodule_class,
                prog=prog,
                args=args,
                **kwargs,
            )

    return run_guarded(prog, body)
