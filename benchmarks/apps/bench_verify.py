"""What verifying finished stages costs: on a rerun of a finished run folder, and on a large
catalogue folder.

Usage::

    uv run python benchmarks/apps/bench_verify.py --run runs/tiny \\
        [--config apps/configs/bench/tiny.yaml] [--repeats 3] [--stage-dir DIR]

``--run``: a *finished* run folder made with ``--config``. It is copied (with its files' times,
as ``cp -a`` would) to a temporary folder, never written to. On the copy, each repeat times a
whole rerun (``run_bench``: every stage skipped, then the report), the cheap check that rerun
makes (sizes and times of every finished stage's files against its manifest) and the full check
(``--verify``: every file hashed). The figure printed is the cheap check's time over the rest of
the rerun: what verification adds to a rerun of a finished run folder (medians).

``--stage-dir``: a stage folder, e.g. a paper-sized catalogue made with ``mmpc data synth
--preset paper --out DIR/catalogue`` (pass ``DIR``); a manifest is written there if it has none.
The cheap and full checks of that one folder are timed (the page cache is warm after the first).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from mmpc.apps.bench.graph import build_stages
from mmpc.apps.bench.manifest import output_files, read_manifest, write_manifest
from mmpc.apps.bench.run import run_bench
from mmpc.apps.bench.verify import check_outputs
from mmpc.apps.cli import bench as bench_cli


def _check_all(run: Path, names: list[str], full: bool) -> float:
    start = time.perf_counter()
    for name in names:
        man = read_manifest(run / name)
        if man is not None:
            assert check_outputs(run / name, man, full=full).ok, name
    return time.perf_counter() - start


def bench_run(run: Path, config: str, repeats: int) -> None:
    """Time reruns of a copy of the finished run folder ``run``."""
    with tempfile.TemporaryDirectory(prefix="mmpc-verify-") as tmp:
        cfg, _, _ = bench_cli.parse_config(["--config", config, f"--runs_dir={tmp}"])
        copy = Path(tmp) / cfg.name
        shutil.copytree(run, copy, symlinks=True)  # copy2 keeps the files' times
        (copy / ".lock").unlink(missing_ok=True)
        names = [s.name for s in build_stages(cfg)]
        files = sum(len(output_files(copy / n)) for n in names if (copy / n).is_dir())
        with contextlib.redirect_stdout(io.StringIO()):
            run_bench(cfg, show_progress=False)  # warm: imports, page cache, refreshed times
        rerun, cheap, full = [], [], []
        for _ in range(repeats):
            with contextlib.redirect_stdout(io.StringIO()):
                start = time.perf_counter()
                _, results = run_bench(cfg, show_progress=False)
                rerun.append(time.perf_counter() - start)
            assert {r.status for r in results} <= {"skipped", "unavailable"}, results
            cheap.append(_check_all(copy, names, full=False))
            full.append(_check_all(copy, names, full=True))
        t, c, f = (statistics.median(x) for x in (rerun, cheap, full))
        print(f"run folder {run}: {len(names)} stages, {files} files")
        print(f"  rerun of the finished folder: {t:.3f} s (median of {repeats})")
        print(f"  cheap check (sizes + times): {c * 1000:.1f} ms")
        print(f"  full check (--verify, every file hashed): {f * 1000:.1f} ms")
        print(f"verification adds {100 * c / (t - c):.2f}% to a rerun of a finished run folder")
        print(f"  (--verify: {100 * f / (t - c):.2f}%)")


def bench_stage_dir(folder: Path, repeats: int) -> None:
    """Time the cheap and full checks of one (large) stage folder."""
    if read_manifest(folder) is None:
        write_manifest(
            folder,
            name="catalog",
            fingerprint="benchmark",
            config={},
            inputs=(),
            counts={},
            duration_s=0.0,
            notes={},
        )
    man = read_manifest(folder)
    assert man is not None
    files = output_files(folder)
    size = sum(p.stat().st_size for _, p in files)
    cheap, full = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        assert check_outputs(folder, man).ok
        cheap.append(time.perf_counter() - start)
        start = time.perf_counter()
        assert check_outputs(folder, man, full=True).ok
        full.append(time.perf_counter() - start)
    print(f"stage folder {folder}: {len(files)} files, {size / 2**20:.1f} MiB")
    print(f"  cheap check: {statistics.median(cheap):.3f} s, full: {statistics.median(full):.3f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a finished run folder (copied, never written)")
    parser.add_argument("--config", default="apps/configs/bench/tiny.yaml")
    parser.add_argument("--stage-dir", type=Path, help="a large stage folder, e.g. a catalogue")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPU(s), {platform.python_version()}")
    if args.run:
        bench_run(args.run, args.config, args.repeats)
    if args.stage_dir:
        bench_stage_dir(args.stage_dir, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
