"""``mmpc bench``: the whole benchmark in one command, resumable, ending in the report.

Usage::

    mmpc bench                                   # apps/configs/bench/demo.yaml, offline, CPU
    mmpc bench --config apps/configs/bench/paper.yaml --dry-run --gpus 8
    mmpc bench --executor ray                    # the stages as Ray tasks (docs/bench.md)
    mmpc bench --config apps/configs/bench/tiny.yaml --recbench.seeds='[0,1]'
    mmpc bench --config apps/configs/bench/tiny.yaml --verify-only   # check, write nothing

The configuration is read by jsonargparse from the dataclasses of
:mod:`mmpc.apps.bench.config` (YAML plus ``--section.key=value`` overrides). Bad input (an unknown
key, a bad value, a missing config or catalogue, a runs folder that cannot be created) ends the
command with one line on stderr and exit code 2 before anything is written. ``--help`` is a
short summary (no jsonargparse import); ``--help-all`` lists every key with its type and default.
A run folder held by another live ``mmpc bench`` or ``mmpc report`` is refused the same way
(exit 2); a full disk ends the run with one line and exit code 3. ``--verify-only`` checks every
finished stage's files against its manifest (hashing them), lists the damaged ones and writes
nothing: exit 0 when all match, 2 when some do not.
"""

from __future__ import annotations

import re
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmpc.apps.bench import config as bench_config
from mmpc.apps.bench.config import BenchConfig
from mmpc.apps.cli.errors import (
    EXIT_INPUT,
    EXIT_RESOURCE,
    check_catalog_dir,
    check_input_path,
    check_output_dir,
    run_guarded,
)
from mmpc.apps.config_files import find_config

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser

DEFAULT_CONFIG = "apps/configs/bench/demo.yaml"


def default_config() -> Path | None:
    """The demo YAML: ``apps/configs/bench/demo.yaml`` from the working folder, else the shipped
    one (:func:`~mmpc.apps.config_files.find_config`)."""
    return find_config(DEFAULT_CONFIG)


def short_help() -> str:
    """Usage, options and the config's sections, from :class:`BenchConfig` (no jsonargparse)."""
    lines = [
        "usage: mmpc bench [--config FILE] [--dry-run [--gpus N]] [--executor local|ray] [--quiet]"
        " [--verify | --verify-only] [--section.key=value ...]",
        "",
        __doc__.splitlines()[0].replace("``", ""),
        "",
        "options:",
        "  --config FILE  a bench YAML (default: apps/configs/bench/demo.yaml)",
        "  --dry-run      print the plan (generations, renders, trainings, hours) and exit",
        "  --gpus N       GPUs of the --dry-run wall-time estimate (default 1)",
        "  --executor ray run the stages as Ray tasks (default: local; docs/bench.md)",
        "  --quiet        no progress bars",
        "  --verify       hash every finished stage's files before trusting it (default: only",
        "                 when their sizes or times changed)",
        "  --verify-only  check every finished stage against its manifest, list the damaged",
        "                 ones, write nothing (exit 0: all match, 2: some do not)",
        "  --help-all     every config key with its type and default",
        "",
        "config keys (YAML, or --key=value / --section.key=value on the command line):",
    ]
    for field in fields(BenchConfig):
        name = re.search(r"\w+Config", str(field.type))  # "CatalogConfig", "list[CompleterConfig]"
        section = getattr(bench_config, name.group(0), None) if name else None
        if isinstance(section, type) and section.__doc__:
            text = section.__doc__.splitlines()[0]
        else:
            text = f"default {field.default!r}" if field.default is not MISSING else ""
        lines.append(f"  {field.name:<13}{text}")
    return "\n".join(lines)


