"""``mmpc bench``: the whole benchmark in one command, resumable, ending in the report.

Usage::

    mmpc bench                                   # apps/configs/bench/demo.yaml, offline, CPU
    mmpc bench --config apps/configs/bench/paper.yaml --dry-run --gpus 8
    mmpc bench --executor ray                    # the stages as Ray tasks (docs/bench.md)
    mmpc bench --config apps/configs/bench/tiny.yaml --recbench.seeds='[0,1]'

The configuration is read by jsonargparse from the dataclasses of
:mod:`mmpc.apps.bench.config` (YAML plus ``--section.key=value`` overrides).
"""

from __future__ import annotations

import sys
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser

from mmpc.apps.bench.config import BenchConfig

DEFAULT_CONFIG = Path("apps/configs/bench/demo.yaml")


def default_config() -> Path | None:
    """The demo YAML: the checkout's ``apps/configs/bench/demo.yaml`` if present."""
    here = Path(str(resources.files("mmpc.apps"))).parents[2] / "configs" / "bench" / "demo.yaml"
    for path in (DEFAULT_CONFIG, here):
        if path.is_file():
            return path
    return None


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="mmpc bench", description=__doc__.splitlines()[0], default_config_files=[]
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


def main(argv: list[str] | None = None) -> int:
    """Run the bench (or print its plan); returns the exit code."""
    cfg, ns = _parse(list(sys.argv[1:] if argv is None else argv))
    if ns.dry_run:
        from mmpc.apps.bench.plan import format_plan, make_plan

        print(format_plan(cfg, make_plan(cfg), gpus=ns.gpus))
        return 0
    from mmpc.apps.bench.executor import reexec_isolated_if_needed
    from mmpc.apps.bench.pipeline import run_bench

    reexec_isolated_if_needed(cfg)
    report, results = run_bench(cfg, show_progress=not ns.quiet)
    missing = [r for r in results if r.status in ("unavailable", "failed")]
    print(f"report: {report}")
    if missing:
        print(f"{len(missing)} stage(s) unavailable or failed (listed in the report)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
