"""Running a LightningCLI as an ``mmpc`` sub-command: the error contract, a quiet console, and
logs under ``--trainer.default_root_dir``.

:class:`MMPCLightningCLI` is the base of ``mmpc recsys``, ``mmpc complete`` and ``mmpc grpo``:

* argument errors (unknown key, bad value, unreadable ``--config``) are raised, not printed with
  the usage, so :func:`~mmpc.apps.errors.run_guarded` reports them in one line naming the key;
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

from mmpc.apps.console import quiet_libraries
from mmpc.apps.errors import check_output_dir, run_guarded

__all__ = ["MMPCLightningCLI", "run_cli"]


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


def run_cli(prog: str, cli_class: type[MMPCLightningCLI], args: list[str], **kwargs: Any) -> int:
    """Instantiate ``cli_class(args=args, **kwargs)`` under the error contract; the exit code.

    Args:
        prog: The sub-command's name in messages, e.g. ``"mmpc complete"``.
        cli_class: The :class:`MMPCLightningCLI` subclass to run.
        args: The sub-command's own argv slice (``--help-all`` is LightningCLI's ``--help``).
        kwargs: Passed to ``cli_class``.

    Returns:
        0 on success, 2 for the user's input (one line ``prog: message``), 3 for missing
        weights, or the code of ``--help``.
    """
    args = ["--help" if a == "--help-all" else a for a in args]

    def body() -> None:
        with quiet_libraries(), warnings.catch_warnings():
            # `mmpc <command> ...` passes its own argv slice on purpose.
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
            cli_class(prog=prog, args=args, **kwargs)

    return run_guarded(prog, body)
