"""``mmpc report RUN``: (re)write the Markdown + HTML report of a bench run folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Write ``RUN/report/report.{md,html}``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="mmpc report", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder written by mmpc bench")
    parser.add_argument(
        "--grpo-log",
        type=Path,
        default=None,
        help="a GRPO CSV log (step + reward columns) for the reward curves",
    )
    parser.add_argument("--out", type=Path, default=None, help="report folder (RUN/report)")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not args.run.is_dir():
        print(f"mmpc report: {args.run}: no such run folder", file=sys.stderr)
        return 2
    from mmpc.apps.bench.config import ReportConfig
    from mmpc.apps.report.html import write_report
    from mmpc.apps.report.load import load_run

    saved = args.run / "bench_config.json"
    options = json.loads(saved.read_text()).get("report", {}) if saved.is_file() else {}
    cfg = ReportConfig(**options)
    if args.grpo_log is not None:
        if not args.grpo_log.is_file():
            print(f"mmpc report: {args.grpo_log}: no such GRPO log", file=sys.stderr)
            return 2
        cfg.grpo_log = str(args.grpo_log)
    files = write_report(load_run(args.run, None, cfg), args.out or args.run / "report")
    print(f"report: {files.html}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
