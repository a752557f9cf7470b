"""Running a LightningCLI as an ``mmpc`` sub-command: one exit code, one-line errors."""

from __future__ import annotations

import sys
import warnings
from typing import Any

from lightning.pytorch.cli import LightningCLI

from mmpc.completion.backends.base import BackendError
from mmpc.completion.catalog import CatalogError
from mmpc.metrics.errors import MissingWeightsError

#: Errors that mean "this cannot run here / this input is wrong": printed in one line, exit 2.
USER_ERRORS: tuple[type[Exception], ...] = (MissingWeightsError, BackendError, CatalogError)


def run_cli(prog: str, cli_class: type[LightningCLI], args: list[str], **kwargs: Any) -> int:
    """Instantiate ``cli_class(args=args, **kwargs)`` and return the process exit code.

    Args:
        prog: The sub-command's name in messages, e.g. ``"mmpc complete"``.
        cli_class: The LightningCLI subclass to run.
        args: The sub-command's own argv slice.
        kwargs: Passed to ``cli_class``.

    Returns:
        0 on success, 2 for a :data:`USER_ERRORS` error (printed as ``prog: message``) or an
        argument error, else the code jsonargparse exited with.
    """
    try:
        with warnings.catch_warnings():
            # `mmpc <command> ...` passes its own argv slice on purpose.
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
            cli_class(args=args, **kwargs)
    except USER_ERRORS as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    except SystemExit as err:
        return int(err.code or 0) if not isinstance(err.code, str) else 2
    return 0
