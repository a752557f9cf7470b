"""The `mmpc` console script: dispatches to one sub-command module per package.

Each sub-command module exposes ``main(argv: list[str] | None) -> int | None`` and is imported
lazily, so ``mmpc data ...`` never pays for importing diffusers or torch-geometric.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("mmpc.apps.data_cli", "catalogues: synthetic, Amazon Reviews 2023, MMRec export"),
    "complete": ("mmpc.apps.complete_cli", "missing-modality completion (LightningCLI predict)"),
    "recsys": ("mmpc.apps.recsys_cli", "VBPR / BM3 / FREEDOM (LightningCLI fit / test)"),
    "grpo": ("mmpc.apps.grpo_cli", "GRPO alignment of a completion model (LightningCLI fit)"),
    "bench": ("mmpc.apps.bench_cli", "the whole benchmark, resumable, ending in the report"),
    "report": ("mmpc.apps.report_cli", "write the Markdown + HTML report of a run folder"),
}


def _usage() -> str:
    lines = ["usage: mmpc COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10}{help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run ``mmpc COMMAND ...``; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        args = ["bench"]
    if args[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"mmpc: unknown command {name!r}\n{_usage()}", file=sys.stderr)
        return 2
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
        return 2
    code = module.main(rest)
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
