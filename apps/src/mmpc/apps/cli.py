"""The `mmpc` console script: dispatches to one sub-command module per package.

Each sub-command module exposes ``main(argv: list[str] | None) -> int | None`` and is imported
lazily, so ``mmpc data ...`` never pays for importing diffusers or torch-geometric, and
``mmpc --version`` / ``mmpc <command> --help`` do not import torch at all.

Global options (before the command): ``--version``; ``--verbose`` (before the command or
anywhere among its arguments) keeps the library chatter that the Lightning-driven commands
silence by default (same as ``MMPC_VERBOSE=1``). Exit codes
and ``MMPC_DEBUG=1`` are described in :mod:`mmpc.apps.errors`.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from mmpc.apps.console import VERBOSE_ENV
from mmpc.apps.errors import EXIT_INPUT

COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("mmpc.apps.data_cli", "catalogues: synthetic, Amazon Reviews 2023, MMRec export"),
    "complete": ("mmpc.apps.complete_cli", "missing-modality completion (LightningCLI predict)"),
    "recsys": ("mmpc.apps.recsys_cli", "VBPR / BM3 / FREEDOM (LightningCLI fit / test)"),
    "grpo": ("mmpc.apps.grpo_cli", "GRPO alignment of a completion model (LightningCLI fit)"),
    "bench": ("mmpc.apps.bench_cli", "the whole benchmark, resumable, ending in the report"),
    "report": ("mmpc.apps.report_cli", "write the Markdown + HTML report of a run folder"),
}


def _usage() -> str:
    lines = ["usage: mmpc [--version] [--verbose] COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10}{help_}" for name, (_, help_) in COMMANDS.items()]
    lines += [
        "",
        "options:",
        "  --version   print the version and exit",
        "  --verbose   keep the library chatter (Lightning device lines, tips, warnings);",
        "              also accepted after the command: mmpc recsys fit --verbose ...",
        "",
        "exit codes: 0 done, 2 bad input, 3 missing weights/resources, 1 a bug (traceback);",
        "MMPC_DEBUG=1 prints the traceback of a refused run too.",
    ]
    return "\n".join(lines)


def _version() -> str:
    try:
        return version("mmpc-apps")
    except PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Run ``mmpc COMMAND ...``; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    loud = False
    while args and args[0] in {"--verbose", "--version", "-h", "--help"}:
        flag = args.pop(0)
        if flag == "--version":
            print(f"mmpc {_version()}")
            return 0
        if flag in {"-h", "--help"}:
            print(_usage())
            return 0
        loud = True
    if not args:
        args = ["bench"]
    name, rest = args[0], args[1:]
    cut = rest.index("--") if "--" in rest else len(rest)
    if "--verbose" in rest[:cut]:  # `mmpc <command> ... --verbose` works too
        rest = [a for a in rest[:cut] if a != "--verbose"] + rest[cut:]
        loud = True
    if name not in COMMANDS:
        choices = ", ".join(COMMANDS)
        print(f"mmpc: unknown command {name!r} (choose from {choices})", file=sys.stderr)
        return EXIT_INPUT
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        print(
            f"mmpc: command {name!r} is not available yet ({module_name} is missing)",
            file=sys.stderr,
        )
        return EXIT_INPUT
    before = os.environ.get(VERBOSE_ENV)
    if loud:
        os.environ[VERBOSE_ENV] = "1"  # inherited by worker processes
    try:
        code = module.main(rest)
    finally:
        if loud and before is None:
            os.environ.pop(VERBOSE_ENV, None)
        elif loud:
            os.environ[VERBOSE_ENV] = before
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