def build_parser() -> ArgumentParser:
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(
        prog="mmpc bench",
        description=__doc__.splitlines()[0],
        default_config_files=[],
        exit_on_error=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="a bench YAML")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (generations, renders, trainings, hours) and exit",
    )
    parser.add_argument(
        "--gpus", type=int, default=1, help="GPUs of the --dry-run wall-time estimate"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--verify", action="store_true", help="hash every finished stage before trusting it"
    )
    parser.add_argument(
        "--verify-only",
        action="store_true",
        help="check every finished stage against its manifest and list the damaged ones",
    )
    parser.add_class_arguments(BenchConfig, None)
    return parser


def parse_config(argv: list[str]) -> tuple[BenchConfig, bool, bool]:
    """(config, dry_run, quiet) from the command line; the demo YAML when none is given."""
    cfg, ns = _parse(argv)
    return cfg, bool(ns.dry_run), bool(ns.quiet)


def _parse(argv: list[str]) -> tuple[BenchConfig, Any]:
    args = list(argv)
    if not any(a == "--config" or a.startswith("--config=") for a in args):
        default = default_config()
        if default is not None:
            args = ["--config", str(default), *args]
    parser = build_parser()
    ns = parser.parse_args(args)
    init = parser.instantiate(ns)
    return BenchConfig(**{f.name: init[f.name] for f in fields(BenchConfig)}), ns


def check_paths(cfg: BenchConfig) -> None:
    """Refuse a missing catalogue or an uncreatable run folder before anything is written."""
    if cfg.catalog.path is not None:
        check_catalog_dir(cfg.catalog.path, "--catalog.path")
    check_output_dir(Path(cfg.runs_dir) / cfg.name, "run folder (--runs_dir/--name)")


def verify_only(cfg: BenchConfig) -> int:
    """``--verify-only``: one line per damaged stage, a summary; 0 when none, else 2."""
    from mmpc.apps.bench.config import run_dir
    from mmpc.apps.bench.graph import build_stages
    from mmpc.apps.bench.verify import verify_run

    rdir = check_input_path(run_dir(cfg), "run folder (--runs_dir/--name)")
    stages = build_stages(cfg)
    damaged = verify_run(rdir, stages, full=True)
    for name, reason in damaged.items():
        print(f"[verify] {name}: damaged: {reason}")
    finished = sum(1 for s in stages if (rdir / s.name).is_dir())
    if damaged:
        print(
            f"mmpc bench: {len(damaged)} of {len(stages)} stage(s) damaged; the next mmpc bench "
            f"redoes them and the stages downstream ({rdir})",
            file=sys.stderr,
        )
        return EXIT_INPUT
    print(f"[verify] {finished} finished stage(s) match their manifests ({rdir})")
    return 0


def _run(argv: list[str]) -> int:
    cfg, ns = _parse(argv)
    if ns.dry_run:  # plans without reading or writing anything
        from mmpc.apps.bench.plan import format_plan, make_plan

        print(format_plan(cfg, make_plan(cfg), gpus=ns.gpus))
        return 0
    if ns.verify_only:
        return verify_only(cfg)
    check_paths(cfg)
    from mmpc.apps.bench.disk import DiskFullError
    from mmpc.apps.bench.executors.netns import reexec_isolated_if_needed
    from mmpc.apps.bench.run import run_bench

    reexec_isolated_if_needed(cfg)
    from mmpc.apps.bench.kinds.complete import check_served

    check_served(cfg)  # after the re-exec: the endpoints as the stages will see them
    try:
        report, results = run_bench(cfg, show_progress=not ns.quiet, full_verify=ns.verify)
    except DiskFullError as err:
        print(f"mmpc bench: {err}", file=sys.stderr)
        return EXIT_RESOURCE
    missing = [r for r in results if r.status in ("unavailable", "failed")]
    print(f"report: {report}")
    if missing:
        print(f"{len(missing)} stage(s) unavailable or failed (listed in the report)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the bench (or print its plan); returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(short_help())
        return 0
    args = ["--help" if a == "--help-all" else a for a in args]
    return run_guarded("mmpc bench", lambda: _run(args))
