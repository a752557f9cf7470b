"""``mmpc report RUN``: (re)write the Markdown + HTML report of a bench run folder.

A run folder is one that ``mmpc bench`` wrote: it holds ``bench_config.json`` or ``status.json``.
Bad input ends the command with one line on stderr and exit code 2 (:mod:`mmpc.apps.cli.errors`),
as does a run folder whose lock another live ``mmpc bench`` or ``mmpc report`` holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from mmpc.apps.cli.errors import Parser, check_input_path, check_output_dir, run_guarded
from mmpc.metrics.errors import InputError

RUN_MARKERS = ("bench_config.json", "status.json")


def _run(argv: list[str]) -> int:
    parser = Parser(prog="mmpc report", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder written by mmpc bench")
    parser.add_argument(
        "--grpo-log",
        type=Path,
        default=None,
        help="a GRPO CSV log (step + reward columns) for the reward curves",
    )
    parser.add_argument("--out", type=Path, default=None, help="report folder (RUN/report)")
    args = parser.parse_args(argv)
    run = check_input_path(args.run, "run folder")
    if not any((run / name).is_file() for name in RUN_MARKERS):
        raise InputError(f"not a run folder of mmpc bench (no {' or '.join(RUN_MARKERS)})", run)
    if args.grpo_log is not None:
        check_input_path(args.grpo_log, "GRPO log", kind="file")
    out = check_output_dir(args.out or run / "report", "--out folder")
    from mmpc.apps.report.html import write_report
    from mmpc.apps.report.load import load_run
    from mmpc.apps.schema import ReportConfig

    saved = run / "bench_config.json"
    try:
        options = json.loads(saved.read_text()).get("report", {}) if saved.is_file() else {}
    except json.JSONDecodeError as err:
        raise InputError(f"unreadable JSON ({err})", saved) from None
    cfg = ReportConfig(**options)
    if args.grpo_log is not None:
        cfg.grpo_log = str(args.grpo_log)
    from mmpc.apps.bench.lock import RunLock

    # a read-only run folder has no writer to wait for (and no room for a lock file)
    lock = RunLock(run) if os.access(run, os.W_OK) else contextlib.nullcontext()
    with lock:
        files = write_report(load_run(run, None, cfg), out)
    print(f"report: {files.html}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Write ``RUN/report/report.{md,html}``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    return run_guarded("mmpc report", lambda: _run(args))
