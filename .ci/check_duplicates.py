"""Duplicate-code gate for CI: pylint's ``duplicate-code`` (R0801) over the library sources.

Counts the blocks of six or more similar lines (imports, comments and docstrings ignored) that
pylint finds across ``packages/*/src`` and ``apps/src`` and fails when the count grows past the
ceiling in ``.ci/duplicate-ceiling``. Lower the ceiling when a change removes duplicates, so the
count can only go down. pylint runs as a pinned ``uv tool`` in its own environment: inside the
project environment it loads torch's and transformers' sources and takes minutes, not seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CEILING = ROOT / ".ci" / "duplicate-ceiling"
PYLINT = "pylint==4.1.5"


def main() -> int:
    listed = subprocess.run(
        ["git", "ls-files", "packages/*/src/*.py", "apps/src/*.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    files = listed.stdout.split()
    command = ["uv", "tool", "run", "--from", PYLINT, "pylint", "--disable=all"]
    command += ["--enable=duplicate-code", "--min-similarity-lines=6", "--ignore-imports=yes"]
    result = subprocess.run(
        [*command, "--score=no", *files], cwd=ROOT, capture_output=True, text=True
    )
    # pylint's exit status is a bit mask: 8 = refactor messages (R0801); anything else is a fault.
    if result.returncode not in (0, 8):
        print(result.stdout + result.stderr, file=sys.stderr)
        print(f"duplicate-code: pylint failed (exit {result.returncode})", file=sys.stderr)
        return 1
    blocks = result.stdout.count(": R0801:")
    ceiling = int(CEILING.read_text().strip())
    print(f"duplicate-code: {blocks} similar blocks in {len(files)} files (ceiling {ceiling})")
    if blocks > ceiling:
        print(result.stdout)
        print(f"duplicate-code: {blocks} > {ceiling}; remove the new duplicate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
